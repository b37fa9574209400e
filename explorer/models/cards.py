"""A model's card inside its ``.pt2``: class names and input, so the file is all you need.

:func:`explorer.models.own.program_bytes` writes a trained network as a ``torch.export``
program with its card (JSON: classes, input size/mean/std, architecture, held-out accuracy,
date) as the archive's extra file ``card.json``; :func:`read_card` finds it again. A card
comes with a file a user brings, so it is read as untrusted data: its size is checked before
it is read, and every field is checked for type and range (:class:`CardError` says which).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

from explorer.inputs.spec import InputSpec, InputSpecError
from explorer.models.pictures import MAX_CLASSES, PictureError, check_class_names

__all__ = [
    "CARD_ENTRY",
    "CARD_KIND",
    "MAX_CARD_BYTES",
    "Card",
    "CardError",
    "check_card",
    "read_card",
]

CARD_ENTRY = "card.json"
"""The card's name among a ``.pt2``'s extra files (``<archive>/extra/card.json``)."""
CARD_KIND = "cnn-explorer pictures model"
MAX_CARD_BYTES = 16 * 1024
"""A real card is under 1 kB."""
MAX_TEXT = 200
"""Longest free-text field kept (architecture, weights, date)."""
_TEXT_FIELDS = ("architecture", "start_weights", "date", "torch")


class CardError(ValueError):
    """A card that is not one: too big, not JSON, a field of the wrong type or range."""


@dataclass(frozen=True)
class Card:
    """What a card says, checked.

    Attributes:
        classes: Class names, index-aligned with the model's scores.
        spec: How a picture becomes the model's input.
        fields: The card's other fields that were kept (short texts and numbers).
    """

    classes: tuple[str, ...]
    spec: InputSpec
    fields: dict[str, Any]


def read_card(data: bytes) -> Card | None:
    """The card of a ``.pt2`` archive's bytes; ``None`` when it has none (or is no zip).

    Raises:
        CardError: More than one card, or a card that is not valid.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [e for e in archive.infolist() if e.filename.endswith(f"extra/{CARD_ENTRY}")]
            if not entries:
                return None
            if len(entries) > 1:
                raise CardError("the file holds more than one card")
            if entries[0].file_size > MAX_CARD_BYTES:
                raise CardError(f"the card is over {MAX_CARD_BYTES // 1024} kB")
            with archive.open(entries[0]) as entry:
                raw = entry.read(MAX_CARD_BYTES + 1)  # the stated size may lie
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
        if isinstance(exc, CardError):
            raise
        return None  # not a readable zip: the program's own checks say why
    return check_card(raw)


def check_card(raw: bytes) -> Card:
    """Parse and check a card's JSON.

    Raises:
        CardError: Too big, not a JSON object, or a field of the wrong type or range.
    """
    if len(raw) > MAX_CARD_BYTES:
        raise CardError(f"the card is over {MAX_CARD_BYTES // 1024} kB")
    try:
        card = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CardError("the card is not JSON") from None
    if not isinstance(card, dict):
        raise CardError("the card is not a JSON object")
    classes = _classes(card.get("classes"))
    spec = _spec(card.get("input"))
    fields: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = card.get(name)
        if isinstance(value, str):
            fields[name] = value[:MAX_TEXT]
    accuracy = card.get("held_out_accuracy")
    if isinstance(accuracy, int | float) and _number(accuracy) and 0 <= accuracy <= 1:
        fields["held_out_accuracy"] = float(accuracy)
    return Card(classes, spec, fields)


def _classes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_CLASSES:
        raise CardError(f"the card's classes must be a list of 2…{MAX_CLASSES} names")
    if not all(isinstance(name, str) for name in value):
        raise CardError("the card's class names must be strings")
    try:
        return check_class_names(value)
    except PictureError as exc:
        raise CardError(f"the card's classes: {exc}") from None


def _spec(value: Any) -> InputSpec:
    if not isinstance(value, dict):
        raise CardError("the card's input must be an object (channels, height, width, mean, std)")
    sizes: list[int] = []
    for key in ("channels", "height", "width"):
        size = value.get(key)
        if not isinstance(size, int) or isinstance(size, bool):
            raise CardError("the card's input channels, height and width must be whole numbers")
        sizes.append(size)
    stats = []
    for key in ("mean", "std"):
        numbers = value.get(key)
        if not isinstance(numbers, list) or not 1 <= len(numbers) <= 3:
            raise CardError(f"the card's input {key} must be a list of 1…3 numbers")
        if not all(_number(n) and abs(n) <= 1e3 for n in numbers):
            raise CardError(f"the card's input {key} must hold finite numbers")
        stats.append(tuple(float(n) for n in numbers))
    spec = InputSpec(sizes[0], sizes[1], sizes[2], stats[0], stats[1])
    try:
        spec.check()
    except InputSpecError as exc:
        raise CardError(f"the card's input: {exc}") from None
    return spec


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
