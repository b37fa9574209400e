"""Train a digit CNN and watch it learn: curves, filters, confusion matrix, mistakes."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer.figures.charts import filters_figure
from explorer.figures.describe import describe_curves, describe_filters
from explorer.models.custom import ACTIVATIONS, ARCHITECTURES, KERNELS, POOLS, NetSettings
from explorer.models.digits import shipped_digits
from explorer.models.live import TrainingRun, TrainSettings, as_loaded_model, max_seconds
from explorer.models.own import export_model
from explorer.views.train import (
    confusion_description,
    confusion_figure,
    curves_figure,
    status_line,
)
from pages.common import TRAINED_KEY, inline_image
from pages.links import finish_view_link, start_view_link

RUN_KEY = "train_run"
LEARNING_RATES = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]
BATCH_SIZES = [16, 32, 64, 128, 256]


def read_settings(disabled: bool) -> TrainSettings:
    """Architecture, layers, optimiser and data from the widgets."""
    network, layers, optimiser = st.columns(3)
    net = read_network(network, layers, disabled)
    return read_training(net, optimiser, disabled)


def read_network(left: DeltaGenerator, middle: DeltaGenerator, disabled: bool) -> NetSettings:
    """The architecture, each conv's channels, kernel, pooling and activation."""
    architecture = str(
        left.selectbox(
            "Architecture",
            list(ARCHITECTURES),
            format_func=lambda n: ARCHITECTURES[n][0],
            key="train_arch",
            bind="query-params",
            disabled=disabled,
        )
    )
    c1, c2 = ARCHITECTURES[architecture][1]
    c1 = left.slider(
        "conv1 channels",
        1,
        32,
        c1,
        key=f"train_c1_{architecture}",
        bind="query-params",
        disabled=disabled,
    )
    c2 = left.slider(
        "conv2 channels",
        1,
        64,
        c2,
        key=f"train_c2_{architecture}",
        bind="query-params",
        disabled=disabled,
    )
    kernel = middle.radio(
        "Kernel", KERNELS, index=1, horizontal=True, key="train_kernel", disabled=disabled,
        bind="query-params",
        format_func=lambda k: f"{k}×{k}",
    )  # fmt: skip
    pooling = middle.radio(
        "Pooling",
        list(POOLS),
        horizontal=True,
        key="train_pool",
        bind="query-params",
        disabled=disabled,
    )
    activation = middle.radio(
        "Activation", list(ACTIVATIONS), horizontal=True, key="train_act", disabled=disabled,
        bind="query-params",
        help="The historic LeNet-5 used tanh.",
    )  # fmt: skip
    return NetSettings(architecture, (int(c1), int(c2)), int(kernel), str(pooling), str(activation))


def read_training(net: NetSettings, column: DeltaGenerator, disabled: bool) -> TrainSettings:
    """Optimiser, learning rate, batch size, epochs, data size, seed and augmentation."""
    optimiser = column.radio(
        "Optimiser", ["adam", "sgd"], horizontal=True, key="train_opt", disabled=disabled,
        bind="query-params",
        format_func={"adam": "Adam", "sgd": "SGD, momentum 0.9"}.get,
    )  # fmt: skip
    rate = column.select_slider(
        "Learning rate",
        LEARNING_RATES,
        value=0.001,
        key="train_lr",
        bind="query-params",
        disabled=disabled,
    )
    batch = column.select_slider(
        "Batch size",
        BATCH_SIZES,
        value=64,
        key="train_batch",
        bind="query-params",
        disabled=disabled,
    )
    d, e, f = st.columns(3)
    epochs = d.slider(
        "Epochs", 1, 20, 5, key="train_epochs", bind="query-params", disabled=disabled
    )
    most = len(shipped_digits().train_labels)
    size = e.slider(
        "Training digits",
        500,
        most,
        most,
        500,
        key="train_size",
        bind="query-params",
        disabled=disabled,
    )
    seed = f.number_input(
        "Seed", 0, 10_000, 0, key="train_seed", bind="query-params", disabled=disabled
    )
    augmentation = f.toggle(
        "Augmentation (rotate, shift, warp)",
        key="train_aug",
        bind="query-params",
        disabled=disabled,
    )
    return TrainSettings(
        net, str(optimiser), float(rate), int(batch), int(epochs), bool(augmentation),
        int(size), int(seed),
    )  # fmt: skip


def controls(run: TrainingRun | None, settings: TrainSettings) -> None:
    """Start (a new run), Stop and Resume."""
    start, stop, resume, _ = st.columns([1, 1, 1, 3])
    if start.button(
        "Start training", type="primary", key="train_start", disabled=run is not None and run.alive
    ):
        if run is not None:
            run.stop()
        run = TrainingRun(settings)
        st.session_state[RUN_KEY] = run
        run.start()
        st.rerun()
    if run is None:
        return
    if stop.button("Stop", key="train_stop", disabled=not run.alive):
        run.stop()
        st.rerun()
    status = run.progress().status
    if resume.button(
        "Resume", key="train_resume", disabled=run.alive or status not in ("stopped",)
    ):
        run.start()
        st.rerun()


def show_live(run: TrainingRun) -> None:
    """What changes while it trains: progress, curves, filters, confusion, mistakes."""
    progress = run.progress()
    st.progress(progress.step / max(progress.total_steps, 1), text=status_line(progress))
    st.caption(progress.message)
    if not progress.points:
        return
    st.plotly_chart(curves_figure(progress.points), key="train_curves")
    st.caption(describe_curves(progress.points))  # the curves' text alternative
    left, right = st.columns([3, 2])
    snapshot = len(progress.filters) - 1
    if not run.alive and len(progress.filters) > 1:
        snapshot = left.slider(
            "conv1's filters at point",
            0,
            len(progress.filters) - 1,
            len(progress.filters) - 1,
            key="train_scrub",
            help="Scrub through the saved snapshots: watch the filters form.",
        )
    point = progress.points[snapshot]
    filters, name = progress.filters[snapshot], f"conv1 at step {point.step}"
    left.plotly_chart(filters_figure(filters, name, tile_px=48), key="train_filters")
    left.caption(describe_filters(filters, name))  # the filters' text alternative
    if progress.confusion is not None:
        right.plotly_chart(confusion_figure(progress.confusion), key="train_confusion")
        right.caption(confusion_description(progress.confusion))
    show_mistakes(progress.mistakes)
    if not run.alive and st.session_state.get("train_polling"):
        st.session_state["train_polling"] = False
        st.rerun(scope="app")  # stop polling, show the finished run's buttons


def show_mistakes(mistakes: tuple[tuple[int, int, int, float], ...]) -> None:
    """Misclassified validation digits, most confident first."""
    if not mistakes:
        return
    st.markdown(f"**Misclassified validation digits** (the {len(mistakes)} most confident)")
    images = shipped_digits().val_images
    columns = st.columns(12)
    for i, (index, true, predicted, prob) in enumerate(mistakes):
        columns[i % 12].image(
            inline_image(np.asarray(images[index])),
            caption=f"{true}→{predicted} {prob:.0%}",
            width=56,
            alt=f"A validation {true} the model read as {predicted} ({prob:.0%})",
        )


def use_and_download(run: TrainingRun) -> None:
    """Make the trained model selectable on the other pages; download it."""
    progress = run.progress()
    if run.alive or not progress.points:
        return
    use, pth, card, pt2 = st.columns(4)
    if use.button("Use this model", key="train_use", type="primary"):
        st.session_state[TRAINED_KEY] = as_loaded_model(run)
        st.success("Your model is now on the Draw and Image pages (model menus: “Your trained …”).")
    name = f"digit-cnn-run{run.id}"
    pth.download_button("Weights (.pth)", run.state_dict_bytes, f"{name}.pth", key="train_pth")
    card.download_button(
        "Card (.json)", json.dumps(run.card(), indent=2), f"{name}.json", key="train_card"
    )
    pt2.download_button(
        "Program (.pt2)", lambda: program_bytes(run), f"{name}.pt2", key="train_pt2"
    )


def program_bytes(run: TrainingRun) -> bytes:
    """The trained network as a torch.export program (for the Image page's "Your model")."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt2"
        export_model(run.model(), run.input_size, path)
        return path.read_bytes()


st.title("Train a digit CNN")
st.caption(
    "Choose a network and how to train it, press Start, and watch the loss fall, conv1's "
    "filters form and the mistakes shrink; then draw on the model you trained. "
    f"A run trains on {len(shipped_digits().train_labels):,} real MNIST digits at most and "
    f"validates on {len(shipped_digits().val_labels):,} it never sees, within "
    f"{max_seconds():g} s."
)
view_link = start_view_link("train")

current: TrainingRun | None = st.session_state.get(RUN_KEY)
running = current is not None and current.alive
chosen = read_settings(disabled=running)
controls(current, chosen)
if current is not None:
    st.session_state["train_polling"] = running
    st.fragment(show_live, run_every=1.0 if running else None)(current)
    use_and_download(current)
finish_view_link(view_link, "The link keeps these settings; a model trained here stays here.")
