"""Lessons page: a guided path from a kernel to "why this class?", one short lesson at a time.

Each lesson (a file in ``assets/lessons/``, read by :mod:`explorer.views.lessons`) has a few
sentences, a live view computed on the student's own settings, links to the full pages and a
question answered by acting, checked by :mod:`explorer.views.lesson_checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer.figures.channels import channel_grid_figure
from explorer.figures.describe import number_text
from explorer.hosting.addresses import PREDICTION_LABEL
from explorer.inputs.samples import digit_samples
from explorer.lab import figures as lf
from explorer.lab import maths
from explorer.views import lesson_checks as checks
from explorer.views import lesson_live as live
from explorer.views import lessons as lv
from explorer.views.draw import softmax_figure
from explorer.views.lab import ACTIVATION_LABELS
from pages.common import cached_model, index_slider, inline_image
from pages.links import finish_view_link, start_view_link

DONE_KEY = "lessons_done"  # session state: the slugs of the lessons answered right
URL_KEY = "lesson_in_url"  # session state: the slug this page last wrote to ?lesson=
GRID_HEIGHT = 360
PAGES_DIR = Path(__file__).parent


def show_convolve(lesson: lv.Lesson) -> live.ConvLive:
    """A kernel sliding over the lesson's small input: kernel, stride, padding, position."""
    p = lesson.view_params
    a, b, c = st.columns(3)
    kernels = list(maths.KERNELS)
    kernel = a.selectbox("Kernel", kernels, kernels.index(p["kernel"]), key=lesson.key("kernel"))
    stride = b.slider("Stride", 1, live.MAX_STRIDE, p["stride"], key=lesson.key("stride"))
    padding = c.radio(
        "Padding",
        maths.PADDINGS,
        maths.PADDINGS.index(p["padding"]),
        key=lesson.key("padding"),
        horizontal=True,
    )
    conv = live.convolve_live(p["input"], str(kernel), int(stride), str(padding))
    result = conv.result
    rows, cols = result.output.shape
    row_column, col_column = st.columns(2)
    with row_column:
        row = index_slider("Output row", rows, lesson.key("row"))
    with col_column:
        col = index_slider("Output column", cols, lesson.key("col"))
    step = result.step(row, col)
    kh, kw = result.kernel.shape[1:]
    patch = lf.Outline(step.top, step.left, step.top + kh, step.left + kw)
    left, right = st.columns(2)
    left.plotly_chart(
        lf.padded_input_figure(
            result.padded[0],
            result.pad,
            patch,
            f"input, {lf.pad_text(result.pad)}",
            height=GRID_HEIGHT,
        ),
        key=lesson.key("input_figure"),
    )
    right.plotly_chart(
        lf.output_figure(result.output, (row, col), height=GRID_HEIGHT),
        key=lesson.key("output_figure"),
    )
    kernel_column, sum_column = st.columns([1, 2], vertical_alignment="center")
    kernel_column.plotly_chart(
        lf.kernel_figure(result.kernel[0], "kernel", 280), key=lesson.key("kernel_figure")
    )
    sum_column.markdown(
        f"**output[{row}, {col}]** = {step.equation() or 'Σ products'} "
        f"= **{number_text(step.value, maths.DECIMALS)}**"
    )
    return conv


def show_activation(lesson: lv.Lesson) -> live.ActivationLive:
    """The lesson's feature map before and after the student's activation, on one scale."""
    p = lesson.view_params
    names = list(maths.ACTIVATIONS)
    activation = st.selectbox(
        "Activation",
        names,
        names.index(p["activation"]),
        key=lesson.key("activation"),
        format_func=ACTIVATION_LABELS.__getitem__,
    )
    conv = live.feature_map(p["input"], p["kernel"], p["padding"])
    shown = live.activation_live(conv, str(activation))
    view = shown.shown
    left, right = st.columns(2)
    left.plotly_chart(
        lf.grid_figure(view.before, "before: conv output", view.kind, view.scale, height=340),
        key=lesson.key("before"),
    )
    right.plotly_chart(
        lf.grid_figure(view.after, f"after: {view.label}", view.kind, view.scale, height=340),
        key=lesson.key("after"),
    )
    st.caption(f"{view.formula} · {maths.count_negative(view.after)} values below 0 after it.")
    return shown


def show_pool(lesson: lv.Lesson) -> live.PoolLive:
    """The lesson's rectified map pooled with the student's mode, window and stride."""
    p = lesson.view_params
    a, b, c = st.columns(3)
    modes = list(maths.POOL_MODES)
    mode = a.selectbox("Pooling", modes, modes.index(p["mode"]), key=lesson.key("mode"))
    size = b.slider("Window", 1, live.MAX_STRIDE, p["size"], key=lesson.key("size"))
    stride = c.slider("Pool stride", 1, live.MAX_STRIDE, p["stride"], key=lesson.key("stride"))
    # the lab's activated map, kind and colour scale: the lesson draws what the lab draws
    activated = live.activation_live(
        live.feature_map(p["input"], p["kernel"], p["padding"]), p["activation"]
    ).shown
    values, kind, scale = activated.after, activated.kind, activated.scale
    pooled = live.pool_live(values, str(mode), int(size), int(stride))
    left, right = st.columns(2)
    window = lf.Outline(0, 0, int(size), int(size))
    first = pooled.pooled.window(0, 0).winner if pooled.pooled else None
    left.plotly_chart(
        lf.pool_input_figure(values, window, first, "map to pool", scale, kind, GRID_HEIGHT + 40),
        key=lesson.key("pool_input"),
    )
    if pooled.pooled is None:
        right.warning(f"That window does not fit: {pooled.problem}.")
    else:
        right.plotly_chart(
            lf.grid_figure(pooled.pooled.output, f"{mode} pooled", kind, scale, height=GRID_HEIGHT),
            key=lesson.key("pooled"),
        )
    return pooled


def pick_sample(lesson: lv.Lesson) -> str:
    """The sample digit the student picks (the lesson's by default)."""
    samples = list(digit_samples())
    index = samples.index(lesson.view_params["sample"])
    return str(st.selectbox("Sample digit (real MNIST)", samples, index, key=lesson.key("sample")))


def show_model(lesson: lv.Lesson) -> live.ModelLive:
    """A digit model on a sample: its layer table, one layer's maps, its softmax."""
    p = lesson.view_params
    loaded = cached_model(p["model"])
    a, b = st.columns(2)
    with a:
        sample = pick_sample(lesson)
    shown = live.model_live(loaded, sample)
    layer = shown.layer
    if {"layers", "maps"} & set(p["parts"]):
        names = [row.name for row in shown.rows]
        start = names.index(p["layer"]) if p["layer"] in names else 0
        layer = str(b.selectbox("Layer", names, start, key=lesson.key("layer")))
        shown = live.model_live(loaded, sample, layer)
    if "layers" in p["parts"]:
        rows = len(shown.rows)
        st.dataframe(
            live.layer_table(shown.rows),
            hide_index=True,
            height=35 * (rows + 1) + 3,
            key=lesson.key("table"),
        )
    if "maps" in p["parts"]:
        show_maps(shown)
    if "prediction" in p["parts"]:
        st.plotly_chart(softmax_figure(loaded, shown.result), key=lesson.key("softmax"))
    return shown


def show_maps(shown: live.ModelLive) -> None:
    """The picked layer's channels, one tile each, on one colour scale."""
    layer = shown.result[shown.layer]
    if len(layer.shape) != 3:
        st.caption(f"{shown.layer} is a vector of {layer.shape[0]} numbers: no maps to show.")
        return
    grid = channel_grid_figure(
        layer.numpy(), layer.name, layer.kind, range(layer.shape[0]), tile_px=110
    )
    st.plotly_chart(grid.figure, key=f"lesson_maps_{shown.layer}")


def show_experiment(lesson: lv.Lesson) -> live.ExperimentLive:
    """A sample digit shifted and turned by the student, and the model's reading of it."""
    loaded = cached_model(lesson.view_params["model"])
    a, b, c = st.columns(3)
    with a:
        sample = pick_sample(lesson)
    shift = b.slider(
        "Shift right (px)", -live.MAX_SHIFT, live.MAX_SHIFT, 0, key=lesson.key("shift")
    )
    rotate = c.slider(
        "Rotate (°)", -live.MAX_ROTATE, live.MAX_ROTATE, 0, 15, key=lesson.key("rotate")
    )
    moved = live.experiment_live(loaded, sample, int(shift), int(rotate))
    left, right = st.columns([1, 3])
    left.image(
        inline_image(moved.picture),
        caption="what the model sees",
        width=160,
        alt=f"The sample {moved.label}, shifted {shift} px right and turned {rotate}°",
    )
    right.metric(PREDICTION_LABEL, moved.predicted, f"{moved.probability:.1%} probability", "off")
    return moved


VIEWS: dict[str, Callable[[lv.Lesson], Any]] = {
    "convolve": show_convolve,
    "activation": show_activation,
    "pool": show_pool,
    "model": show_model,
    "experiment": show_experiment,
    "link-only": lambda lesson: None,
}


def show_question(lesson: lv.Lesson, shown: object) -> None:
    """The question, the student's answer, and the verdict when they press Check."""
    question = lesson.question
    st.markdown(f"#### Your turn\n{question.text}")
    answer = None
    if question.asks_number:
        answer = st.number_input(
            "Your answer", value=None, step=1.0, format="%g", key=lesson.key("answer")
        )
    if st.button("Check", key=lesson.key("check"), type="primary"):
        verdict = checks.check(question.check, question.params, shown, answer)
        if verdict.correct:
            st.session_state.setdefault(DONE_KEY, set()).add(lesson.slug)
            st.success(verdict.message, icon=":material/check_circle:")
        else:
            st.error(verdict.message, icon=":material/cancel:")
            st.info(f"**Hint:** {question.hint}")


def go_to(slug: str) -> None:
    """Open another lesson (the Previous and Next buttons)."""
    st.session_state["lesson"] = slug


def choose_lesson(lessons: list[lv.Lesson]) -> lv.Lesson:
    """The sidebar's lesson picker, kept in the URL as ``?lesson=<slug>``.

    Not ``bind="query-params"``: a bound selectbox writes its shown text (the title) to the
    URL, and the slug is what keeps links working when lessons are renamed or renumbered.
    """
    asked = st.query_params.get("lesson")
    if asked is not None and asked != st.session_state.get(URL_KEY):
        # a link or a typed address wins over the session's lesson; a bad name opens the first
        st.session_state["lesson"] = (lv.find_lesson(lessons, asked) or lessons[0]).slug
    titles = {lesson.slug: lesson.title for lesson in lessons}
    slug = st.sidebar.selectbox(
        "Lesson", list(titles), key="lesson", format_func=titles.__getitem__
    )
    lesson = lv.find_lesson(lessons, slug) or lessons[0]
    st.query_params["lesson"] = st.session_state[URL_KEY] = lesson.slug
    return lesson


def show_progress(container: DeltaGenerator, lessons: list[lv.Lesson]) -> None:
    """How many lessons are answered right, and every lesson with a tick when it is."""
    done: set[str] = st.session_state.setdefault(DONE_KEY, set())
    count, text = lv.progress(lessons, done)
    container.progress(count / len(lessons), text=text)
    container.markdown(lv.lesson_list(lessons, done))


def show_lesson(lessons: list[lv.Lesson], lesson: lv.Lesson) -> None:
    """One lesson: its text, live view, links, question, and the way on."""
    number = lessons.index(lesson) + 1
    st.subheader(f"{number}. {lesson.title}")
    st.markdown(lesson.text)
    try:
        shown = VIEWS[lesson.view](lesson)
    except ValueError as exc:
        st.warning(f"These settings do not fit: {exc}")
        return
    for link in lesson.links:
        # page_link opens the page in this session: the progress is still here on return
        target = st.Page(
            PAGES_DIR / f"{link.page}.py",
            url_path=link.url_path or None,
            default=not link.url_path,
        )
        st.page_link(
            target, label=link.label, icon=":material/open_in_new:", query_params=dict(link.query)
        )
    st.divider()
    show_question(lesson, shown)
    st.divider()
    before, after = lv.neighbours(lessons, lesson.slug)
    back, _, on = st.columns([1, 2, 1])
    if before is not None:
        back.button("← Previous", key="lesson_previous", on_click=go_to, args=(before.slug,))
    if after is not None:
        on.button("Next →", key="lesson_next", on_click=go_to, args=(after.slug,))


st.title("Lessons")
st.caption("From a kernel to “why this class?”, one short lesson at a time, on your own input.")
view_link = start_view_link("lessons")
try:
    shipped = lv.load_lessons()
except lv.LessonError as error:
    st.error(f"A lesson file cannot be read: {error}")
    st.stop()
status = st.sidebar.container()  # on top, filled once this run's answer is checked
show_lesson(shipped, choose_lesson(shipped))
show_progress(status, shipped)
finish_view_link(view_link, "The link opens this lesson; your answers and progress stay here.")
