"""View-models: what each page shows, as data. The pages lay them out; the benchmark times them.

One module a page (:mod:`.draw`, :mod:`.image`, :mod:`.lab`, :mod:`.train`, :mod:`.experiment`,
:mod:`.pictures`), the views several pages share (:mod:`.attribution`, :mod:`.channel`,
:mod:`.captions`; :mod:`.imageindex`, the card's top inputs from an image index), :mod:`.links`
(a view's link: the drawing in it, the parameters a page ignored), :mod:`.lessons` (the Lessons
page's lesson files, with their live views in :mod:`.lesson_live` and their checks in
:mod:`.lesson_checks`), and :mod:`.cache`, the one cache policy and key scheme.

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
    "imageindex",
    "lab",
    "lesson_checks",
    "lesson_live",
    "lessons",
    "links",
    "pictures",
    "train",
]
