"""The Image page's "Your model": a .pt2 or .onnx file, its input settings and its labels."""

from __future__ import annotations

import hashlib

import streamlit as st

from explorer.assets import OWN_MODELS_DIR
from explorer.inputs.spec import DIGIT_SIDES, IMAGENET_MEAN, IMAGENET_STD, InputSpec
from explorer.models.own import (
    MAX_FILE_MB,
    OwnModelError,
    Program,
    load_program,
    read_untrusted,
)
from explorer.models.sandboxed import prewarm
from explorer.models.zoo import LoadedModel

OWN = "own"
"""The model menu's entry for a model of your own."""
EXAMPLES = {
    "LeNet-5 as a torch.export program (.pt2)": OWN_MODELS_DIR / "lenet5.pt2",
    "LeNet-5 as ONNX (.onnx)": OWN_MODELS_DIR / "lenet5.onnx",
}
UPLOAD = "Upload a file"
NORMALISATIONS = ["none", "ImageNet", "custom"]


prewarm()  # a sandboxed worker waits, torch imported, for the first file a student brings


def read_model_file(data: bytes, filename: str) -> Program:
    """A file's graph, read in the sandbox once per server (answers kept by its sha256)."""
    with st.spinner("Reading your model in the sandbox…"):
        return read_untrusted(data, filename)


@st.cache_resource(show_spinner="Checking your model…", max_entries=4)
def cached_own_model(
    digest: str,
    _data: bytes,
    filename: str,
    spec: InputSpec,
    labels: str | None,
) -> LoadedModel:
    """The file read for its input settings, with its labels, checked by one forward pass."""
    return load_program(_data, filename, spec, labels)  # the sandbox bounds its own workers


def read_file() -> tuple[bytes, str] | None:
    """The chosen model file's bytes and name: a shipped example or an upload."""
    source = st.radio("Model file", [*EXAMPLES, UPLOAD], key="image_own_source")
    if source in EXAMPLES:
        path = EXAMPLES[source]
        return path.read_bytes(), path.name
    upload = st.file_uploader(
        "A .pt2 (torch.export) or .onnx file; pickled models and TorchScript are refused",
        type=["pt2", "onnx"],
        key="image_own_upload",
        max_upload_size=MAX_FILE_MB,
    )
    if upload is None:
        st.info("Upload your model, or pick a shipped example.")
        return None
    return upload.getvalue(), upload.name


def read_spec(program: Program) -> InputSpec:
    """The input settings: the file's shape by default, normalisation, digit layout."""
    stated = program.input_shape
    if stated is not None:
        st.caption(f"The file says its input is {'×'.join(map(str, stated))}.")
    channels_default, height_default, width_default = stated or (3, 224, 224)
    height_default, width_default = (min(max(n, 8), 1024) for n in (height_default, width_default))
    a, b, c = st.columns(3)
    channels = a.selectbox(
        "Channels", [1, 3], index=0 if channels_default == 1 else 1, key="image_own_channels"
    )
    height = int(b.number_input("Height", 8, 1024, height_default, key="image_own_height"))
    width = int(c.number_input("Width", 8, 1024, width_default, key="image_own_width"))
    digit_size = height == width and height in DIGIT_SIDES
    if channels == 1 and st.toggle(
        "Digit preprocessing (MNIST layout)",
        value=digit_size,
        key="image_own_digit",
        disabled=not digit_size,
        help="For 28×28 or 32×32 inputs: the digit is centred and scaled as MNIST's were.",
    ):
        return InputSpec(1, height, width, None, None, True)
    mean, std = read_normalisation(int(channels))
    return InputSpec(int(channels), height, width, mean, std, False)


def read_normalisation(channels: int) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Mean and std: none, ImageNet's, or typed (one value per channel)."""
    choice = st.segmented_control(
        "Normalisation", NORMALISATIONS, default="none", key="image_own_norm"
    )
    if choice == "ImageNet" and channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    if choice != "custom":
        return None, None
    left, right = st.columns(2)
    mean = left.text_input(
        "Mean (per channel)", ", ".join(["0.5"] * channels), key="image_own_mean"
    )
    std = right.text_input("Std (per channel)", ", ".join(["0.5"] * channels), key="image_own_std")
    try:
        return parse_floats(mean), parse_floats(std)
    except ValueError:
        st.error("Mean and std are numbers separated by commas, e.g. 0.5, 0.5, 0.5.")
        return None, None


def parse_floats(text: str) -> tuple[float, ...]:
    """``"0.5, 0.4"`` → ``(0.5, 0.4)``."""
    return tuple(float(part) for part in text.replace(",", " ").split())


def choose_own_model() -> LoadedModel | None:
    """The user's model, loaded with its settings (or None, with a message)."""
    chosen = read_file()
    if chosen is None:
        return None
    data, filename = chosen
    digest = hashlib.sha256(data).hexdigest()
    labels_file = st.file_uploader(
        "Class names (optional): a text file, one per line",
        type=["txt"],
        key="image_own_labels",
        max_upload_size=1,
    )
    labels = labels_file.getvalue().decode("utf-8", "replace") if labels_file else None
    try:
        program = read_model_file(data, filename)
        spec = read_spec(program)
        loaded = cached_own_model(digest, data, filename, spec, labels)
    except OwnModelError as exc:
        st.error(f"That model cannot be used: {exc}")
        return None
    return loaded
