"""The Train page in AppTest: a short run, its curves and matrix, then draw on the trained model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from explorer.inputs.strokes import DIGIT_STROKES, drawing_value
from explorer.models.live import TrainingRun

REPO = Path(__file__).resolve().parents[1]


def trained_page() -> AppTest:
    """The Train page after a two-epoch run on 1,000 digits (32 steps, two curve points)."""
    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=120).run()
    at.slider(key="train_epochs").set_value(2)
    at.slider(key="train_size").set_value(1000)
    at.button(key="train_start").click().run()
    run = at.session_state["train_run"]
    assert isinstance(run, TrainingRun)
    deadline = time.monotonic() + 60
    while run.alive and time.monotonic() < deadline:
        time.sleep(0.2)
        run.progress()
    return at.run()


def test_a_short_run_shows_its_curves_filters_matrix_and_mistakes() -> None:
    at = trained_page()
    assert not at.exception
    run = at.session_state["train_run"]
    progress = run.progress()
    assert progress.status == "done" and progress.step == 32
    charts = [str(c.proto.id) for c in at.get("plotly_chart")]
    for key in ("train_curves", "train_filters", "train_confusion"):
        assert any(key in chart for chart in charts), key
    assert at.slider(key="train_scrub").value == len(progress.filters) - 1
    texts = " ".join(p.proto.text for p in at.get("progress"))
    assert "step 32 of 32" in texts
    assert len(at.get("image")) == len(progress.mistakes) > 0  # the misclassified digits


def test_a_short_runs_charts_have_text_alternatives() -> None:
    at = trained_page()
    progress = at.session_state["train_run"].progress()
    captions = [c.value for c in at.caption]
    last = progress.points[-1]
    curves = next(c for c in captions if c.startswith("Held-out accuracy"))
    accuracy = f"{last.val_accuracy * 100:.1f}%"
    assert curves.startswith(f"Held-out accuracy {accuracy} after epoch {last.epoch:.3g} ")
    assert f"(step {last.step}; train loss " in curves
    best = max(range(len(progress.points)), key=lambda i: progress.points[i].val_accuracy)
    assert curves.endswith(f"at step {progress.points[best].step}")
    weights = progress.filters[-1]
    filters = next(c for c in captions if c.startswith(f"conv1 at step {last.step}: "))
    f, _, row, col = np.unravel_index(int(np.argmax(weights)), weights.shape)
    assert f"{weights.shape[0]} filters of 1 × 5 × 5" in filters
    assert filters.endswith(f"largest in filter {f} at row {row}, column {col}")
    confusion = np.asarray(progress.confusion)
    matrix = next(c for c in captions if c.startswith("Confusion matrix: "))
    right, total = int(np.trace(confusion)), int(confusion.sum())
    assert matrix.startswith(f"Confusion matrix: {right:,} of {total:,} right")
    wrong = confusion.copy()
    np.fill_diagonal(wrong, -1)
    true, predicted = np.unravel_index(int(np.argmax(wrong)), wrong.shape)
    if wrong.max() > 0:
        assert f"most confused: true {true} read as {predicted} ({wrong.max()} time" in matrix


def test_use_this_model_puts_it_on_the_draw_page() -> None:
    at = trained_page()
    at.button(key="train_use").click().run()
    assert not at.exception
    assert any("now on the Draw and Image pages" in s.value for s in at.success)
    trained = at.session_state["trained_model"]
    draw = AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120)
    draw.session_state["trained_model"] = trained
    draw.run()
    assert "Your trained model" in draw.segmented_control(key="draw_model").options
    draw.segmented_control(key="draw_model").set_value("trained_model").run()
    draw.session_state["draw_canvas"] = {"drawing": drawing_value(DIGIT_STROKES["7"])}
    draw.run()
    assert not draw.exception
    prediction = draw.metric[0].value
    result = trained.capture(trained.prepare(draw_canvas_image()), layers=[])
    assert prediction == trained.categories[result.top(1)[0][0]]
    captions = " ".join(c.value for c in draw.caption)
    assert "Your trained LeNet-5" in captions and "trained by you" in captions


def draw_canvas_image() -> object:
    from explorer.inputs.strokes import parse_drawing, render_drawing

    return render_drawing(parse_drawing(drawing_value(DIGIT_STROKES["7"])))
