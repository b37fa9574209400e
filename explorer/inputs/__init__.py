"""What goes in: canvas strokes, uploads and photos, prepared as each model expects.

:class:`InputSpec` says what a model takes (shape, layout, normalisation) and is the one place
pixels become a normalised tensor and back; :func:`preprocess_input` reads an image and
prepares it for a spec; :mod:`.samples` lists the shipped digits and photos, :mod:`.strokes`
turns the canvas's strokes into a picture.
"""

from explorer.inputs.preprocess import (
    ImageError,
    ImageSource,
    NothingDrawn,
    PreparedInput,
    load_image,
    preprocess_digit,
    preprocess_input,
    preprocess_photo,
)
from explorer.inputs.samples import digit_samples, photo_samples, samples_for
from explorer.inputs.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MNIST_MEAN,
    MNIST_STD,
    InputSpec,
    InputSpecError,
    digit_spec,
    photo_spec,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "ImageError",
    "ImageSource",
    "InputSpec",
    "InputSpecError",
    "NothingDrawn",
    "PreparedInput",
    "digit_samples",
    "digit_spec",
    "load_image",
    "photo_samples",
    "photo_spec",
    "preprocess_digit",
    "preprocess_input",
    "preprocess_photo",
    "samples_for",
]
