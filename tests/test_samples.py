"""The shipped samples: one label each, the same on every page."""

from __future__ import annotations

from explorer.assets import DIGITS_DIR
from explorer.inputs.samples import digit_label, digit_samples, photo_samples, samples_for


def test_every_digit_file_has_one_label_naming_its_digit_and_sample() -> None:
    samples = digit_samples()
    files = sorted(DIGITS_DIR.glob("*.png"))
    assert len(samples) == len(files) == 30
    assert sorted(samples.values()) == files
    for label, path in samples.items():
        digit, index = path.stem.split("_")
        assert label == f"{digit} (sample {int(index) + 1})" == digit_label(path)


def test_photos_and_families() -> None:
    photos = photo_samples()
    assert photos and all(p.suffix == ".jpg" and p.is_file() for p in photos.values())
    assert all("_" not in label for label in photos)
    assert samples_for("digit") == digit_samples()
    assert samples_for("photo") == photos
