"""CNN Explorer: Streamlit entry point. Navigation lives here, in one place."""

import streamlit as st

from explorer.models.device import configure_server_threads

# The server's thread policy, in its entry script: every run of the server's script threads
# starts here, before any page runs torch. torch's thread count is per thread, and a thread
# takes the last one set when it first runs torch, so after the first run this finds it set
# and changes nothing. Pages never set it: a test that imports one keeps its own settings.
configure_server_threads()
st.set_page_config(page_title="CNN Explorer", page_icon="🔬", layout="wide")

# url_paths differ from the file names on purpose: while a server's first run still treats
# pages/ as a legacy pages folder, a URL equal to a file name would run that file alone.
PAGES = [
    st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:", default=True),
    st.Page(
        "pages/image.py", title="Image classifier", icon=":material/image:", url_path="classify"
    ),
    st.Page(
        "pages/lab.py",
        title="Convolution lab",
        icon=":material/grid_on:",
        url_path="convolution-lab",
    ),
    st.Page(
        "pages/train.py", title="Train a CNN", icon=":material/model_training:", url_path="train"
    ),
    st.Page(
        "pages/experiment.py", title="Experiment", icon=":material/science:", url_path="experiment"
    ),
    st.Page("pages/home.py", title="Overview", icon=":material/info:", url_path="overview"),
]

st.navigation(PAGES).run()
