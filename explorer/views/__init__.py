"""View-models: what each page shows, as data. The pages lay them out; the benchmark times them.

One module a page (:mod:`.draw`, :mod:`.image`, :mod:`.lab`, :mod:`.train`,
:mod:`.experiment`), the views several pages share (:mod:`.attribution`, :mod:`.channel`,
:mod:`.captions`), and :mod:`.cache`, the one cache policy and key scheme.

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "attribution",
    "cache",
    "captions",
    "channel",
    "draw",
    "experiment",
    "image",
    "lab",
    "train",
]
