"""Your own pictures as a training set: 2–5 classes, bounded, held-out pictures kept apart.

A :class:`PictureSet` holds each class's pictures as their encoded bytes (an upload, a
webcam shot, a file of a folder, see :mod:`explorer.models.folders`). Every picture is
decoded once when the set is made, through the one safe reader
(:func:`explorer.inputs.preprocess.load_image`: decompression bombs, slivers and corrupt
files refused), so a bad file is named before any training starts. :meth:`PictureSet.fitted`
turns them into a model's input exactly as a prediction later does (:meth:`InputSpec.fit`),
and :func:`held_out_split` keeps a seeded, stratified part of each class apart for testing.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from explorer.inputs.preprocess import ImageError, load_image, to_rgb
from explorer.inputs.spec import InputSpec

__all__ = [
    "HELD_OUT_FRACTION",
    "MAX_CLASSES",
    "MAX_CLASS_NAME",
    "MAX_PER_CLASS",
    "MAX_PICTURE_MB",
    "MAX_TOTAL_MB",
    "MIN_CLASSES",
    "MIN_HELD_OUT",
    "MIN_PER_CLASS",
    "Picture",
    "PictureError",
    "PictureSet",
    "Split",
    "check_class_name",
    "check_class_names",
    "check_picture",
    "held_out_split",
    "picture_set",
]

MIN_CLASSES = 2
MAX_CLASSES = 5
MIN_PER_CLASS = 10
"""Fewer pictures than this leave too little to learn from and to test on."""
MAX_PER_CLASS = 100
MAX_PICTURE_MB = 10
"""One picture's file: a 12-megapixel phone JPEG is 3–6 MB."""
MAX_TOTAL_MB = 100
"""All the pictures of a set together, as files (they stay in the session's memory)."""
MAX_CLASS_NAME = 40
HELD_OUT_FRACTION = 0.2
MIN_HELD_OUT = 2
"""Held-out pictures of each class, at the least."""


class PictureError(ValueError):
    """A set of pictures that cannot be trained on, with one line saying which and why."""


@dataclass(frozen=True)
class Picture:
    """One picture: where it came from (a file name, "camera 3") and its encoded bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PictureSet:
    """Pictures by class, checked and decoded once (see :func:`picture_set`).

    Attributes:
        classes: The class names, in label order.
        pictures: Each class's pictures, index-aligned with ``classes``.
    """

    classes: tuple[str, ...]
    pictures: tuple[tuple[Picture, ...], ...]

    @property
    def labels(self) -> np.ndarray:
        """Each picture's class index, in the order of :meth:`flat`."""
        return np.concatenate(
            [np.full(len(p), i, dtype=np.int64) for i, p in enumerate(self.pictures)]
        )

    def flat(self) -> tuple[Picture, ...]:
        """Every picture, class after class."""
        return tuple(p for group in self.pictures for p in group)

    def __len__(self) -> int:
        return sum(len(p) for p in self.pictures)

    def fitted(self, spec: InputSpec, report: Callable[[float], None] | None = None) -> np.ndarray:
        """Every picture fitted to ``spec`` as a prediction does it: uint8 ``(N, C, H, W)``.

        ``report`` is called with the fraction decoded after each picture (it may raise to
        stop, as the scheduler's progress does).
        """
        arrays = []
        for index, picture in enumerate(self.flat(), 1):
            arrays.append(spec.fit(to_rgb(load_image(picture.data))))
            if report is not None:
                report(index / len(self))
        stacked = np.stack(arrays)
        # (N, H, W) grayscale or (N, H, W, C) colour, as (N, C, H, W)
        stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(stacked)


def check_class_name(name: str) -> str:
    """The class name, stripped; one of 1…40 printable characters.

    Raises:
        PictureError: Empty, too long or holding control characters.
    """
    clean = name.strip()
    if not clean:
        raise PictureError("a class needs a name")
    if len(clean) > MAX_CLASS_NAME:
        raise PictureError(f"class name {clean[:20]!r}… is over {MAX_CLASS_NAME} characters")
    if any(unicodedata.category(c).startswith("C") for c in clean):
        raise PictureError(f"class name {clean!r} holds control characters")
    return clean


def check_class_names(names: Sequence[str]) -> tuple[str, ...]:
    """The class names, each checked (:func:`check_class_name`); no two the same.

    Names that differ only in case or surrounding spaces ("Cat", "cat ") are the same class:
    the one rule of the page, the folders and a model's card.

    Raises:
        PictureError: A bad name, or one named twice.
    """
    clean = tuple(check_class_name(n) for n in names)
    seen: set[str] = set()
    for name in clean:
        if name.casefold() in seen:
            raise PictureError(f"two classes have the same name ({name!r}): give each its own")
        seen.add(name.casefold())
    return clean


def picture_set(
    classes: Mapping[str, Sequence[Picture]], where: str = "", decode: bool = True
) -> PictureSet:
    """Check pictures by class and decode each once; the same bytes twice in a class count once.

    Args:
        classes: Class name → its pictures, in label order.
        where: Prefix of the names in messages (the folder read).
        decode: Decode each picture to check it (turn off only for pictures checked before).

    Raises:
        PictureError: Fewer than 2 or more than 5 classes, a class with fewer than 10 or more
            than 100 (different) pictures, names twice, too many bytes, a picture that is
            not an image, the same picture in two classes.
    """
    names = [check_class_name(n) for n in classes]
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        raise PictureError(
            f"{where or 'the set'} has {len(names)} class(es): give {MIN_CLASSES}…{MAX_CLASSES}"
        )
    check_class_names(names)
    groups = _distinct(names, classes.values())
    total = 0
    for name, group, given in zip(names, groups, classes.values(), strict=True):
        if len(group) < MIN_PER_CLASS:
            different = " different" if len(group) < len(given) else ""
            found = "no pictures" if not group else f"only {len(group)}{different} picture(s)"
            raise PictureError(
                f"class {name!r} ({where + name if where else name}) has {found}: "
                f"give at least {MIN_PER_CLASS}"
            )
        if len(group) > MAX_PER_CLASS:
            raise PictureError(
                f"class {name!r} has {len(group)} pictures: at most {MAX_PER_CLASS} a class"
            )
        for picture in group:
            total += len(picture.data)
            check_picture(picture, decode)
    if total > MAX_TOTAL_MB * 1024 * 1024:
        raise PictureError(
            f"the pictures are {total / 2**20:.0f} MB together: at most {MAX_TOTAL_MB} MB"
        )
    return PictureSet(tuple(names), groups)


def _distinct(
    names: Sequence[str], groups: Iterable[Sequence[Picture]]
) -> tuple[tuple[Picture, ...], ...]:
    """Each class's pictures, the same bytes kept once (else a copy may train and test).

    Raises:
        PictureError: The same picture in two classes.
    """
    owner: dict[bytes, str] = {}
    kept: list[tuple[Picture, ...]] = []
    for name, group in zip(names, groups, strict=True):
        distinct = []
        for picture in group:
            digest = hashlib.sha256(picture.data).digest()
            if digest not in owner:
                owner[digest] = name
                distinct.append(picture)
            elif owner[digest] != name:
                raise PictureError(
                    f"{picture.name}: the same picture is in class {owner[digest]!r} and "
                    f"class {name!r}"
                )
        kept.append(tuple(distinct))
    return tuple(kept)


def check_picture(picture: Picture, decode: bool = True) -> None:
    """Refuse a picture over :data:`MAX_PICTURE_MB` or one the safe reader will not decode.

    Raises:
        PictureError: Naming the picture.
    """
    if len(picture.data) > MAX_PICTURE_MB * 1024 * 1024:
        raise PictureError(f"{picture.name}: over {MAX_PICTURE_MB} MB")
    if decode:
        try:
            load_image(picture.data)
        except ImageError as exc:
            raise PictureError(f"{picture.name}: {exc}") from None


@dataclass(frozen=True)
class Split:
    """Which pictures train and which are held out (indices into :meth:`PictureSet.flat`)."""

    train: np.ndarray
    held_out: np.ndarray


def held_out_split(labels: np.ndarray, fraction: float = HELD_OUT_FRACTION, seed: int = 0) -> Split:
    """A seeded stratified split: ``fraction`` of each class (at least 2) held out.

    Args:
        labels: Each picture's class.
        fraction: Of each class, rounded, held out.
        seed: The same seed and labels give the same split.
    """
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(max(MIN_HELD_OUT, round(fraction * len(members))), len(members) - 1)
        held.append(members[:count])
        train.append(members[count:])
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(held)))
