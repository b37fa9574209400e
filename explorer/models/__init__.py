"""Models: the zoo, the shipped digit nets, weights, where they run, and students' own files.

:func:`load_model` gives a zoo model as a :class:`LoadedModel`; :func:`load_program` does the
same for a ``.pt2``/``.onnx`` file a student brings (read in the sandbox). Training lives in
:mod:`explorer.models.train` and :mod:`explorer.models.live`, imported where needed.
"""

from explorer.models.device import DeviceError, describe_device, pick_device
from explorer.models.nets import DIGIT_CLASSES, HarleyNet, LeNet5, ZFNet
from explorer.models.own import (
    OwnModelError,
    Program,
    load_program,
    own_loaded_model,
    program_model,
    read_untrusted,
)
from explorer.models.weights import WeightsError, load_weights_into, read_state_dict
from explorer.models.zoo import (
    PRETRAINED,
    UNTRAINED,
    ZOO,
    Family,
    LoadedModel,
    ModelError,
    ModelSpec,
    Source,
    get_spec,
    load_model,
)

__all__ = [
    "DIGIT_CLASSES",
    "PRETRAINED",
    "UNTRAINED",
    "ZOO",
    "DeviceError",
    "Family",
    "HarleyNet",
    "LeNet5",
    "LoadedModel",
    "ModelError",
    "ModelSpec",
    "OwnModelError",
    "Program",
    "Source",
    "WeightsError",
    "ZFNet",
    "describe_device",
    "get_spec",
    "load_model",
    "load_program",
    "load_weights_into",
    "own_loaded_model",
    "pick_device",
    "program_model",
    "read_state_dict",
    "read_untrusted",
]
