"""Lessons: the shipped files, clear errors for bad ones, and each check against torch."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer.analysis.experiment import perturb
from explorer.hosting.addresses import URL_PATHS
from explorer.inputs.samples import digit_samples
from explorer.lab import maths
from explorer.models.zoo import LoadedModel, load_model
from explorer.views import lesson_live as live
from explorer.views.lesson_checks import CHECKS, check
from explorer.views.lessons import (
    DONE_MARK,
    MAX_FILE_BYTES,
    TODO_MARK,
    VIEW_PARAMS,
    Lesson,
    LessonError,
    Link,
    find_lesson,
    layer_names,
    lesson_list,
    load_lesson,
    load_lessons,
    neighbours,
    parse_lesson,
    progress,
    slug_of,
)

REPO = Path(__file__).resolve().parents[1]
GOOD = """
title = "Stride"
text = "Some text."

[view]
kind = "convolve"
input = "square-7x7"

[[links]]
label = "Lab"
page = "lab"
query = { lab_stride = 2 }

[question]
text = "How wide?"
check = "output-size"
stride = 2
hint = "The formula."
"""


@pytest.fixture(scope="module")
def lenet() -> LoadedModel:
    return load_model("lenet5")


# --- the shipped lessons -------------------------------------------------------------------


def test_every_shipped_lesson_loads_and_follows_the_syllabus() -> None:
    lessons = load_lessons()
    assert 8 <= len(lessons) <= 12
    files = sorted(p.name for p in (REPO / "assets" / "lessons").glob("*.toml"))
    assert [lesson.file for lesson in lessons] == files
    assert len({lesson.slug for lesson in lessons}) == len(lessons)
    views = [lesson.view for lesson in lessons]
    assert views.index("convolve") < views.index("activation") < views.index("pool")
    assert views.index("pool") < views.index("model") < views.index("experiment")
    for lesson in lessons:
        assert CHECKS[lesson.question.check].view == lesson.view
        assert lesson.question.hint.strip() and lesson.text.strip()


def test_every_link_sets_widget_keys_its_page_has() -> None:
    """A link's query names widgets of its page (``key="..."`` in ``pages/<page>.py``)."""
    for lesson in load_lessons():
        assert lesson.links, lesson.file
        for link in lesson.links:
            source = (REPO / "pages" / f"{link.page}.py").read_text(encoding="utf-8")
            for key, _ in link.query:
                assert f'key="{key}"' in source, (lesson.file, key)


def test_every_model_lesson_names_layers_its_model_has(lenet: LoadedModel) -> None:
    names = {layer.name for layer in live.sample_capture(lenet, "7 (sample 1)").layers}
    for lesson in load_lessons():
        if lesson.view == "model":
            assert lesson.view_params["model"] == "lenet5"
            assert lesson.view_params["layer"] in {"", *names}
            assert lesson.question.params.get("layer", "") in {"", *names}


def test_a_link_is_relative_and_quoted() -> None:
    link = Link("x", "image", (("image_view", "Why this class?"), ("image_model", "resnet18")))
    assert link.url == "classify?image_view=Why%20this%20class%3F&image_model=resnet18"
    assert (
        Link("x", "draw", (("draw_source", "Sample digit"),)).url == "./?draw_source=Sample%20digit"
    )
    assert Link("x", "train").url == URL_PATHS["train"]


def test_order_progress_and_names() -> None:
    lessons = load_lessons()
    first, second, last = lessons[0], lessons[1], lessons[-1]
    assert neighbours(lessons, first.slug) == (None, second)
    assert neighbours(lessons, last.slug) == (lessons[-2], None)
    assert progress(lessons, {first.slug, "not-a-lesson"}) == (
        1,
        f"1 of {len(lessons)} lessons done",
    )
    listed = lesson_list(lessons, {second.slug}).splitlines()
    assert listed[0] == f"1. {TODO_MARK} {first.title}"
    assert listed[1] == f"2. {DONE_MARK} {second.title}"
    assert len(listed) == len(lessons)
    assert slug_of("01-pixels-and-kernels.toml") == "pixels-and-kernels"
    assert slug_of("7_relu.toml") == "relu"
    assert first.key("stride") == f"lesson_{first.slug.replace('-', '_')}_stride"


# --- bad lesson files ---------------------------------------------------------------------


def test_a_good_file_parses_with_its_defaults() -> None:
    lesson = parse_lesson(GOOD, "03-stride.toml")
    assert (lesson.slug, lesson.title, lesson.view) == ("stride", "Stride", "convolve")
    assert lesson.view_params == {
        "input": "square-7x7",
        "kernel": "edge: outline (8-centre)",
        "padding": "valid",
        "stride": 1,
    }
    assert lesson.question.params == {"stride": 2, "padding": None, "axis": "width"}
    assert lesson.links == (Link("Lab", "lab", (("lab_stride", "2"),)),)


BAD = [
    (GOOD.replace('title = "Stride"', "title = "), "not valid TOML"),
    (GOOD.replace('title = "Stride"\n', ""), "x.toml: title: missing"),
    (GOOD.replace('title = "Stride"', "title = 3"), "x.toml: title: missing, or not text"),
    (GOOD.replace('text = "Some text."', "txt = 'a'"), "x.toml: txt: unknown field"),
    (GOOD.replace('kind = "convolve"', 'kind = "movie"'), "x.toml: view.kind: 'movie' is not"),
    (GOOD.replace('input = "square-7x7"', 'input = "/etc/passwd"'), "x.toml: view.input:"),
    (GOOD.replace('input = "square-7x7"\n', ""), "x.toml: view.input: missing"),
    (
        GOOD.replace('input = "square-7x7"', 'input = "square-7x7"\nstrid = 2'),
        "view.strid: unknown",
    ),
    (
        GOOD.replace('input = "square-7x7"', 'input = "square-7x7"\nstride = 0'),
        "view.stride: must be at least 1",
    ),
    (GOOD.replace("stride = 2\nhint", "stride = 99\nhint"), "question.stride: must be at most 4"),
    (
        GOOD.replace("stride = 2\nhint", 'stride = "2"\nhint'),
        "question.stride: must be a whole number",
    ),
    (GOOD.replace("stride = 2\nhint", "stride = true\nhint"), "question.stride: must be a whole"),
    (GOOD.replace('check = "output-size"', 'check = "guess"'), "question.check: 'guess' is not"),
    (GOOD.replace('check = "output-size"', 'check = "rectified"'), "reads a 'activation' view"),
    (GOOD.replace('hint = "The formula."', ""), "x.toml: question.hint: missing"),
    (GOOD.replace('page = "lab"', 'page = "http://evil"'), "x.toml: links[0].page: 'http://evil'"),
    (GOOD.replace("{ lab_stride = 2 }", '{ "a b" = 2 }'), "links[0].query.a b: must be a widget"),
    (GOOD.replace("{ lab_stride = 2 }", "{ lab_stride = [1] }"), "query.lab_stride: must be"),
    (GOOD.replace("[question]", "[quest]"), "x.toml: quest: unknown field"),
    (GOOD.replace("[[links]]", "links = 3\n[[linkz]]"), "unknown field"),
]


@pytest.mark.parametrize(("source", "message"), BAD)
def test_a_bad_file_names_the_file_and_the_field(source: str, message: str) -> None:
    with pytest.raises(LessonError, match=re.escape(message)) as caught:
        parse_lesson(source, "01-x.toml")
    assert str(caught.value).startswith("01-x.toml:")


def test_list_parameters_are_checked_item_by_item() -> None:
    model = GOOD.replace('kind = "convolve"\ninput = "square-7x7"', 'kind = "model"')
    model = model.replace(
        'check = "output-size"\nstride = 2', 'check = "layer-shape"\nshape = [16, 5, 5]'
    )
    assert parse_lesson(model, "01-x.toml").question.params == {"shape": [16, 5, 5]}
    with pytest.raises(LessonError, match=r"question\.shape\[1\]: must be a whole number"):
        parse_lesson(model.replace("[16, 5, 5]", '[16, "5", 5]'), "01-x.toml")
    with pytest.raises(LessonError, match=r"question\.shape: must be a list of 1 to 8"):
        parse_lesson(model.replace("[16, 5, 5]", "[]"), "01-x.toml")
    with pytest.raises(LessonError, match=r"view\.parts\[0\]: 'movie' is not one of"):
        parse_lesson(
            model.replace('kind = "model"', 'kind = "model"\nparts = ["movie"]'), "01-x.toml"
        )


CHANNEL = """
title = "Channels"
text = "Some text."

[view]
kind = "model"
parts = ["maps"]
layer = "conv1"

[question]
text = "Which channel?"
check = "strongest-channel"
layer = "conv1"
hint = "The brightest."
"""


def test_layer_names_are_the_captures(lenet: LoadedModel) -> None:
    captured = live.sample_capture(lenet, "7 (sample 1)").names
    assert layer_names("lenet5") == tuple(captured)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            CHANNEL.replace('layer = "conv1"\nhint', 'layer = "conv9"\nhint'),
            "question.layer: 'conv9'",
        ),
        (CHANNEL.replace('layer = "conv1"\n\n', 'layer = "Conv1"\n\n'), "view.layer: 'Conv1'"),
        (
            CHANNEL.replace(
                'check = "strongest-channel"\nlayer = "conv1"',
                'check = "parameter-count"\nlayer = "features.0"',
            ),
            "question.layer: 'features.0'",
        ),
    ],
)
def test_a_layer_the_model_lacks_is_refused_when_loaded(
    tmp_path: Path, source: str, message: str
) -> None:
    assert parse_lesson(CHANNEL, "07-channels.toml").question.params == {"layer": "conv1"}
    (tmp_path / "01-stride.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "07-channels.toml").write_text(source, encoding="utf-8")  # a teacher's typo
    with pytest.raises(LessonError, match=re.escape(message)) as caught:
        load_lessons(tmp_path)
    assert str(caught.value).startswith("07-channels.toml: ")
    assert "is not a layer of lenet5 (conv1, relu1, pool1," in str(caught.value)


def test_the_layer_table_is_the_rows(lenet: LoadedModel) -> None:
    shown = live.model_live(lenet, "7 (sample 1)")
    table = live.layer_table(shown.rows)
    assert [row["layer"] for row in table] == list(layer_names("lenet5"))
    conv2 = table[3]
    assert conv2 == {
        "layer": "conv2",
        "kind": "conv",
        "output shape": "16 × 10 × 10",
        "receptive field": "14 × 14",  # 5, then 6 after pool1, then 6 + 4 · 2
        "parameters": 16 * 6 * 5 * 5 + 16,
    }


def test_find_lesson_by_slug_only() -> None:
    lessons = load_lessons()
    assert find_lesson(lessons, lessons[2].slug) is lessons[2]
    for bad in (lessons[2].title, "", None, "<script>", lessons[2].file):
        assert find_lesson(lessons, bad) is None


def test_bad_folders_and_files(tmp_path: Path) -> None:
    with pytest.raises(LessonError, match="no lesson files"):
        load_lessons(tmp_path)
    (tmp_path / "01-stride.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "02-stride.toml").write_text(GOOD.replace("Stride", "Other"), encoding="utf-8")
    with pytest.raises(
        LessonError, match=re.escape("02-stride.toml: the same name as 01-stride.toml")
    ):
        load_lessons(tmp_path)
    (tmp_path / "02-stride.toml").rename(tmp_path / "02-again.toml")
    (tmp_path / "03-more.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(
        LessonError, match=re.escape("03-more.toml: title: the same as 01-stride.toml")
    ):
        load_lessons(tmp_path)
    (tmp_path / "03-more.toml").unlink()
    assert [lesson.slug for lesson in load_lessons(tmp_path)] == ["stride", "again"]
    huge = tmp_path / "04-huge.toml"
    huge.write_text(GOOD + "#" * MAX_FILE_BYTES, encoding="utf-8")
    with pytest.raises(LessonError, match=re.escape("04-huge.toml: longer than")):
        load_lesson(huge)
    binary = tmp_path / "05-binary.toml"
    binary.write_bytes(b"\xff\xfe\x00title")
    with pytest.raises(LessonError, match=re.escape("05-binary.toml: not UTF-8")):
        load_lesson(binary)
    with pytest.raises(LessonError, match="the name must be"):
        parse_lesson(GOOD, "01-Bad Name!.toml")


def test_every_view_kind_has_its_parameters_and_checks() -> None:
    assert {kind.view for kind in CHECKS.values()} <= set(VIEW_PARAMS)


# --- the checks, against torch ------------------------------------------------------------


def torch_conv(image: np.ndarray, kernel: np.ndarray, stride: int, padding: str) -> torch.Tensor:
    """Torch's conv2d of a teaching input, padded like TensorFlow's 'same' where asked."""
    x = torch.from_numpy(image)[None, None]
    w = torch.from_numpy(np.array(kernel))[None, None]
    k, size = kernel.shape[0], image.shape[1]
    if padding == "full":
        x = F.pad(x, (k - 1,) * 4)
    elif padding == "same":
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        x = F.pad(x, (total // 2, total - total // 2) * 2)
    return F.conv2d(x, w, stride=stride)[0, 0]


def output_size_params(stride: int | None = None) -> dict[str, object]:
    return {"stride": stride, "padding": None, "axis": "width"}


@pytest.mark.parametrize("padding", maths.PADDINGS)
@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("name", "kernel"), [("square-7x7", "box blur (1/9)"), ("binary-5x5", "Gaussian blur 5×5")]
)
def test_output_size_is_torchs(name: str, kernel: str, stride: int, padding: str) -> None:
    conv = live.convolve_live(name, kernel, stride, padding)
    width = torch_conv(live.teaching_input(name), maths.KERNELS[kernel], stride, padding).shape[1]
    assert check("output-size", output_size_params(), conv, float(width)).correct
    assert not check("output-size", output_size_params(), conv, float(width + 1)).correct
    wrong_stride = check("output-size", output_size_params(stride % 4 + 1), conv, float(width))
    assert not wrong_stride.correct and "First set the stride" in wrong_stride.message


def conv_value_params(row: int, col: int, kernel: str) -> dict[str, object]:
    return {"row": row, "col": col, "kernel": kernel, "stride": 1, "padding": "valid"}


def test_conv_value_is_torchs() -> None:
    for kernel in ("X (teaching)", "sharpen", "box blur (1/9)"):
        conv = live.convolve_live("binary-5x5", kernel, 1, "valid")
        out = torch_conv(live.teaching_input("binary-5x5"), maths.KERNELS[kernel], 1, "valid")
        for row, col in [(0, 0), (1, 1), (2, 0)]:
            right = float(out[row, col])
            params = conv_value_params(row, col, kernel)
            assert check("conv-value", params, conv, round(right, 4)).correct
            assert not check("conv-value", params, conv, right + 0.5).correct
    outside = check("conv-value", conv_value_params(9, 0, "box blur (1/9)"), conv, 0.0)
    assert not outside.correct and "no [9, 0]" in outside.message


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "told"),
    [
        ("sharpen", 1, "valid", "First set the kernel to X (teaching) (it is sharpen)"),
        ("X (teaching)", 2, "valid", "First set the stride to 1 (it is 2)"),
        ("X (teaching)", 1, "same", "First set the padding to valid (it is same)"),
    ],
)
def test_conv_value_asks_for_the_settings_of_the_question(
    kernel: str, stride: int, padding: str, told: str
) -> None:
    # the right value of the student's own convolution is not enough: the question is about X
    conv = live.convolve_live("binary-5x5", kernel, stride, padding)
    value = float(
        torch_conv(live.teaching_input("binary-5x5"), maths.KERNELS[kernel], stride, padding)[1, 1]
    )
    verdict = check("conv-value", conv_value_params(1, 1, "X (teaching)"), conv, round(value, 4))
    assert not verdict.correct and verdict.message == told + "."


@pytest.mark.parametrize("activation", maths.ACTIVATIONS)
def test_rectified_means_torchs_relu(activation: str) -> None:
    conv = live.feature_map("square-7x7", "edge: outline (8-centre)", "same")
    assert (conv < 0).any() and (conv > 0).any()
    shown = live.activation_live(conv, activation)
    relu = F.relu(torch.from_numpy(np.array(conv))).numpy()
    verdict = check("rectified", {"activation": "relu"}, shown, None)
    assert verdict.correct == np.allclose(shown.shown.after, relu, atol=0), verdict.message
    assert verdict.correct == (activation == "relu")


@pytest.mark.parametrize("activation", maths.ACTIVATIONS)
def test_rectified_on_a_map_without_negatives_still_asks_for_relu(activation: str) -> None:
    conv = np.abs(live.feature_map("square-7x7", "edge: outline (8-centre)", "same"))
    assert (conv > 0).any() and not (conv < 0).any()  # "none" keeps it as ReLU would
    verdict = check(
        "rectified", {"activation": "relu"}, live.activation_live(conv, activation), None
    )
    assert verdict.correct == (activation == "relu"), verdict.message


@pytest.mark.parametrize("mode", maths.POOL_MODES)
def test_pooled_shape_is_torchs(mode: str) -> None:
    values = maths.activate(
        live.feature_map("square-7x7", "edge: outline (8-centre)", "full"), "relu"
    )
    x = torch.from_numpy(values)[None, None]
    for size in range(1, 5):
        for stride in range(1, 5):
            pooled = live.pool_live(values, mode, size, stride)
            shape = tuple(F.max_pool2d(x, size, stride).shape[-2:])
            asked = check("pooled-shape", {"shape": [3, 3], "mode": None}, pooled, None)
            assert asked.correct == (shape == (3, 3)), (size, stride)
            wrong_mode = check("pooled-shape", {"shape": list(shape), "mode": "sum"}, pooled, None)
            assert wrong_mode.correct == (mode == "sum")


def hooked_outputs(loaded: LoadedModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every named module's output, by forward hooks (independent of the capture)."""
    found: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, _i, out, name=name: found.__setitem__(name, out))
        for name, module in loaded.model.named_children()
    ]
    try:
        with torch.no_grad():
            loaded.model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found


def sample_tensor(loaded: LoadedModel, sample: str) -> torch.Tensor:
    return loaded.prepare(digit_samples()[sample]).tensor


def test_layer_shape_is_the_modules_output(lenet: LoadedModel) -> None:
    outputs = hooked_outputs(lenet, sample_tensor(lenet, "7 (sample 1)"))
    for name, out in outputs.items():
        shown = live.model_live(lenet, "7 (sample 1)", name)
        verdict = check("layer-shape", {"shape": [16, 5, 5]}, shown, None)
        assert verdict.correct == (tuple(out.shape[1:]) == (16, 5, 5)), name
    assert sum(tuple(out.shape[1:]) == (16, 5, 5) for out in outputs.values()) == 1


def hand_receptive_fields(loaded: LoadedModel) -> dict[str, int]:
    """The receptive-field side of each module in a chain: r += (k − 1)·j, j *= s."""
    side, jump, fields = 1, 1, {}
    for name, module in loaded.model.named_children():
        if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            side, jump = side + (k - 1) * jump, jump * s
        elif isinstance(module, nn.Flatten | nn.Linear):
            side = 28
        fields[name] = side
    return fields


def test_receptive_field_picks_the_first_layer_that_sees_enough(lenet: LoadedModel) -> None:
    fields = hand_receptive_fields(lenet)
    for least in (5, 6, 14, 16, 28):
        first = next(name for name, side in fields.items() if side >= least)
        for name in fields:
            shown = live.model_live(lenet, "7 (sample 1)", name)
            assert check("receptive-field", {"at_least": least}, shown, None).correct == (
                name == first
            )


@pytest.mark.parametrize("sample", ["0 (sample 1)", "4 (sample 2)", "7 (sample 1)", "9 (sample 3)"])
def test_channel_and_prediction_are_the_models(lenet: LoadedModel, sample: str) -> None:
    x = sample_tensor(lenet, sample)
    outputs = hooked_outputs(lenet, x)
    shown = live.model_live(lenet, sample)
    for layer in ("conv1", "relu2", "pool2"):
        maps = outputs[layer][0]
        strongest = int(maps.reshape(maps.shape[0], -1).max(dim=1).values.argmax())
        for channel in range(maps.shape[0]):
            verdict = check("strongest-channel", {"layer": layer}, shown, float(channel))
            assert verdict.correct == (channel == strongest)
    predicted = int(outputs[list(outputs)[-1]][0].argmax())
    assert shown.predicted == str(predicted) and shown.label == sample[0]
    for digit in range(10):
        assert check("prediction", {}, shown, float(digit)).correct == (digit == predicted)
    assert not check("prediction", {}, shown, 7.5).correct


def test_parameter_count_is_the_layers_sizes(lenet: LoadedModel) -> None:
    shown = live.model_live(lenet, "7 (sample 1)")
    by_hand = {"conv1": 6 * 1 * 5 * 5 + 6, "conv2": 16 * 6 * 5 * 5 + 16, "fc3": 84 * 10 + 10}
    by_hand[""] = (
        by_hand["conv1"] + by_hand["conv2"] + 400 * 120 + 120 + 120 * 84 + 84 + by_hand["fc3"]
    )
    for layer, count in by_hand.items():
        assert check("parameter-count", {"layer": layer}, shown, float(count)).correct
        assert not check("parameter-count", {"layer": layer}, shown, float(count - 1)).correct
    assert not check("parameter-count", {"layer": "relu1"}, shown, 1.0).correct
    assert check("parameter-count", {"layer": "relu1"}, shown, 0.0).correct


@pytest.mark.parametrize("kind", ["strongest-channel", "parameter-count", "layer-shape"])
def test_a_check_given_a_layer_the_model_lacks_is_wrong_not_an_error(
    lenet: LoadedModel, kind: str
) -> None:
    # before: KeyError (strongest-channel, layer-shape) and AttributeError (parameter-count)
    shown = dataclasses.replace(live.model_live(lenet, "7 (sample 1)"), layer="conv9")
    verdict = check(kind, {"layer": "conv9", "shape": [1]}, shown, 0.0)
    assert not verdict.correct
    assert (
        verdict.message.startswith("This question cannot be checked") and "conv9" in verdict.message
    )


def test_misclassified_is_the_models_reading(lenet: LoadedModel) -> None:
    display = lenet.prepare(digit_samples()["7 (sample 1)"]).display
    mean, std = lenet.normalisation
    seen = set()
    for shift, rotate in [(0, 0), (8, 0), (-8, 0), (0, -45), (0, 90)]:
        moved = live.experiment_live(lenet, "7 (sample 1)", shift, rotate)
        assert np.array_equal(moved.picture, perturb(display, moved.change))
        x = (torch.from_numpy(moved.picture).float() / 255 - mean[0]) / std[0]
        with torch.no_grad():
            digit = str(int(lenet.model(x[None, None]).argmax()))
        assert moved.predicted == digit and moved.label == "7"
        verdict = check("misclassified", {}, moved, None)
        assert verdict.correct == (digit != "7" and (shift, rotate) != (0, 0)), verdict.message
        seen.add(verdict.correct)
    assert seen == {True, False}  # the lesson can be answered, and is not answered at once
    unmoved = check("misclassified", {}, live.experiment_live(lenet, "7 (sample 1)", 0, 0), None)
    assert not unmoved.correct and "First shift or turn" in unmoved.message


def test_misclassified_needs_a_sample_the_model_reads_right_unmoved() -> None:
    # untrained weights misread most samples as they are: moving one proves nothing
    untrained = load_model("lenet5", "untrained")
    misread = [
        sample
        for sample in digit_samples()
        if str(int(untrained.model(sample_tensor(untrained, sample)).argmax())) != sample.split()[0]
    ]
    assert misread
    moved = live.experiment_live(untrained, misread[0], 2, 0)
    assert moved.predicted != moved.label  # the old check passed this
    verdict = check("misclassified", {}, moved, None)
    assert not verdict.correct and "even unmoved" in verdict.message


# --- hostile values -----------------------------------------------------------------------


def test_out_of_range_settings_are_refused(lenet: LoadedModel) -> None:
    with pytest.raises(ValueError, match="stride must be"):
        live.convolve_live("square-7x7", "identity", 99, "valid")
    with pytest.raises(ValueError, match="unknown kernel"):
        live.convolve_live("square-7x7", "../../x", 1, "valid")
    with pytest.raises(ValueError, match="unknown input"):
        live.teaching_input("/etc/passwd")
    with pytest.raises(ValueError, match="window and stride"):
        live.pool_live(np.ones((4, 4)), "max", 10**6, 1)
    with pytest.raises(ValueError, match="shift"):
        live.experiment_live(lenet, "7 (sample 1)", 10**9, 0)
    with pytest.raises(ValueError, match="unknown sample"):
        live.model_live(lenet, "../../etc/passwd")
    with pytest.raises(ValueError, match="no layer"):
        live.model_live(lenet, "7 (sample 1)", "nope")
    too_big = live.pool_live(np.ones((2, 2)), "max", 3, 1)
    assert too_big.pooled is None and too_big.problem
    assert not check("pooled-shape", {"shape": [1, 1], "mode": None}, too_big, None).correct


@pytest.mark.parametrize("answer", [None, math.nan, math.inf, -math.inf, 1e308])
def test_odd_answers_are_wrong_not_errors(answer: float | None) -> None:
    conv = live.convolve_live("square-7x7", "box blur (1/9)", 1, "valid")
    cases: list[tuple[str, dict[str, object]]] = [
        ("output-size", output_size_params()),
        ("conv-value", conv_value_params(0, 0, "box blur (1/9)")),
    ]
    for kind, params in cases:
        verdict = check(kind, params, conv, answer)
        assert not verdict.correct and verdict.message


def test_a_check_given_the_wrong_view_says_so() -> None:
    conv = live.convolve_live("square-7x7", "box blur (1/9)", 1, "valid")
    verdict = check("rectified", {"activation": "relu"}, conv, None)
    assert not verdict.correct and "reads a ActivationLive" in verdict.message
    unknown = check("guess", {}, conv, None)
    assert not unknown.correct and "no check named 'guess'" in unknown.message


def test_lessons_are_frozen() -> None:
    lesson: Lesson = load_lessons()[0]
    with pytest.raises(AttributeError):
        lesson.title = "x"  # type: ignore[misc]
