"""Your pictures: name 2–5 classes, give each pictures, train a CNN on them, look inside it."""

from __future__ import annotations

import hashlib

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer.figures.describe import describe_confusion, describe_curves
from explorer.hosting.scheduler import OverBudget
from explorer.inputs.preprocess import MAX_PHOTO_UPLOAD_MB
from explorer.models.picturenets import ARCHITECTURES
from explorer.models.pictures import (
    MAX_CLASSES,
    MAX_PICTURE_MB,
    MIN_CLASSES,
    MIN_PER_CLASS,
    Picture,
    PictureError,
)
from explorer.models.teach import DEFAULT_EPOCHS, Taught, TeachSettings, taught_model
from explorer.views.pictures import (
    THUMBNAIL_SIDE,
    ClassDraft,
    Outcome,
    Training,
    add_pictures,
    confusion_view,
    gather,
    mistakes_view,
    model_card,
    snapshot_description,
    snapshot_view,
    teach_job,
    training_caption,
)
from explorer.views.train import curves_figure
from pages.common import PICTURES_KEY, inline_image, run_job
from pages.links import finish_view_link, start_view_link

DRAFTS_KEY = "pictures_drafts"
TAUGHT_KEY = "pictures_taught"
OUTCOME_KEY = "pictures_outcome"
TRAINING_KEY = "pictures_training"
"""Session state: the training in progress (a ``Training``), until its answer is shown."""
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp"]


def drafts(count: int) -> list[ClassDraft]:
    """This session's classes (kept in its memory only), as many as asked."""
    kept: list[ClassDraft] = st.session_state.setdefault(DRAFTS_KEY, [])
    while len(kept) < count:
        kept.append(ClassDraft(f"class {len(kept) + 1}"))
    del kept[count:]  # fewer classes: the last ones' pictures leave the server's memory
    return kept


def class_panel(index: int, draft: ClassDraft, session: list[ClassDraft]) -> None:
    """One class: its name, pictures by upload or webcam, how many so far."""
    draft.name = st.text_input("Class name", draft.name, max_chars=40, key=f"pictures_name_{index}")
    upload, camera = st.tabs(["Upload", "Webcam"])
    files = upload.file_uploader(
        f"Pictures of {draft.name or 'this class'}",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"pictures_upload_{index}_{draft.version}",
        max_upload_size=min(MAX_PICTURE_MB, MAX_PHOTO_UPLOAD_MB),
    )
    new = [Picture(f.name, f.getvalue()) for f in files or []]
    shot = camera.camera_input(
        "Take a picture (each shot is added)", key=f"pictures_cam_{index}_{draft.version}"
    )
    if shot is not None:
        data = shot.getvalue()
        new.append(Picture(f"webcam {hashlib.sha256(data).hexdigest()[:8]}", data))
    for reason in add_pictures(draft, new, session):
        st.warning(reason)
    count = len(draft.pictures)
    st.caption(
        f"{count} picture(s)" + (f" — at least {MIN_PER_CLASS}" if count < MIN_PER_CLASS else "")
    )
    if draft.thumbnails:
        st.image([inline_image(t) for t in draft.thumbnails[-8:]], width=THUMBNAIL_SIDE)
    if draft.pictures and st.button("Clear pictures", key=f"pictures_clear_{index}"):
        draft.clear()
        st.rerun()


def read_settings() -> TeachSettings:
    """The architecture and the number of epochs."""
    left, right = st.columns(2)
    architecture = str(
        left.radio(
            "Network",
            list(ARCHITECTURES),
            format_func=ARCHITECTURES.__getitem__,
            key="pictures_arch",
        )
    )
    epochs = right.slider(
        "Epochs", 1, 40, DEFAULT_EPOCHS[architecture], key=f"pictures_epochs_{architecture}"
    )
    return TeachSettings(architecture=architecture, epochs=int(epochs))


def train(gathered: list[ClassDraft], settings: TeachSettings) -> None:
    """Check the pictures and start training (it goes on over reruns: :func:`follow`)."""
    try:
        st.session_state[TRAINING_KEY] = teach_job(gather(gathered), settings)
    except PictureError as exc:
        st.error(f"Not ready to train: {exc}")


class LiveViews:
    """The training so far, drawn below its progress bar whenever an epoch ends."""

    def __init__(self, training: Training) -> None:
        self.training = training
        self.shown = 0
        self.box: DeltaGenerator | None = None

    def __call__(self) -> None:
        """Draw the latest epoch's views, if one ended since the last call."""
        so_far = self.training.so_far
        if so_far is None or len(so_far.points) == self.shown:
            return
        self.shown = len(so_far.points)
        if self.box is None:
            self.box = st.empty()
        with self.box.container():
            show_views(so_far, live=True)

    def clear(self) -> None:
        """Take the views away (the finished training's replace them)."""
        if self.box is not None:
            self.box.empty()


def follow() -> None:
    """Wait for the training in progress in the scheduler's long line; keep its answer.

    Every rerun until the answer is there submits the same job again, which finds it still
    running (or takes the answer it left), so a webcam shot or a slider loses nothing. While
    it waits, the curves, filters, confusion matrix and mistakes show each epoch as it ends.
    """
    training: Training | None = st.session_state.get(TRAINING_KEY)
    if training is None:
        return
    if training.stopped:
        del st.session_state[TRAINING_KEY]
        st.warning(
            "Training was stopped (another heavy job of yours took its place, or the page was "
            "left for a while): click Train again."
        )
        return
    live = LiveViews(training)
    try:
        outcome: Outcome = training.outcome or run_job(training.job, "Training", watch=live)
    except OverBudget as exc:
        del st.session_state[TRAINING_KEY]
        st.warning(f"Not trained: {exc}")
        return
    except Exception:
        del st.session_state[TRAINING_KEY]  # not submitted again on every rerun
        raise
    live.clear()
    del st.session_state[TRAINING_KEY]
    st.session_state[TAUGHT_KEY] = outcome.taught
    st.session_state[OUTCOME_KEY] = outcome


def show_views(taught: Taught, live: bool = False) -> None:
    """Held-out accuracy, curves, the watched weight, the confusion matrix, the mistakes.

    ``live``: a training still going (its latest epoch's weights, no slider; the charts'
    keys name the epoch, as each epoch draws them again in the same run).
    """
    last = len(taught.points) - 1
    suffix = f"_live{last}" if live else ""
    accuracy = taught.points[-1].val_accuracy if live else taught.held_out_accuracy
    st.metric(
        f"Held-out accuracy after epoch {last + 1}" if live else "Held-out accuracy",
        f"{accuracy:.1%}",
    )
    st.caption(taught.message if live else training_caption(taught))
    st.plotly_chart(curves_figure(taught.points), key=f"pictures_curves{suffix}")
    st.caption(describe_curves(taught.points))  # each chart's text alternative under it
    left, right = st.columns(2)
    epoch = last + 1
    if last and not live:
        epoch = int(left.slider("Weights after epoch", 1, last + 1, last + 1, key="pictures_epoch"))
    left.plotly_chart(snapshot_view(taught, epoch - 1), key=f"pictures_filters{suffix}")
    left.caption(snapshot_description(taught, epoch - 1))
    right.plotly_chart(confusion_view(taught), key=f"pictures_confusion{suffix}")
    right.caption(describe_confusion(taught.confusion, taught.classes))
    wrong = mistakes_view(taught)
    if wrong:
        st.markdown(f"**Held-out pictures it got wrong** ({len(wrong)})")
        st.image([inline_image(p) for p, _ in wrong], caption=[c for _, c in wrong], width=72)


def show_result(taught: Taught, outcome: Outcome | None) -> None:
    """The finished training's views; use it on the other pages; download it."""
    if taught.built.notice:
        st.warning(taught.built.notice)
    show_views(taught)
    use, pt2, card = st.columns(3)
    if use.button("Use this model", type="primary", key="pictures_use"):
        st.session_state[PICTURES_KEY] = taught_model(taught)
        st.success(
            "Your model is now on the Image classifier page (model menu: “Your pictures: …”)."
        )
    if outcome is not None and outcome.taught is taught and outcome.program is not None:
        pt2.download_button(  # made in the training job: torch.export takes a few seconds
            "Model (.pt2, card inside)", outcome.program, "my-classes.pt2", key="pictures_pt2"
        )
    elif outcome is not None and outcome.problem:
        pt2.warning(f"No .pt2 to download: {outcome.problem}")
    card.download_button("Card (.json)", model_card(taught), "my-classes.json", key="pictures_card")


def main() -> None:
    """The page, its names local to the call.

    A page script's module globals outlive its run (Streamlit keeps the last run's module as
    ``__main__`` until any session's next run): nothing of a session's pictures may.
    """
    st.title("Teach it your classes")
    st.caption(
        "Name 2–5 classes, give each at least 10 pictures (upload them or take webcam shots), "
        "train a small CNN from scratch or fine-tune ResNet-18's last block, then look inside the "
        "network you trained on every page. A fifth of each class is held out: the accuracy is "
        "measured on pictures it never trained on."
    )
    st.info(
        "🔒 Your pictures stay in this browser session's memory on the server: they are never "
        "written to disk or logs, nor shared with other sessions, and they are gone when you close "
        "the tab.",
    )
    view_link = start_view_link("pictures")
    classes = st.columns([1, 3])[0].number_input(
        "Classes", MIN_CLASSES, MAX_CLASSES, 2, key="pictures_classes"
    )
    gathered = drafts(int(classes))
    for index, (column, draft) in enumerate(zip(st.columns(len(gathered)), gathered, strict=True)):
        with column:
            class_panel(index, draft, gathered)
    chosen = read_settings()
    if st.button("Train", type="primary", key="pictures_train"):
        train(gathered, chosen)
    follow()
    result: Taught | None = st.session_state.get(TAUGHT_KEY)
    if result is not None:
        st.divider()
        show_result(result, st.session_state.get(OUTCOME_KEY))
    finish_view_link(
        view_link,
        "The link opens this page only: uploaded and webcam pictures, and the model trained on "
        "them, cannot travel in a link.",
    )


main()
