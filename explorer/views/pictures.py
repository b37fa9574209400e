"""The "Your pictures" page's view-model: your classes, the training job, what it learned.

The pictures live in the session only: they are gathered here from the page's uploads and
webcam shots (bounded: per class, per upload and :data:`MAX_TOTAL_MB` a session), trained
on in a costed job of the heavy-work scheduler that is never cached nor shared
(:func:`teach_job`; a :class:`Training` the page follows over reruns), and the model is
exported to ``.pt2`` bytes in memory in that same job; nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from explorer.figures.charts import filters_figure
from explorer.figures.describe import describe_filters
from explorer.hosting.cost import DEFAULT_SECONDS_PER_GMAC, RATE_ENV, Cost, positive_float_env
from explorer.hosting.jobs import Job, Progress
from explorer.inputs.preprocess import load_image, to_rgb
from explorer.models.cards import CardError
from explorer.models.own import OwnModelError, program_bytes
from explorer.models.picturenets import ARCHITECTURES, PASS_MULT_ADDS
from explorer.models.pictures import (
    MAX_PER_CLASS,
    MAX_TOTAL_MB,
    Picture,
    PictureError,
    PictureSet,
    check_class_names,
    check_picture,
    held_out_split,
    picture_set,
)
from explorer.models.teach import Taught, TeachSettings, teach
from explorer.views.train import confusion_figure

__all__ = [
    "MAX_NEW_FILES",
    "THUMBNAIL_SIDE",
    "TRAIN_PASSES",
    "ClassDraft",
    "Outcome",
    "Training",
    "add_pictures",
    "confusion_view",
    "gather",
    "mistakes_view",
    "model_card",
    "model_program",
    "snapshot_description",
    "snapshot_view",
    "teach_cost",
    "teach_job",
    "training_caption",
]

_jobs = itertools.count(1)


THUMBNAIL_SIDE = 48
MAX_NEW_FILES = MAX_PER_CLASS
"""Files read from one upload at a time: more could never fit a class."""
TRAIN_PASSES = 3.0
"""A training step of the trained part, in forward passes: its forward, and a backward pass
that computes the input's and the weights' gradients (about two)."""
STEP_OVERHEAD_S = 0.45e-3
AUGMENT_S = 0.6e-3
"""Seconds a training picture costs beyond its multiply-adds, each epoch: batching and the
optimiser's step, and (the small CNN) its random distortion. Measured on the 2-core AMD EPYC,
one torch thread: the small CNN takes 1.1 ms a picture an epoch unaugmented, 1.5-1.7 ms
augmented, where its multiply-adds at :data:`DEFAULT_SECONDS_PER_GMAC` come to 0.73 ms; a
tiny net is mostly this overhead, ResNet-18's trained block (~10 ms a picture) hardly."""


@dataclass
class ClassDraft:
    """One class as the page gathers it: its name, its pictures so far and their thumbnails."""

    name: str
    pictures: list[Picture] = field(default_factory=list)
    thumbnails: list[np.ndarray] = field(default_factory=list)
    version: int = 0
    """Bumped when the pictures are cleared: the page's upload and webcam widgets start anew."""

    def clear(self) -> None:
        """Drop every picture (and start new upload and webcam widgets)."""
        self.pictures.clear()
        self.thumbnails.clear()
        self.version += 1


def add_pictures(
    draft: ClassDraft, new: Sequence[Picture], session: Sequence[ClassDraft] = ()
) -> list[str]:
    """Add ``new`` pictures to ``draft``, each once, checked; what was left out, and why.

    The same bytes twice (a file uploaded again, a rerun) count once. Each new picture is
    decoded once by the safe reader (a file that is not a picture is left out, named) and
    kept with a thumbnail. Past :data:`~explorer.models.pictures.MAX_PER_CLASS` pictures a
    class, past :data:`~explorer.models.pictures.MAX_TOTAL_MB` in all of ``session``'s
    classes (they stay in the server's memory), or past :data:`MAX_NEW_FILES` files at once,
    the rest are left out, in one line each.

    Args:
        draft: The class the pictures go to.
        new: The pictures of its upload and webcam widgets.
        session: Every class of the session (``draft`` counted once, listed or not).
    """
    seen = {hashlib.sha256(p.data).digest() for p in draft.pictures}
    held = sum(len(p.data) for d in {id(d): d for d in (*session, draft)}.values()
               for p in d.pictures)  # fmt: skip
    limit = MAX_TOTAL_MB * 1024 * 1024
    refused = []
    if len(new) > MAX_NEW_FILES:
        refused.append(f"{len(new) - MAX_NEW_FILES} file(s) left out: {MAX_NEW_FILES} at a time")
        new = new[:MAX_NEW_FILES]
    full: list[str] = []  # left out, one line for each reason: the class is full …
    over: list[str] = []  # … or the session holds all it may
    for picture in new:
        digest = hashlib.sha256(picture.data).digest()
        if digest in seen:
            continue
        seen.add(digest)
        if len(draft.pictures) >= MAX_PER_CLASS:
            full.append(picture.name)
            continue
        if held + len(picture.data) > limit:
            over.append(picture.name)
            continue
        try:
            check_picture(picture)
        except PictureError as exc:
            refused.append(str(exc))
            continue
        held += len(picture.data)
        draft.pictures.append(picture)
        draft.thumbnails.append(_thumbnail(picture.data))
    if full:
        refused.append(f"{_names(full)}: a class holds {MAX_PER_CLASS} pictures at most")
    if over:
        refused.append(
            f"{_names(over)}: your classes hold {held / 2**20:.0f} MB of pictures, at most "
            f"{MAX_TOTAL_MB} MB in all (clear some, or use smaller files)"
        )
    return refused


def _names(names: Sequence[str]) -> str:
    return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def _thumbnail(data: bytes) -> np.ndarray:
    image = to_rgb(load_image(data))
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return np.asarray(image)


def gather(drafts: Sequence[ClassDraft]) -> PictureSet:
    """The drafts as a checked set (their pictures were decoded when added).

    Raises:
        explorer.models.pictures.PictureError: What is missing or wrong, in one line (two
            classes with the same name, "Cat" and "cat ", included: never merged).
    """
    names = check_class_names([d.name for d in drafts])
    return picture_set(dict(zip(names, (d.pictures for d in drafts), strict=True)), decode=False)


@dataclass
class Outcome:
    """The training job's answer: the trained network, and its ``.pt2`` made in the job.

    Attributes:
        taught: The network and how it trained.
        program: The ``.pt2`` (card inside); ``None`` when it could not be made.
        problem: Why it could not be made, in one line ("" when it was).
    """

    taught: Taught
    program: bytes | None
    problem: str = ""


def teach_cost(pictures: PictureSet, settings: TeachSettings) -> Cost:
    """The training job's estimate: the frozen part once a picture, the trained part's steps.

    A picture through the frozen part (fine-tuning) is one pass of it; a training picture of
    an epoch, :data:`TRAIN_PASSES` of the trained part and :data:`STEP_OVERHEAD_S` (plus
    :data:`AUGMENT_S` when distorted) in passes; the held-out ones, one each an epoch.
    """
    frozen, trained = PASS_MULT_ADDS[settings.architecture]
    whole = frozen + trained
    count = len(pictures)
    held = len(held_out_split(pictures.labels, seed=settings.seed).held_out)
    rate = positive_float_env(RATE_ENV, DEFAULT_SECONDS_PER_GMAC)
    pass_seconds = whole / 1e9 * rate
    overhead = STEP_OVERHEAD_S + (AUGMENT_S if settings.distorted else 0.0)
    step = TRAIN_PASSES * trained / whole + overhead / pass_seconds
    each_epoch = (count - held) * step + held * trained / whole
    passes = count * frozen / whole + settings.epochs * each_epoch

    def advice(most: int) -> str:
        epochs = int((most - count * frozen / whole) // each_epoch)
        if epochs >= 1:
            return f"train {epochs} epoch(s) at most, or on fewer pictures"
        return "train on fewer pictures, or the small CNN"

    what = (
        f"training {ARCHITECTURES[settings.architecture]} for {settings.epochs} epoch(s) "
        f"on {count} pictures"
    )
    return Cost(what, passes, pass_seconds, whole, settings.architecture, advice)


@dataclass
class Training:
    """A session's training, kept in its state until the answer is seen.

    The page submits :attr:`job` on every rerun until it has the answer: a rerun (a webcam
    shot, a slider) re-attaches to the same job, still running; an answer that came while
    no page waited is kept in :attr:`outcome`, so it is never lost nor computed twice.

    While it trains, the job keeps the training so far in :attr:`so_far` after each epoch
    (written by the job's thread, read by the page's: one attribute, replaced whole), so the
    page shows the curves, the filters, the confusion matrix and the mistakes as they change.

    Attributes:
        job: The training job (one key for its whole life).
        outcome: Its answer, once there.
        so_far: The training after its latest epoch (``None`` before the first).
        stopped: Whether it was cancelled (replaced while in line or running, a page left
            for long, Stop): the page says so, and never submits it again.
    """

    job: Job
    outcome: Outcome | None = None
    so_far: Taught | None = None
    stopped: bool = False

    def stop(self) -> None:
        """Mark it cancelled (its job's ``on_cancel``): a rerun must not start it again."""
        self.stopped = True


def teach_job(pictures: PictureSet, settings: TeachSettings) -> Training:
    """Training as a heavy job, costed, with progress; never cached nor shared.

    Its answer is a :class:`Outcome`: the ``.pt2`` is exported in the job too (not on the
    page's thread), and a failed export is said in one line, the trained network kept.
    """

    def run(progress: Progress) -> Outcome:
        # the export at the end takes the last twentieth of the progress bar
        taught = teach(
            pictures,
            settings,
            report=lambda done: progress(done * 0.95),
            on_epoch=lambda so_far: setattr(training, "so_far", so_far),
        )
        training.outcome = _exported(taught)
        return training.outcome

    def stop() -> None:  # cancelled, in line or running: never submitted again
        training.stop()

    key = ("teach", next(_jobs))
    cost = teach_cost(pictures, settings)
    training = Training(Job(key, run, cost=cost, lane="long", cache=False, on_cancel=stop))
    return training


def _exported(taught: Taught) -> Outcome:
    try:
        program = model_program(taught)
    except (CardError, OwnModelError) as exc:  # the trained network is still there to use
        return Outcome(taught, None, f"the .pt2 could not be made: {exc}")
    return Outcome(taught, program)


def confusion_view(taught: Taught) -> go.Figure:
    """The held-out confusion matrix, rows and columns named by class."""
    figure = confusion_figure(taught.confusion)
    names = list(taught.classes)
    figure.update_traces(
        x=names,
        y=names,
        colorbar_title_text="held-out pictures",
        hovertemplate="true %{y} · predicted %{x}: %{z} pictures<extra></extra>",
    )
    return figure


def snapshot_view(taught: Taught, index: int) -> go.Figure:
    """The watched weight (conv1's filters, or a fine-tuned layer4 conv's) at epoch ``index``."""
    point = taught.points[index]
    name = taught.built.watched.removesuffix(".weight")
    return filters_figure(
        taught.snapshots[index], f"{name} after epoch {point.epoch:g}", tile_px=40
    )


def snapshot_description(taught: Taught, index: int) -> str:
    """:func:`snapshot_view`'s text alternative: the weights' shape, range and largest."""
    name = (
        f"{taught.built.watched.removesuffix('.weight')} after epoch {taught.points[index].epoch:g}"
    )
    kept, whole = (
        taught.snapshots[index].shape,
        taught.net.get_parameter(taught.built.watched).shape,
    )
    if kept[:2] != whole[:2]:  # a slice of a big layer: say so, not as if it were the layer
        name += f" (its first {kept[0]} of {whole[0]} filters, {kept[1]} of {whole[1]} inputs)"
    return describe_filters(taught.snapshots[index], name)


def mistakes_view(taught: Taught) -> list[tuple[np.ndarray, str]]:
    """Misclassified held-out pictures as shown (``(H, W, C)`` uint8) and captions."""
    shown = []
    for index, true, predicted, prob in taught.mistakes:
        picture = np.ascontiguousarray(taught.held_out[index].transpose(1, 2, 0))
        caption = f"{taught.classes[true]} → {taught.classes[predicted]} {prob:.0%}"
        shown.append((picture, caption))
    return shown


def training_caption(taught: Taught) -> str:
    """How it trained, in one line: pictures, network, starting weights, how it ended."""
    return (
        f"Trained on {taught.train_count} pictures, tested on {len(taught.held_out)} held out "
        f"({', '.join(taught.classes)}); {ARCHITECTURES[taught.settings.architecture]}; "
        f"starting weights: {taught.built.weights}. {taught.message} "
        f"({taught.seconds:.1f} s)"
    )


def model_program(taught: Taught) -> bytes:
    """The ``.pt2`` program with its card inside, made in memory (nothing written to disk)."""
    return program_bytes(taught.net, taught.built.spec, taught.card())


def model_card(taught: Taught) -> str:
    """The card as JSON."""
    return json.dumps(taught.card(), indent=2)
