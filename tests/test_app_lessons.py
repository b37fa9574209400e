"""The Lessons page in AppTest: every lesson shows, and its question is answered by acting.

For each lesson the test performs the action its check asks for (a widget set, a number
typed), with the right answer worked out independently (torch, forward hooks, the layer
sizes), once wrongly and once rightly, and reads the page's messages and ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from explorer.figures.describe import number_text
from explorer.inputs.samples import digit_samples
from explorer.lab import maths
from explorer.models.zoo import LoadedModel, load_model
from explorer.views import lesson_live as live
from explorer.views.lessons import DONE_MARK, TODO_MARK, Lesson, load_lessons
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAW_CANVAS,
    SCREENSHOTS,
    click_until,
    streamlit_server,
)
from tests.test_lessons import hand_receptive_fields, hooked_outputs, torch_conv

REPO = Path(__file__).resolve().parents[1]
LESSONS = load_lessons()
PLOTS_DRAWN = """() => [...document.querySelectorAll(".stPlotlyChart")]
    .every((chart) => chart.querySelector(".js-plotly-plot .main-svg"))"""
"""A script that is true once every plotly figure of the page has drawn its plot."""


@pytest.fixture(scope="module")
def lenet() -> LoadedModel:
    return load_model("lenet5")


def page(lesson: Lesson | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "lessons.py"), default_timeout=90)
    if lesson is not None:
        at.query_params["lesson"] = lesson.slug  # as a link to the lesson would
    return at.run()


def type_answer(at: AppTest, lesson: Lesson, value: float) -> None:
    at.number_input(key=lesson.key("answer")).set_value(value)


def conv_width(lesson: Lesson, stride: int) -> int:
    p = lesson.view_params
    image, kernel = live.teaching_input(p["input"]), maths.KERNELS[p["kernel"]]
    return int(torch_conv(image, kernel, stride, p["padding"]).shape[1])


def act_conv_value(at: AppTest, lesson: Lesson, right: bool, _: LoadedModel) -> None:
    """Right: the settings and position asked about, and their value; wrong: another kernel."""
    p, q = lesson.view_params, lesson.question.params
    kernel = q["kernel"] if right else next(k for k in maths.KERNELS if k != q["kernel"])
    at.selectbox(key=lesson.key("kernel")).set_value(kernel)
    at.slider(key=lesson.key("stride")).set_value(q["stride"])
    at.radio(key=lesson.key("padding")).set_value(q["padding"]).run()
    at.slider(key=lesson.key("row")).set_value(q["row"])  # the position asked about
    at.slider(key=lesson.key("col")).set_value(q["col"])
    image = live.teaching_input(p["input"])
    out = torch_conv(image, maths.KERNELS[kernel], q["stride"], q["padding"])
    type_answer(at, lesson, round(float(out[q["row"], q["col"]]), 4))  # that kernel's value


def act_output_size(at: AppTest, lesson: Lesson, right: bool, _: LoadedModel) -> None:
    q = lesson.question.params
    stride = q["stride"] or lesson.view_params["stride"]
    at.slider(key=lesson.key("stride")).set_value(stride)
    if q["padding"] is not None:
        at.radio(key=lesson.key("padding")).set_value(q["padding"])
    type_answer(at, lesson, conv_width(lesson, stride) + (0 if right else 1))


def act_rectified(at: AppTest, lesson: Lesson, right: bool, _: LoadedModel) -> None:
    at.selectbox(key=lesson.key("activation")).set_value("relu" if right else "sigmoid")


def act_pooled_shape(at: AppTest, lesson: Lesson, right: bool, _: LoadedModel) -> None:
    p, q = lesson.view_params, lesson.question.params
    values = maths.activate(
        live.feature_map(p["input"], p["kernel"], p["padding"]), p["activation"]
    )
    x = torch.from_numpy(values)[None, None]
    fits = [
        (size, stride)
        for size in range(1, live.MAX_STRIDE + 1)
        for stride in range(1, live.MAX_STRIDE + 1)
        if (tuple(F.max_pool2d(x, size, stride).shape[-2:]) == tuple(q["shape"])) == right
    ]
    size, stride = fits[0]
    at.selectbox(key=lesson.key("mode")).set_value(q["mode"] or "max")
    at.slider(key=lesson.key("size")).set_value(size)
    at.slider(key=lesson.key("stride")).set_value(stride)


def lesson_sample(lesson: Lesson, loaded: LoadedModel) -> dict[str, torch.Tensor]:
    sample = lesson.view_params["sample"]
    return hooked_outputs(loaded, loaded.prepare(digit_samples()[sample]).tensor)


def act_layer_shape(at: AppTest, lesson: Lesson, right: bool, loaded: LoadedModel) -> None:
    want = tuple(lesson.question.params["shape"])
    outputs = lesson_sample(lesson, loaded)
    layer = next(n for n, out in outputs.items() if (tuple(out.shape[1:]) == want) == right)
    at.selectbox(key=lesson.key("layer")).set_value(layer)


def act_receptive_field(at: AppTest, lesson: Lesson, right: bool, loaded: LoadedModel) -> None:
    least = lesson.question.params["at_least"]
    fields = hand_receptive_fields(loaded)
    first = next(name for name, side in fields.items() if side >= least)
    at.selectbox(key=lesson.key("layer")).set_value(first if right else next(iter(fields)))


def act_channel(at: AppTest, lesson: Lesson, right: bool, loaded: LoadedModel) -> None:
    maps = lesson_sample(lesson, loaded)[lesson.question.params["layer"]][0]
    strongest = int(maps.reshape(maps.shape[0], -1).max(dim=1).values.argmax())
    type_answer(at, lesson, strongest if right else (strongest + 1) % maps.shape[0])


def act_prediction(at: AppTest, lesson: Lesson, right: bool, loaded: LoadedModel) -> None:
    sample = "2 (sample 2)"  # another digit than the lesson's: the student picks one
    at.selectbox(key=lesson.key("sample")).set_value(sample)
    x = loaded.prepare(digit_samples()[sample]).tensor
    with torch.no_grad():
        predicted = int(loaded.model(x).argmax())
    type_answer(at, lesson, predicted if right else (predicted + 1) % 10)


def act_parameter_count(at: AppTest, lesson: Lesson, right: bool, loaded: LoadedModel) -> None:
    layer = lesson.question.params["layer"]
    part = loaded.model.get_submodule(layer) if layer else loaded.model
    count = 0
    for module in part.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            assert module.bias is not None
            count += module.weight.numel() + module.bias.numel()
    type_answer(at, lesson, count if right else count + 10)


def act_misclassified(at: AppTest, lesson: Lesson, right: bool, loaded: LoadedModel) -> None:
    label = lesson.view_params["sample"].split()[0]
    # a change is always made: unmoved, the check asks for one whatever the model reads
    for shift, rotate in [(2, 0), (8, 0), (-8, 0), (0, -45), (0, 45), (0, 90), (0, -90)]:
        moved = live.experiment_live(loaded, lesson.view_params["sample"], shift, rotate)
        mean, std = loaded.normalisation
        x = (torch.from_numpy(moved.picture).float() / 255 - mean[0]) / std[0]
        with torch.no_grad():
            misread = str(int(loaded.model(x[None, None]).argmax())) != label
        if misread == right:
            at.slider(key=lesson.key("shift")).set_value(shift)
            at.slider(key=lesson.key("rotate")).set_value(rotate)
            return
    raise AssertionError("no setting of the sliders gives that answer")


ACTIONS: dict[str, Callable[[AppTest, Lesson, bool, LoadedModel], Any]] = {
    "conv-value": act_conv_value,
    "output-size": act_output_size,
    "rectified": act_rectified,
    "pooled-shape": act_pooled_shape,
    "layer-shape": act_layer_shape,
    "receptive-field": act_receptive_field,
    "strongest-channel": act_channel,
    "prediction": act_prediction,
    "parameter-count": act_parameter_count,
    "misclassified": act_misclassified,
}


def check(at: AppTest, lesson: Lesson) -> AppTest:
    return at.button(key=lesson.key("check")).click().run()


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.slug for lesson in LESSONS])
def test_each_lesson_is_answered_by_acting(lesson: Lesson, lenet: LoadedModel) -> None:
    at = page(lesson)
    assert not at.exception
    assert at.selectbox(key="lesson").value == lesson.slug
    assert at.query_params["lesson"] in (lesson.slug, [lesson.slug])
    assert any(lesson.question.text in m.value for m in at.markdown)
    act = ACTIONS[lesson.question.check]

    act(at, lesson, False, lenet)
    at = check(at, lesson)
    assert not at.exception and not at.success
    assert len(at.error) == 1 and at.error[0].value
    assert lesson.question.hint.strip() in at.info[0].value
    assert f"{TODO_MARK} {lesson.title}" in at.sidebar.markdown[0].value

    act(at, lesson, True, lenet)
    at = check(at, lesson)
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Right"), at.success[0].value
    assert f"{DONE_MARK} {lesson.title}" in at.sidebar.markdown[0].value


def test_progress_and_the_way_through() -> None:
    at = page()
    assert at.selectbox(key="lesson").value == LESSONS[0].slug
    assert [b.key for b in at.button if b.key in ("lesson_previous", "lesson_next")] == [
        "lesson_next"
    ]
    at = at.button(key="lesson_next").click().run()
    assert at.selectbox(key="lesson").value == LESSONS[1].slug
    assert at.query_params["lesson"] in (LESSONS[1].slug, [LESSONS[1].slug])
    at = at.button(key="lesson_previous").click().run()
    assert at.selectbox(key="lesson").value == LESSONS[0].slug
    assert at.query_params["lesson"] in (LESSONS[0].slug, [LESSONS[0].slug])
    # answered right once: ticked, and counted, for the rest of the session
    act_conv_value(at, LESSONS[0], True, load_model("lenet5"))
    at = check(at, LESSONS[0])
    at = at.button(key="lesson_next").click().run()
    assert f"{DONE_MARK} {LESSONS[0].title}" in at.sidebar.markdown[0].value
    assert f"1 of {len(LESSONS)} lessons done" in at.sidebar.get("progress")[0].proto.text


def test_the_convolve_view_writes_torchs_value() -> None:
    lesson = next(lesson for lesson in LESSONS if lesson.view == "convolve")
    p = lesson.view_params
    at = page(lesson)
    at.selectbox(key=lesson.key("kernel")).set_value("sharpen")
    at.radio(key=lesson.key("padding")).set_value("same")
    at.run()
    image = live.teaching_input(p["input"])
    out = torch_conv(image, maths.KERNELS["sharpen"], p["stride"], "same")
    for row, col in [(0, 0), (2, 3), (out.shape[0] - 1, out.shape[1] - 1)]:
        at.slider(key=lesson.key("row")).set_value(row)
        at.slider(key=lesson.key("col")).set_value(col).run()
        written = next(
            m.value for m in at.markdown if m.value.startswith(f"**output[{row}, {col}]**")
        )
        assert written.endswith(f"= **{number_text(float(out[row, col]), maths.DECIMALS)}**"), (
            written
        )


def test_the_url_carries_the_lesson_slug() -> None:
    """``?lesson=<slug>`` opens that lesson; picking another writes its slug, not its title."""
    at = page(LESSONS[3])
    assert not at.exception
    assert at.subheader[0].value == f"4. {LESSONS[3].title}"
    assert at.selectbox(key="lesson").value == LESSONS[3].slug
    at.selectbox(key="lesson").set_value(LESSONS[5].slug).run()
    assert at.subheader[0].value == f"6. {LESSONS[5].title}"
    assert at.query_params["lesson"] in (LESSONS[5].slug, [LESSONS[5].slug])
    # the sidebar shows titles: the slug is only the URL's
    assert at.selectbox(key="lesson").options == [lesson.title for lesson in LESSONS]


@pytest.mark.parametrize(
    "asked", ["<script>alert(1)</script>" * 100, LESSONS[3].title, "", "pixels-and-kernels-x"]
)
def test_a_bad_lesson_in_the_url_opens_the_first(asked: str) -> None:
    at = AppTest.from_file(str(REPO / "pages" / "lessons.py"), default_timeout=90)
    at.query_params["lesson"] = asked
    at.run()
    assert not at.exception
    assert at.selectbox(key="lesson").value == LESSONS[0].slug
    assert at.query_params["lesson"] in (LESSONS[0].slug, [LESSONS[0].slug])


def open_link_and_come_back(page: Any, lesson: Lesson) -> None:
    """A lesson's link opens its page in the same session: the progress is kept."""
    link = lesson.links[0]
    page.get_by_text(link.label).first.click()
    page.wait_for_url(f"**/{link.url_path}?**", timeout=60_000)
    # a bound widget drops its parameter when the value is its default, so some may be gone
    shown = dict(parse_qsl(urlsplit(page.url).query))
    assert all(shown.get(key, value) == value for key, value in link.query), shown
    assert any(key in shown for key, _ in link.query), shown
    page.get_by_test_id("stSidebarNav").get_by_text("Lessons").click()
    page.get_by_text(f"1 of {len(LESSONS)} lessons done").first.wait_for(timeout=60_000)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
def test_lessons_in_chromium() -> None:
    """Open lessons by their links, answer the stride question in the browser, screenshot."""
    from playwright.sync_api import sync_playwright

    stride_lesson = next(lesson for lesson in LESSONS if lesson.question.check == "output-size")
    stride = stride_lesson.question.params["stride"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        # The root first: until st.navigation has run once, a deep link finds a legacy page.
        page.goto(url)
        page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
        for lesson in (stride_lesson, *(x for x in LESSONS if x.view in ("activation", "model"))):
            page.goto(f"{url}/lessons?{urlencode({'lesson': lesson.slug}, quote_via=quote)}")
            page.get_by_text(lesson.question.text.replace("*", "")).first.wait_for(timeout=120_000)
            if lesson is stride_lesson:
                thumb = page.locator(f".st-key-{lesson.key('stride')} input[type=range]").first
                thumb.focus()
                for _ in range(stride - lesson.view_params["stride"]):
                    thumb.press("ArrowRight")
                page.wait_for_function(
                    "([s, v]) => document.querySelector(s).value === v",
                    arg=[f".st-key-{lesson.key('stride')} input[type=range]", str(stride)],
                )
                field = page.locator(f".st-key-{lesson.key('answer')} input").first
                field.fill(str(conv_width(lesson, stride)))
                field.press("Enter")
                # a Check that lands before the number's rerun says "Type your answer": again
                check_button = page.locator(f".st-key-{lesson.key('check')} button")
                click_until(page, check_button, "Right: the width is")
            page.wait_for_function(PLOTS_DRAWN, timeout=60_000)
            assert page.get_by_test_id("stException").count() == 0
            page.screenshot(path=str(SCREENSHOTS / f"lessons-{lesson.slug}.png"), full_page=True)
            if lesson is stride_lesson:
                open_link_and_come_back(page, stride_lesson)
            if lesson.view == "model":
                break
        browser.close()
