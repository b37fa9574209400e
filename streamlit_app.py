"""CNN Explorer: Streamlit entry point. Navigation lives here, in one place."""

import streamlit as st

from explorer.hosting.addresses import URL_PATHS
from explorer.models.device import configure_server_threads
from pages.common import inject_style

# The server's thread policy, in its entry script: every run of the server's script threads
# starts here, before any page runs torch. torch's thread count is per thread, and a thread
# takes the last one set when it first runs torch, so after the first run this finds it set
# and changes nothing. Pages never set it: a test that imports one keeps its own settings.
configure_server_threads()
st.set_page_config(page_title="CNN Explorer", page_icon="🔬", layout="wide")
inject_style()  # pages/style.css: the layout on narrow screens

PAGES = [st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:", default=True)]
for name, title, icon in [
    ("lessons", "Lessons", "school"),
    ("image", "Image classifier", "image"),
    ("lab", "Convolution lab", "grid_on"),
    ("train", "Train a CNN", "model_training"),
    ("pictures", "Your pictures", "photo_camera"),
    ("experiment", "Experiment", "science"),
    ("home", "Overview", "info"),
]:
    page = st.Page(
        f"pages/{name}.py", title=title, icon=f":material/{icon}:", url_path=URL_PATHS[name]
    )
    PAGES.append(page)

st.navigation(PAGES).run()
