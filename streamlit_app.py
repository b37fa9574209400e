"""CNN Explorer: Streamlit entry point. Navigation lives here, in one place."""

import streamlit as st

from explorer.hosting.addresses import URL_PATHS
from explorer.models.device import configure_server_threads

# The server's thread policy, in its entry script: every run of the server's script threads
# starts here, before any page runs torch. torch's thread count is per thread, and a thread
# takes the last one set when it first runs torch, so after the first run this finds it set
# and changes nothing. Pages never set it: a test that imports one keeps its own settings.
configure_server_threads()
st.set_page_config(page_title="CNN Explorer", page_icon="🔬", layout="wide")

PAGES = [st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:", default=True)]
for name, title, icon in [
    ("image", "Image classifier", "image"),
    ("lab", "Convolution lab", "grid_on"),
    ("train", "Train a CNN", "model_training"),
    ("experiment", "Experiment", "science"),
    ("home", "Overview", "info"),
]:
    page = st.Page(
        f"pages/{name}.py", title=title, icon=f":material/{icon}:", url_path=URL_PATHS[name]
    )
    PAGES.append(page)

st.navigation(PAGES).run()
