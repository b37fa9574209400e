"""CNN Explorer: Streamlit entry point. Navigation lives here, in one place."""

import streamlit as st

st.set_page_config(page_title="CNN Explorer", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
]

st.navigation(PAGES).run()
