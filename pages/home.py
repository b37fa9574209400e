"""Landing page: what CNN Explorer is, the model zoo, and a first look at LeNet-5."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer.figures.charts import softmax_figure
from explorer.inputs.preprocess import ImageError
from explorer.inputs.samples import digit_samples
from explorer.models.zoo import zoo_table
from pages.common import cached_model, inline_image, show_prediction
from pages.links import finish_view_link, start_view_link

st.title("CNN Explorer")
st.caption(
    "See inside a convolutional neural network: every convolution, ReLU and pooling "
    "output, the learned filters and the softmax, with the numbers behind each picture."
)
view_link = start_view_link("home")


samples = digit_samples()
if not samples:
    st.error("The sample digits are missing from assets/digits/: reinstall the app.")
    st.stop()
left, right = st.columns([1, 2])
with left:
    st.subheader("A first look: LeNet-5 reads a digit")
    label = st.selectbox(
        "Sample digit (real MNIST, never seen in training)",
        list(samples),
        key="home_digit",
        bind="query-params",
    )
    choice = samples[label]
    model = cached_model("lenet5")
    st.caption(
        f"Model: {model.spec.title} · weights {model.weights_label} · device {model.device_label}"
    )
try:
    prepared = model.prepare(choice)
    result = model.capture(prepared, layers=[])
except ImageError as exc:
    st.error(str(exc))
    st.stop()
with left:
    a, b = st.columns(2)
    a.image(
        inline_image(Path(choice).read_bytes()),
        caption="the digit",
        width=140,
        alt="The sample digit, as shipped",
    )
    b.image(
        inline_image(prepared.display),
        caption="what the network sees (28×28)",
        width=140,
        alt="The 28×28 digit the model sees: cropped, scaled and centred",
    )
    show_prediction(left, model, result)
with right:
    st.plotly_chart(
        softmax_figure(model.categories, result.probs.cpu().numpy()), key="home_softmax"
    )

st.subheader("The model zoo")
st.caption(
    "Digit nets ship trained; the ImageNet nets use torchvision's pretrained weights when "
    "they can be downloaded, else they run untrained (and say so)."
)
st.dataframe(
    [{k: v for k, v in row.items() if k != "family"} for row in zoo_table()],
    hide_index=True,
    width="stretch",
)
finish_view_link(view_link)
