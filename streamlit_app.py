"""CNN Explorer: Streamlit entry point. Navigation lives here, in one place."""

import streamlit as st

st.set_page_config(page_title="CNN Explorer", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:", default=True),
    st.Page("pages/home.py", title="Overview", icon=":material/info:", url_path="overview"),
]

st.navigation(PAGES).run()
