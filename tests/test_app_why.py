"""The "Why this class?" view in AppTest, on the Draw page (LeNet-5) and the Image page."""

from __future__ import annotations

import base64
import copy
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest
from torch import nn

from explorer.hosting.scheduler import BUDGET_ENV, RATE_ENV, Job, Progress, default_scheduler
from explorer.inputs.strokes import DIGIT_STROKES, drawing_value, parse_drawing, render_drawing
from explorer.models.zoo import load_model
from explorer.views.attribution import method_labels

REPO = Path(__file__).resolve().parents[1]


def drawn_seven(at: AppTest) -> AppTest:
    at.session_state["draw_canvas"] = {"drawing": drawing_value(DIGIT_STROKES["7"])}
    return at.run()


def heatmap_of(at: AppTest, key: str) -> dict[str, Any]:
    chart = next(c for c in at.get("plotly_chart") if key in str(c.proto.id))
    spec = json.loads(chart.proto.spec)
    return next(trace for trace in spec["data"] if trace["type"] == "heatmap")


def z_values(trace: dict[str, Any]) -> np.ndarray:
    """A heatmap's ``z``, decoded from plotly's base64 typed array ("shape": "28, 28")."""
    z = trace["z"]
    raw = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
    return raw.reshape([int(n) for n in str(z["shape"]).split(",")])


def map_caption(at: AppTest, method: str, target: int) -> str:
    """The caption beneath the map: its text alternative."""
    start = f"{method} for class {target}, in input pixels: "
    return next(c.value for c in at.caption if c.value.startswith(start))


def place(values: np.ndarray, flat: int) -> str:
    row, col = np.unravel_index(flat, values.shape)
    return f"row {row}, column {col}"


def drawn_seven_tensor() -> tuple[nn.Module, torch.Tensor]:
    """LeNet-5 and the drawn 7 as the Draw page prepares it."""
    loaded = load_model("lenet5")
    prepared = loaded.prepare(render_drawing(parse_drawing(drawing_value(DIGIT_STROKES["7"]))))
    return loaded.model, prepared.tensor


def grad_cam_by_hand(model: nn.Module, x: torch.Tensor, layer: str, target: int) -> np.ndarray:
    """ReLU(Σ_k mean(∂y/∂A_k) A_k) of ``layer``, upsampled (bilinear) to the input: autograd."""
    twin = copy.deepcopy(model)  # the hook on a copy: the cached model is every session's
    seen: list[torch.Tensor] = []
    twin.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.enable_grad():
        score = twin(x.clone().requires_grad_(True))[0, target]
        (grad,) = torch.autograd.grad(score, seen[0])
    cam = F.relu((grad[0].mean(dim=(1, 2))[:, None, None] * seen[0].detach()[0]).sum(0))
    size = (int(x.shape[-2]), int(x.shape[-1]))
    grown = F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)
    return grown[0, 0].numpy()


def test_draw_page_explains_the_drawn_digit_with_gradcam_by_default() -> None:
    at = drawn_seven(AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120).run())
    at.segmented_control(key="draw_view").set_value("Why this class?").run()
    assert not at.exception
    model, x = drawn_seven_tensor()
    top = int(torch.argmax(model(x)))
    assert at.selectbox(key="draw_why_method").value == "gradcam"
    assert at.selectbox(key="draw_why_class_lenet5").value == top  # the top class first
    shown = z_values(heatmap_of(at, "draw_why_map"))
    expected = grad_cam_by_hand(model, x, "pool2", top)
    np.testing.assert_allclose(shown, expected, rtol=1e-5, atol=1e-7)
    # The metric: p(top) once the map's top 10 % of pixels are set to 0.
    hidden = x.clone().reshape(-1)
    hidden[np.argsort(-shown.ravel(), kind="stable")[: round(0.1 * 28 * 28)].copy()] = 0.0
    with torch.no_grad():
        after = float(torch.softmax(model(hidden.view(1, 1, 28, 28)), 1)[0, top])
    metric = next(m for m in at.metric if "hidden" in m.label)
    assert metric.value == f"{after:.1%}"
    assert any("Layer: pool2." in m.value for m in at.markdown)
    # The map's text alternative: its size, where it peaks, and what the colours mean.
    text = map_caption(at, "Grad-CAM", top)
    assert "28 × 28 map" in text and "most negative" not in text  # a ReLU'd map
    assert f"strongest at {place(shown, int(np.argmax(shown)))}." in text
    assert "Colours: dark purple lowest through green to yellow highest" in text
    assert text.endswith("over the input at 60% opacity.")


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "occlusion", "scorecam"])
def test_draw_page_every_family_of_method_for_another_class(method: str) -> None:
    at = drawn_seven(AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120).run())
    at.segmented_control(key="draw_view").set_value("Why this class?").run()
    at.selectbox(key="draw_why_method").set_value(method).run()
    at.selectbox(key="draw_why_class_lenet5").set_value(3).run()
    assert not at.exception
    assert not at.warning
    trace = heatmap_of(at, "draw_why_map")
    shown = z_values(trace)
    assert shown.size == 28 * 28
    text = map_caption(at, method_labels()[method], 3)
    assert f"strongest at {place(shown, int(np.argmax(shown)))}" in text
    if shown.min() < 0:  # a signed map: where it is most against class 3, on the blue side
        assert f"most negative at {place(shown, int(np.argmin(shown)))}." in text
        assert "blue below 0, white at 0, red above" in text
        assert text.endswith("above 0 counts for 3, below 0 against it.")
    assert "p(3) with the top 10% hidden" in [m.label for m in at.metric]


def test_image_page_why_view_on_resnet18_with_a_chosen_layer() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=240).run()
    at.segmented_control(key="image_view").set_value("Why this class?").run()
    assert not at.exception
    at.selectbox(key="image_why_layer_resnet18").set_value("layer3").run()
    assert not at.exception
    assert any("Layer: layer3." in m.value for m in at.markdown)
    assert z_values(heatmap_of(at, "image_why_map")).size == 224 * 224


def test_an_occlusion_the_scheduler_refuses_is_a_message_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    macs = 416_520  # LeNet-5's conv and linear layers (tests/test_scheduler.py counts them)
    monkeypatch.setenv(RATE_ENV, repr(0.01 / (macs / 1e9)))  # a pass: 10 ms
    monkeypatch.setenv(BUDGET_ENV, "1.005")  # 100 passes
    at = drawn_seven(AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120).run())
    at.segmented_control(key="draw_view").set_value("Why this class?").run()
    at.selectbox(key="draw_why_method").set_value("occlusion").run()
    at.slider(key="draw_why_window").set_value(1).run()
    at.slider(key="draw_why_stride").set_value(1).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "Not computed: Occlusion with a 1-px window and a 1-px stride is 788 passes of LeNet-5 "
        "(417 k multiply-adds each) ≈ 8 s on this server, over the 1 s a job may take here: "
        "use a window and a stride of 3 px or more."
    ]
    assert not [c for c in at.get("plotly_chart") if "draw_why_map" in str(c.proto.id)]
    at.slider(key="draw_why_window").set_value(3).run()
    at.slider(key="draw_why_stride").set_value(3).run()
    assert not at.exception and not at.warning
    assert z_values(heatmap_of(at, "draw_why_map")).size == 28 * 28


def test_the_largest_occlusion_window_the_page_offers_hides_the_whole_digit() -> None:
    at = drawn_seven(AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120).run())
    at.segmented_control(key="draw_view").set_value("Why this class?").run()
    at.selectbox(key="draw_why_method").set_value("occlusion").run()
    window, stride = at.slider(key="draw_why_window"), at.slider(key="draw_why_stride")
    assert (window.min, window.max, stride.max) == (1, 28, 28)  # no window beyond the input
    window.set_value(28).run()
    at.slider(key="draw_why_stride").set_value(28).run()
    assert not at.exception and not at.warning
    # One window over all of it: every pixel gets p(7) − p(7 | every pixel 0).
    model, x = drawn_seven_tensor()
    with torch.no_grad():
        drop = float(torch.softmax(model(x), 1)[0, 7] - torch.softmax(model(x * 0), 1)[0, 7])
    assert drop > 0.5
    np.testing.assert_allclose(z_values(heatmap_of(at, "draw_why_map")), drop, rtol=1e-5)


def test_the_image_page_refuses_the_smallest_occlusion_of_vgg16_and_says_what_to_change() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=300).run()
    at.selectbox(key="image_model").set_value("vgg16").run()
    assert not at.exception
    at.session_state["image_why_method"] = "occlusion"
    at.session_state["image_why_window"] = 1
    at.session_state["image_why_stride"] = 1
    at.segmented_control(key="image_view").set_value("Why this class?").run()
    assert not at.exception
    refusals = [w.value for w in at.warning if w.value.startswith("Not computed")]
    assert len(refusals) == 1
    assert refusals[0].startswith(
        "Not computed: Occlusion with a 1-px window and a 1-px stride is 50,180 passes of "
        "VGG-16 (15.5 G multiply-adds each) ≈ "
    )
    assert "use a window and a stride of" in refusals[0]
    assert not [c for c in at.get("plotly_chart") if "image_why_map" in str(c.proto.id)]


def test_a_classmates_heavy_job_does_not_hold_up_the_draw_pages_answer() -> None:
    started, opened, seen = threading.Event(), threading.Event(), []

    def heavy(progress: Progress) -> str:
        progress(0.0)
        started.set()
        while not opened.wait(0.005):
            progress(0.5)
        return "done"

    scheduler = default_scheduler()
    ticket = scheduler.submit("classmate", Job(("classmate's occlusion",), heavy, cache=False))
    try:
        assert started.wait(60)
        at = drawn_seven(
            AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120).run()
        )
        seen.append(next(m.value for m in at.metric if m.label == "Prediction"))
        at.segmented_control(key="draw_view").set_value("Why this class?").run()
        assert not at.exception
        assert z_values(heatmap_of(at, "draw_why_map")).size == 28 * 28
        assert not ticket.done()  # the classmate's job still runs: nothing waited behind it
    finally:
        opened.set()
        ticket.release()
    assert ticket.wait(60) and ticket.result() == "done"
    assert seen == ["7"]
