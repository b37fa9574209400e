"""The Lessons page's lessons: read from one TOML file each, checked field by field.

A lesson is a file in ``assets/lessons/``, shown in the order of the file names
(``01-pixels-and-kernels.toml`` first). Its URL name (``?lesson=pixels-and-kernels``) is the
file name without the number, so renumbering keeps links working. A file holds::

    title = "Stride and padding"
    text = \"\"\"A few sentences of markdown.\"\"\"

    [view]                      # the live view: a key of VIEW_PARAMS
    kind = "convolve"
    input = "square-7x7"        # its parameters (VIEW_PARAMS)

    [[links]]                   # any number: a page of the app and its widgets' values
    label = "Open the Convolution lab with stride 2"
    page = "lab"                # a key of explorer.hosting.addresses.URL_PATHS
    query = { lab_stride = 2 }

    [question]
    text = "Set the stride to 2: how wide is the output?"
    check = "output-size"       # one of lesson_checks.CHECKS
    hint = "⌊(W − F + 2P) / S⌋ + 1"
    stride = 2                  # the check's parameters: the settings the question assumes

A ``layer`` (of a model view or its question) must be a layer of the view's model. A bad file
raises :class:`LessonError`, whose message names the file and the field.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from explorer.analysis.capture import list_layers
from explorer.assets import ASSETS_DIR
from explorer.hosting.addresses import URL_PATHS
from explorer.inputs.samples import digit_samples
from explorer.lab import maths
from explorer.models.zoo import ZOO, build_architecture
from explorer.views.lesson_checks import CHECKS, REQUIRED, Param
from explorer.views.lesson_live import (
    DIGIT_MODELS,
    MAX_STRIDE,
    TEACHING_INPUTS,
)

LESSONS_DIR = ASSETS_DIR / "lessons"
"""The shipped lessons, one ``NN-name.toml`` each."""
MAX_LESSONS = 40
"""At most this many lesson files are read."""
MAX_FILE_BYTES = 32_000
"""A lesson file longer than this is refused (a lesson is a few sentences)."""
MODEL_PARTS = ("layers", "maps", "prediction")
"""What a model view can show: the layer table, one layer's maps, the softmax."""
DONE_MARK = ":material/check_circle:"
"""The mark of a lesson answered right (a Material icon: every browser has the font)."""
TODO_MARK = ":material/radio_button_unchecked:"
"""The mark of a lesson not answered right yet."""
SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
QUERY_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")

_SOURCE = {
    "input": Param(str, choices=tuple(TEACHING_INPUTS), about="the small input"),
    "kernel": Param(str, "edge: outline (8-centre)", choices=tuple(maths.KERNELS)),
    "padding": Param(str, "valid", choices=maths.PADDINGS),
}
_SAMPLE = {
    "model": Param(str, "lenet5", choices=DIGIT_MODELS),
    "sample": Param(str, "7 (sample 1)", choices=tuple(digit_samples())),
}
VIEW_PARAMS: dict[str, dict[str, Param]] = {
    "convolve": {**_SOURCE, "stride": Param(int, 1, low=1, high=MAX_STRIDE)},
    "activation": {**_SOURCE, "activation": Param(str, "none", choices=maths.ACTIVATIONS)},
    "pool": {
        **_SOURCE,
        "activation": Param(str, "relu", choices=maths.ACTIVATIONS),
        "mode": Param(str, "max", choices=maths.POOL_MODES),
        "size": Param(int, 2, low=1, high=MAX_STRIDE),
        "stride": Param(int, 2, low=1, high=MAX_STRIDE),
    },
    "model": {
        **_SAMPLE,
        "parts": Param(list, ["layers"], choices=MODEL_PARTS),
        "layer": Param(str, "", about="the layer picked first (empty: the first layer)"),
    },
    "experiment": _SAMPLE,
    "link-only": {},
}
"""Each live view kind's parameters in a lesson file (``[view]``), with their defaults."""


class LessonError(ValueError):
    """A lesson file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Link:
    """A page of the app, opened with some of its widgets set.

    Attributes:
        label: The link's text.
        page: A key of :data:`~explorer.hosting.addresses.URL_PATHS`.
        query: Widget keys and values, as the URL carries them.
    """

    label: str
    page: str
    query: tuple[tuple[str, str], ...] = ()

    @property
    def url_path(self) -> str:
        """The page's URL path (empty for the default page, Draw)."""
        return URL_PATHS[self.page]

    @property
    def url(self) -> str:
        """The link relative to the Lessons page, e.g. ``convolution-lab?lab_stride=2``."""
        path = self.url_path or "./"
        return path + (f"?{urlencode(self.query, quote_via=quote)}" if self.query else "")


@dataclass(frozen=True)
class Question:
    """What the student is asked, how it is checked, and the hint after a wrong answer.

    Attributes:
        text: The question (markdown).
        check: A key of :data:`~explorer.views.lesson_checks.CHECKS`.
        hint: Shown after a wrong answer (markdown).
        params: The check's parameters, every default filled in.
    """

    text: str
    check: str
    hint: str
    params: Mapping[str, Any]

    @property
    def asks_number(self) -> bool:
        """Whether the student types a number."""
        return CHECKS[self.check].answer


@dataclass(frozen=True)
class Lesson:
    """One lesson as its file says.

    Attributes:
        slug: Its name in URLs and widget keys (the file name without the number).
        file: The file's name.
        title: The title.
        text: A few sentences of markdown.
        view: The live view's kind (a key of :data:`VIEW_PARAMS`).
        view_params: Its parameters, every default filled in.
        links: Pages to open.
        question: The question.
    """

    slug: str
    file: str
    title: str
    text: str
    view: str
    view_params: Mapping[str, Any]
    links: tuple[Link, ...]
    question: Question

    def key(self, widget: str) -> str:
        """A widget key of this lesson: ``lesson_<slug>_<widget>``."""
        return f"lesson_{self.slug.replace('-', '_')}_{widget}"


def slug_of(file: str) -> str:
    """``01-pixels-and-kernels.toml`` → ``pixels-and-kernels``."""
    return re.sub(r"^[0-9]+[-_]?", "", Path(file).stem)


def _fail(where: str, problem: str) -> LessonError:
    return LessonError(f"{where}: {problem}")


def _field(where: str, key: str) -> str:
    """``01-x.toml`` + ``view`` → ``01-x.toml: view``; then ``01-x.toml: view.kind``."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(_field(where, key), "missing, or not text")
    return value


def _item(param: Param, value: Any, where: str) -> Any:
    """One value (or list item) of ``param``'s type, range and choices."""
    kind = str if param.kind is str else int
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _fail(where, f"must be {'text' if kind is str else 'a whole number'}, got {value!r}")
    if isinstance(value, int) and param.low is not None and value < param.low:
        raise _fail(where, f"must be at least {param.low}, got {value}")
    if isinstance(value, int) and param.high is not None and value > param.high:
        raise _fail(where, f"must be at most {param.high}, got {value}")
    if param.choices is not None and value not in param.choices:
        choices = ", ".join(repr(c) for c in param.choices)
        raise _fail(where, f"{value!r} is not one of {choices}")
    return value


def _value(param: Param, value: Any, where: str) -> Any:
    if param.kind is not list:
        return _item(param, value, where)
    if not isinstance(value, list) or not 1 <= len(value) <= 8:
        raise _fail(where, f"must be a list of 1 to 8 values, got {value!r}")
    kind = str if param.choices and isinstance(param.choices[0], str) else int
    item = Param(kind, choices=param.choices, low=param.low, high=param.high)
    return [_item(item, v, f"{where}[{i}]") for i, v in enumerate(value)]


def _params(
    table: Mapping[str, Any], schema: Mapping[str, Param], fixed: Sequence[str], where: str
) -> dict[str, Any]:
    """A table's parameters checked against ``schema``, defaults filled in."""
    unknown = set(table) - set(schema) - set(fixed)
    if unknown:
        known = ", ".join([*fixed, *schema])
        raise _fail(_field(where, sorted(unknown)[0]), f"unknown field (known: {known})")
    found = {}
    for name, param in schema.items():
        if name not in table:
            if param.default is REQUIRED:
                raise _fail(_field(where, name), f"missing ({param.about or param.kind.__name__})")
            found[name] = param.default
        else:
            found[name] = _value(param, table[name], _field(where, name))
    return found


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    table = data.get(key)
    if not isinstance(table, dict):
        raise _fail(_field(where, key), f"missing, or not a table ([{key}])")
    return table


def _link(table: object, where: str) -> Link:
    if not isinstance(table, dict):
        raise _fail(where, "must be a table ([[links]])")
    _params(table, {}, ("label", "page", "query"), where)
    page = _text(table, "page", where)
    if page not in URL_PATHS:
        raise _fail(_field(where, "page"), f"{page!r} is not one of {', '.join(URL_PATHS)}")
    query = table.get("query", {})
    if not isinstance(query, dict):
        raise _fail(_field(where, "query"), "must be a table, e.g. { lab_stride = 2 }")
    pairs = []
    for key, value in query.items():
        if not QUERY_KEY.fullmatch(key) or not isinstance(value, str | int | float | bool):
            raise _fail(_field(where, f"query.{key}"), "must be a widget key and a plain value")
        pairs.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return Link(_text(table, "label", where), page, tuple(pairs))


def _question(data: Mapping[str, Any], view: str, file: str) -> Question:
    table = _table(data, "question", file)
    where = _field(file, "question")
    kind = _text(table, "check", where)
    if kind not in CHECKS:
        raise _fail(_field(where, "check"), f"{kind!r} is not one of {', '.join(CHECKS)}")
    if CHECKS[kind].view != view:
        raise _fail(
            _field(where, "check"),
            f"{kind!r} reads a {CHECKS[kind].view!r} view, but the lesson's view is {view!r}",
        )
    params = _params(table, CHECKS[kind].params, ("text", "check", "hint"), where)
    return Question(_text(table, "text", where), kind, _text(table, "hint", where), params)


@functools.lru_cache(maxsize=len(DIGIT_MODELS))
def layer_names(model: str) -> tuple[str, ...]:
    """The layers a capture of zoo model ``model`` reports (its architecture, no weights)."""
    return tuple(layer.name for layer in list_layers(build_architecture(ZOO[model])))


def _check_layers(file: str, view: Mapping[str, Any], question: Mapping[str, Any]) -> None:
    """Every ``layer`` the view or the question names is a layer of the view's model."""
    model = view.get("model")
    if model is None:  # only the model views have layers
        return
    names = layer_names(model)
    for table, where in ((view, _field(file, "view")), (question, _field(file, "question"))):
        layer = table.get("layer")
        if layer and layer not in names:
            raise _fail(
                _field(where, "layer"), f"{layer!r} is not a layer of {model} ({', '.join(names)})"
            )


def parse_lesson(source: str, file: str) -> Lesson:
    """A lesson from the text of its file.

    Args:
        source: The TOML text.
        file: The file's name (for the slug and the error messages).

    Raises:
        LessonError: The file is not a valid lesson.
    """
    slug = slug_of(file)
    if not SLUG.fullmatch(slug):
        raise _fail(file, "the name must be NN-words-with-dashes.toml (a-z, 0-9)")
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(file, f"not valid TOML: {exc}") from None
    _params(data, {}, ("title", "text", "view", "links", "question"), file)
    view_table = _table(data, "view", file)
    where = _field(file, "view")
    view = _text(view_table, "kind", where)
    if view not in VIEW_PARAMS:
        raise _fail(_field(where, "kind"), f"{view!r} is not one of {', '.join(VIEW_PARAMS)}")
    links = data.get("links", [])
    if not isinstance(links, list):
        raise _fail(_field(file, "links"), "must be a list of tables ([[links]])")
    view_params = _params(view_table, VIEW_PARAMS[view], ("kind",), where)
    question = _question(data, view, file)
    _check_layers(file, view_params, question.params)
    return Lesson(
        slug=slug,
        file=file,
        title=_text(data, "title", file),
        text=_text(data, "text", file),
        view=view,
        view_params=view_params,
        links=tuple(_link(link, _field(file, f"links[{i}]")) for i, link in enumerate(links)),
        question=question,
    )


def load_lesson(path: Path) -> Lesson:
    """The lesson in file ``path``.

    Raises:
        LessonError: The file is too long, not UTF-8 or not a valid lesson.
    """
    if path.stat().st_size > MAX_FILE_BYTES:
        raise _fail(path.name, f"longer than {MAX_FILE_BYTES:,} bytes")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(path.name, "not UTF-8 text") from None
    return parse_lesson(source, path.name)


def load_lessons(folder: Path = LESSONS_DIR) -> list[Lesson]:
    """Every ``*.toml`` lesson in ``folder``, in the order of the file names.

    Raises:
        LessonError: A bad file (the first), two with one slug or title, none or too many.
    """
    paths = sorted(folder.glob("*.toml"))
    if not paths:
        raise LessonError(f"{folder}: no lesson files (*.toml)")
    if len(paths) > MAX_LESSONS:
        raise LessonError(f"{folder}: more than {MAX_LESSONS} lesson files")
    lessons = [load_lesson(path) for path in paths]
    slugs: dict[str, str] = {}
    titles: dict[str, str] = {}
    for lesson in lessons:
        if lesson.slug in slugs:
            raise _fail(lesson.file, f"the same name as {slugs[lesson.slug]} once numbered")
        if lesson.title in titles:
            raise _fail(_field(lesson.file, "title"), f"the same as {titles[lesson.title]}'s")
        slugs[lesson.slug], titles[lesson.title] = lesson.file, lesson.file
    return lessons


def find_lesson(lessons: Sequence[Lesson], slug: object) -> Lesson | None:
    """The lesson named ``slug`` (a URL's ``?lesson=``), or None for any other value."""
    return next((lesson for lesson in lessons if lesson.slug == slug), None)


def neighbours(lessons: Sequence[Lesson], slug: str) -> tuple[Lesson | None, Lesson | None]:
    """The lessons before and after ``slug`` (None at either end)."""
    slugs = [lesson.slug for lesson in lessons]
    at = slugs.index(slug)
    return (lessons[at - 1] if at > 0 else None), (
        lessons[at + 1] if at + 1 < len(lessons) else None
    )


def progress(lessons: Sequence[Lesson], done: set[str]) -> tuple[int, str]:
    """How many of ``lessons`` are answered right, and that in words."""
    count = sum(lesson.slug in done for lesson in lessons)
    return count, f"{count} of {len(lessons)} lessons done"


def lesson_list(lessons: Sequence[Lesson], done: set[str]) -> str:
    """Every lesson, numbered, with :data:`DONE_MARK` or :data:`TODO_MARK` (markdown)."""
    return "\n".join(
        f"{i}. {DONE_MARK if lesson.slug in done else TODO_MARK} {lesson.title}"
        for i, lesson in enumerate(lessons, 1)
    )


__all__ = [
    "DONE_MARK",
    "LESSONS_DIR",
    "MAX_FILE_BYTES",
    "MAX_LESSONS",
    "MODEL_PARTS",
    "TODO_MARK",
    "VIEW_PARAMS",
    "Lesson",
    "LessonError",
    "Link",
    "Question",
    "find_lesson",
    "layer_names",
    "lesson_list",
    "load_lesson",
    "load_lessons",
    "neighbours",
    "parse_lesson",
    "progress",
    "slug_of",
]
