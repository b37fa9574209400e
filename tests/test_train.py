"""Training of the digit models, their shipped weights and cards, and the sample gallery."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.inputs.spec import MNIST_MEAN, MNIST_STD
from explorer.models import train as train_module
from explorer.models.augment import Augmentation, augment
from explorer.models.digits import TrainingError, load_digits, split_train_val
from explorer.models.gallery import export_gallery
from explorer.models.loop import net_input
from explorer.models.nets import DigitNet, HarleyNet, LeNet5
from explorer.models.train import TrainResult, predict_proba, summary_line, train

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "assets" / "models"
GALLERY = REPO / "assets" / "digits"
NETS: dict[str, type[DigitNet]] = {"lenet5": LeNet5, "harley": HarleyNet}
NO_AUG = Augmentation(
    rotation_deg=0, scale=(1, 1), aspect=1, shear_deg=0, translate_px=0, elastic_px=0, thickness=0
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shipped(name: str) -> DigitNet:
    model = NETS[name]()
    model.load_state_dict(torch.load(MODELS / f"{name}.pth", weights_only=True), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def digits(mnist_npz: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_digits(mnist_npz)


@pytest.mark.slow
def test_short_run_learns_and_writes_a_truthful_card(mnist_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "lenet5.pth"
    result = train("lenet5", mnist_npz, epochs=6, out=out, val_size=500, limit=2000, progress=False)

    assert result.train_size == 2000 and result.val_total == 500 and result.epochs == 6
    assert result.val_accuracy > 0.85  # chance is 0.10
    assert result.val_accuracy == result.val_correct / 500

    card = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert card == result.card
    assert card["weights"] == {"file": "lenet5.pth", "sha256": _sha256(out)}
    assert card["data"]["source"] == "mnist-8k.npz"
    assert card["data"]["sha256"] == _sha256(mnist_npz)
    assert card["parameters"] == sum(p.numel() for p in LeNet5().parameters()) == 61706
    assert (card["model"], card["train_size"], card["val_size"], card["seed"]) == (
        "lenet5",
        2000,
        500,
        0,
    )
    assert card["augmentation"]["rotation_deg"] == Augmentation().rotation_deg
    assert card["optimiser"]["name"] == "AdamW"
    assert card["torch"] == torch.__version__ and card["date"][:2] == "20"

    # The file holds exactly the weights that were evaluated, as float32.
    model = LeNet5()
    saved = torch.load(out, weights_only=True)
    assert all(t.dtype == torch.float32 for t in saved.values())
    model.load_state_dict(saved, strict=True)
    images, labels = load_digits(mnist_npz)
    _, val = split_train_val(labels, 500, 0)
    correct = int((predict_proba(model, images[val]).argmax(1) == labels[val]).sum())
    assert correct == card["val_correct"]


def test_same_seed_gives_the_same_weights(mnist_npz: Path) -> None:
    def run(seed: int) -> TrainResult:
        return train("harley", mnist_npz, epochs=1, limit=256, seed=seed, progress=False)

    first, again, other = run(0), run(0), run(1)
    assert first.state_dict.keys() == again.state_dict.keys()
    assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    assert not torch.equal(first.state_dict["conv1.weight"], other.state_dict["conv1.weight"])


def test_split_is_fixed_stratified_and_disjoint() -> None:
    labels = np.repeat(np.arange(10), [700, 900, 800, 800, 800, 700, 800, 900, 700, 700])
    train_idx, val_idx = split_train_val(labels, 1000, seed=0)

    assert len(val_idx) == 1000 and len(train_idx) == labels.size - 1000
    assert np.intersect1d(train_idx, val_idx).size == 0
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(labels.size))
    # Each class keeps its share: 700 of 8000 digits → 87 or 88 of 1000.
    per_class = np.bincount(labels[val_idx], minlength=10)
    expected = np.bincount(labels) * 1000 / labels.size
    assert np.all(np.abs(per_class - expected) < 1)
    assert np.array_equal(split_train_val(labels, 1000, seed=0)[1], val_idx)
    assert not np.array_equal(split_train_val(labels, 1000, seed=1)[1], val_idx)


@pytest.mark.parametrize("name", ["lenet5", "harley"])
def test_shipped_weights_load_strictly_and_pass_the_bar(
    name: str, digits: tuple[np.ndarray, np.ndarray], mnist_npz: Path
) -> None:
    card = json.loads((MODELS / f"{name}.json").read_text(encoding="utf-8"))
    assert card["model"] == name
    assert card["weights"]["sha256"] == _sha256(MODELS / f"{name}.pth")
    assert card["data"]["sha256"] == _sha256(mnist_npz)
    assert (card["train_size"], card["val_size"], card["seed"]) == (7000, 1000, 0)
    assert card["parameters"] == sum(p.numel() for p in NETS[name]().parameters())

    images, labels = digits
    _, val = split_train_val(labels, card["val_size"], card["seed"])
    predictions = predict_proba(_shipped(name), images[val]).argmax(1)
    correct = int((predictions == labels[val]).sum())
    assert correct == card["val_correct"]
    assert correct / len(val) >= 0.985


def test_gallery_digits_are_unseen_and_recognised(digits: tuple[np.ndarray, np.ndarray]) -> None:
    paths = sorted(GALLERY.glob("*.png"))
    assert [p.name for p in paths] == [f"{d}_{k}.png" for d in range(10) for k in range(3)]
    pictures = []
    for path in paths:
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (28, 28)
            pictures.append(np.asarray(img))
    pictures_arr = np.stack(pictures)
    truth = np.array([int(p.name[0]) for p in paths])

    assert np.array_equal(predict_proba(_shipped("lenet5"), pictures_arr).argmax(1), truth)

    images, labels = digits
    train_idx, val_idx = split_train_val(labels, 1000, 0)
    val_bytes = {images[i].tobytes(): int(labels[i]) for i in val_idx}
    train_bytes = {images[i].tobytes() for i in train_idx}
    for picture, label in zip(pictures_arr, truth, strict=True):
        assert val_bytes.get(picture.tobytes()) == label  # a validation digit, correctly labelled
        assert picture.tobytes() not in train_bytes

    readme = (GALLERY / "README.md").read_text(encoding="utf-8")
    assert "MIT" in readme and "1.1.0" in readme and "LeCun" in readme


def test_export_gallery_is_deterministic(mnist_npz: Path, tmp_path: Path) -> None:
    written = export_gallery(
        mnist_npz, tmp_path / "a", MODELS / "lenet5.pth", per_class=2, min_confidence=0.5
    )
    again = export_gallery(
        mnist_npz, tmp_path / "b", MODELS / "lenet5.pth", per_class=2, min_confidence=0.5
    )
    assert [p.name for p in written] == [f"{d}_{k}.png" for d in range(10) for k in range(2)]
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]
    with pytest.raises(TrainingError, match="confident"):
        export_gallery(mnist_npz, tmp_path / "c", MODELS / "lenet5.pth", min_confidence=1.01)


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    # allow_pickle=True is the default: named, so mypy does not look for that bool in **arrays
    np.savez(path, allow_pickle=True, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"pictures": np.zeros((3, 28, 28), np.uint8)}, "must hold arrays"),
        ({"images": np.zeros((3, 28, 28), np.float32), "labels": np.zeros(3, np.uint8)}, "uint8"),
        ({"images": np.zeros((3, 32, 32), np.uint8), "labels": np.zeros(3, np.uint8)}, "28, 28"),
        ({"images": np.zeros((3, 28, 28), np.uint8), "labels": np.zeros(4, np.uint8)}, "labels"),
        ({"images": np.zeros((3, 28, 28), np.uint8), "labels": np.full(3, 10)}, "0–9"),
    ],
)
def test_bad_npz_is_a_training_error(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(TrainingError, match=message):
        load_digits(path)
    with pytest.raises(TrainingError):
        train("lenet5", path, epochs=1, progress=False)


def test_missing_or_garbled_file_and_bad_arguments_are_training_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="not found"):
        load_digits(tmp_path / "nope.npz")
    garbled = tmp_path / "garbled.npz"
    garbled.write_bytes(b"not a zip at all")
    with pytest.raises(TrainingError, match="cannot read"):
        load_digits(garbled)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(TrainingError, match="single array"):
        load_digits(single)
    good = _npz(
        tmp_path / "ok.npz", images=np.zeros((20, 28, 28), np.uint8), labels=np.arange(20) % 10
    )
    with pytest.raises(TrainingError, match="unknown model"):
        train("alexnet", good, progress=False)
    with pytest.raises(TrainingError, match="positive"):
        train("lenet5", good, epochs=0, progress=False)
    with pytest.raises(TrainingError, match="val_size"):
        train("lenet5", good, val_size=20, progress=False)


def test_offline_mnist_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error>")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(TrainingError) as caught:
        train("lenet5", "mnist", epochs=1, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot download MNIST" in message and "train-images-idx3-ubyte.gz" in message


def test_augment_keeps_shape_and_range_and_is_seeded() -> None:
    pixels = torch.zeros(64, 1, 28, 28)
    pixels[:, :, 6:22, 12:16] = 1.0  # a bar, like a "1"
    out = augment(pixels, torch.Generator().manual_seed(0))
    again = augment(pixels, torch.Generator().manual_seed(0))

    assert out.shape == pixels.shape and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(out, again)
    assert not torch.equal(out, pixels)
    assert not torch.equal(out[0], out[1])  # each digit gets its own distortion
    ink = out.sum(dim=(1, 2, 3)) / pixels[0].sum()
    assert ink.min() > 0.4 and ink.max() < 2.0  # distorted, still the same amount of digit


def test_augment_geometry() -> None:
    pixels = torch.zeros(4, 1, 28, 28)
    pixels[:, :, 10:18, 10:18] = 1.0
    generator = torch.Generator().manual_seed(0)

    assert torch.allclose(augment(pixels, generator, NO_AUG), pixels, atol=1e-5)
    half = dataclasses.replace(NO_AUG, scale=(0.5, 0.5))
    shrunk = augment(pixels, generator, half)
    # Scale 0.5 shrinks the 8×8 square to 4×4: a quarter of the ink, still centred.
    assert torch.allclose(shrunk.sum(dim=(1, 2, 3)), torch.full((4,), 16.0), atol=0.5)
    assert shrunk[:, 0, 14, 14].min() == 1.0 and shrunk[:, 0, 10, 10].max() == 0.0


def test_net_input_pads_harley_and_normalises() -> None:
    pixels = torch.rand(2, 1, 28, 28)
    lenet = net_input(LeNet5(), pixels)
    harley = net_input(HarleyNet(), pixels)

    assert lenet.shape == (2, 1, 28, 28) and harley.shape == (2, 1, 32, 32)
    assert torch.equal(lenet, (pixels - MNIST_MEAN) / MNIST_STD)  # as the shipped nets trained
    assert torch.allclose(harley[:, :, 2:30, 2:30], lenet)
    assert torch.allclose(harley[:, :, :2], torch.tensor(-MNIST_MEAN / MNIST_STD))


def test_summary_line() -> None:
    result = TrainResult(
        model_name="lenet5",
        state_dict={},
        val_accuracy=0.991,
        val_correct=991,
        val_total=1000,
        train_size=7000,
        epochs=40,
        card={},
    )
    assert summary_line(result) == (
        "lenet5: validation accuracy 99.10 % (991/1000) after 40 epochs on 7000 digits"
    )


def test_default_training_matches_the_shipped_card() -> None:
    card = json.loads((MODELS / "lenet5.json").read_text(encoding="utf-8"))
    assert card["epochs"] == train_module.DEFAULT_EPOCHS
