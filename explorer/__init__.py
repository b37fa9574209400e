"""CNN Explorer: see inside a convolutional neural network.

The library behind the Streamlit app: model zoo and weights, capture of every layer,
preprocessing, figures and the command-line interface. It never imports Streamlit.
"""

__version__ = "0.1.0"
