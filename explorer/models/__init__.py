"""Models: the zoo, the digit nets, weights, where they run, training, and students' own files.

- The zoo: :mod:`.zoo` (:func:`~.zoo.load_model` gives a :class:`~.zoo.LoadedModel`, the
  object every view uses), :mod:`.nets` (:class:`~.nets.DigitNet`: LeNet-5, Harley's net,
  Tiny; ZFNet), :mod:`.custom` (the Train page's choices of a digit net), :mod:`.weights`
  (loading and checking state dicts), :mod:`.device` (CPU/GPU, the server's thread policy).
- Training, one stack: :mod:`.digits` (the data), :mod:`.augment`, :mod:`.loop` (one step,
  one epoch), :mod:`.train` (the shipped weights' recipe), :mod:`.live` (the Train page's
  runs), :mod:`.gallery` (the shipped digit images).
- Your own pictures (the Your pictures page, ``train --images``): :mod:`.pictures` (a set
  of pictures by class, bounded; the held-out split), :mod:`.folders` (read one from an
  ``ImageFolder`` layout), :mod:`.picturenets` (the small CNN, fine-tuned ResNet-18),
  :mod:`.teach` (training them with :mod:`.loop`), :mod:`.cards` (the card inside the
  ``.pt2``), :mod:`.shapes` (synthetic pictures of shapes, for tests and benchmarks).
- Students' own files: :mod:`.own` (``.pt2``/``.onnx`` as a ``LoadedModel``),
  :mod:`.untrusted` (the tasks the sandboxed worker runs), :mod:`.sandboxed` (the server's
  side of them).

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "augment",
    "cards",
    "custom",
    "device",
    "digits",
    "folders",
    "gallery",
    "live",
    "loop",
    "nets",
    "own",
    "picturenets",
    "pictures",
    "sandboxed",
    "shapes",
    "teach",
    "train",
    "untrusted",
    "weights",
    "zoo",
]
