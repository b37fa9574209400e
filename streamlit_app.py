"""CNN Explorer: Streamlit entry point. Navigation lives here, in one place."""

import streamlit as st

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
