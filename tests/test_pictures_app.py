"""The Your pictures page in AppTest: upload 3 classes, train, use the model on the Image page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.models.shapes import SHAPES, shape_picture
from tests.conftest import torch_threads

REPO = Path(__file__).resolve().parents[1]


def uploads(shape: str, count: int, seed: int) -> list[tuple[str, bytes, str]]:
    rng = np.random.default_rng(seed)
    return [(f"{shape}-{i}.png", shape_picture(shape, rng), "image/png") for i in range(count)]


@pytest.fixture(scope="module")
def trained() -> AppTest:
    """The page after uploading 3 shapes × 15 pictures and training the small CNN."""
    with torch_threads(1):
        at = AppTest.from_file(str(REPO / "pages" / "pictures.py"), default_timeout=300).run()
        at.number_input(key="pictures_classes").set_value(3).run()
        for index, shape in enumerate(SHAPES[:3]):
            at.text_input(key=f"pictures_name_{index}").set_value(shape)
            at.file_uploader(key=f"pictures_upload_{index}_0").set_value(uploads(shape, 15, index))
        at.run()
        at.slider(key="pictures_epochs_small").set_value(12)
        return at.button(key="pictures_train").click().run()


def test_the_page_says_where_the_pictures_stay() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "pictures.py"), default_timeout=60).run()
    assert not at.exception
    assert any("never written to disk" in i.value for i in at.info)
    at.button(key="pictures_train").click().run()
    assert any("class 'class 1'" in e.value and "no pictures" in e.value for e in at.error)


def test_uploads_train_and_show_curves_filters_matrix(trained: AppTest) -> None:
    assert not trained.exception
    assert [c.value for c in trained.caption if "picture(s)" in c.value] == ["15 picture(s)"] * 3
    metric = next(m for m in trained.metric if m.label == "Held-out accuracy")
    taught = trained.session_state["pictures_taught"]
    assert metric.value == f"{taught.held_out_accuracy:.1%}"
    assert taught.classes == SHAPES[:3] and len(taught.held_out) == 9
    charts = [str(c.proto.id) for c in trained.get("plotly_chart")]
    for key in ("pictures_curves", "pictures_filters", "pictures_confusion"):
        assert any(key in chart for chart in charts), key
    # each chart's text alternative, its numbers the trained network's own
    captions = [c.value for c in trained.caption]
    right = int(np.trace(taught.confusion))
    assert f"Confusion matrix: {right} of 9 right ({right / 9 * 100:.1f}" in " ".join(captions)
    weights = taught.snapshots[-1]
    assert weights.shape == (16, 3, 3, 3)
    assert any(c.startswith("conv1 after epoch 12: 16 filters of 3 × 3 × 3") for c in captions)
    last = taught.points[-1]
    assert any(c.startswith(f"Held-out accuracy {last.val_accuracy * 100:.1f}") for c in captions)
    downloads = {d.proto.label for d in trained.get("download_button")}
    assert downloads == {"Model (.pt2, card inside)", "Card (.json)"}


def test_use_this_model_puts_it_on_the_image_page(trained: AppTest) -> None:
    trained.button(key="pictures_use").click().run()
    assert not trained.exception
    assert any("now on the Image classifier page" in s.value for s in trained.success)
    model = trained.session_state["pictures_model"]
    image = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=180)
    image.session_state["pictures_model"] = model
    image.run()
    assert model.spec.title in image.selectbox(key="image_model").options
    assert model.spec.title == "Your pictures: circle, square, triangle (Small CNN from scratch)"
    image.selectbox(key="image_model").set_value("pictures_model").run()
    image.segmented_control(key="image_source").set_value("Upload").run()
    picture = shape_picture("square", np.random.default_rng(99))
    image.file_uploader(key="image_upload").set_value(("square.png", picture, "image/png"))
    image.run()
    assert not image.exception
    top = next(d.value for d in image.dataframe if "rank" in d.value.columns)
    assert set(top["class"]) == set(SHAPES[:3])  # only your classes, no ImageNet ones
    probs = model.capture(model.prepare(picture), layers=[]).probs
    assert top["class"].iloc[0] == SHAPES[int(probs.argmax())]
    assert top["probability"].iloc[0] == pytest.approx(float(probs.max()), abs=1e-4)


def test_the_model_is_on_the_experiment_page_too(trained: AppTest) -> None:
    trained.button(key="pictures_use").click().run()
    model = trained.session_state["pictures_model"]
    page = AppTest.from_file(str(REPO / "pages" / "experiment.py"), default_timeout=180)
    page.session_state["pictures_model"] = model
    page.run()
    assert model.spec.title in page.selectbox(key="exp_model").options
    page.selectbox(key="exp_model").set_value("pictures_model").run()
    assert not page.exception
    assert not page.warning, [w.value for w in page.warning]
    captions = " ".join(c.value for c in page.caption) + " ".join(m.value for m in page.markdown)
    assert "Your pictures: circle, square, triangle" in captions


def test_a_rerun_during_training_keeps_it_going_until_its_answer_is_shown() -> None:
    """The training lives in the session's state: every rerun follows it, none loses it."""
    from explorer.models.shapes import shape_set
    from explorer.models.teach import TeachSettings
    from explorer.views.pictures import teach_job

    with torch_threads(1):
        # an answer that came while no page waited (the page was rerunning): shown, not redone
        done = teach_job(shape_set(2, 10, seed=1), TeachSettings(epochs=1))
        outcome = done.job.run(lambda _done: None)
        at = AppTest.from_file(str(REPO / "pages" / "pictures.py"), default_timeout=120)
        at.session_state["pictures_training"] = done
        at.run()
        assert not at.exception
        assert at.session_state["pictures_taught"] is outcome.taught
        assert "pictures_training" not in at.session_state
        assert any(m.label == "Held-out accuracy" for m in at.metric)
        # a training whose page run was interrupted (a webcam shot): the next rerun follows it
        # through the scheduler, with no Train click
        going = teach_job(shape_set(2, 10, seed=2), TeachSettings(epochs=2))
        at.session_state["pictures_training"] = going
        at.slider(key="pictures_epochs_small").set_value(3).run()
        assert not at.exception
        assert going.outcome is not None
        assert at.session_state["pictures_taught"] is going.outcome.taught
        assert "pictures_training" not in at.session_state
        # one that was stopped (the page left for long) says so once, and is let go
        stopped = teach_job(shape_set(2, 10, seed=3), TeachSettings(epochs=1))
        stopped.stopped = True
        at.session_state["pictures_training"] = stopped
        at.run()
        assert any("Training was stopped" in w.value for w in at.warning)
        assert "pictures_training" not in at.session_state


def test_the_pt2_download_is_the_one_made_in_the_training_job(trained: AppTest) -> None:
    outcome = trained.session_state["pictures_outcome"]
    assert outcome.taught is trained.session_state["pictures_taught"]
    assert outcome.program is not None and not outcome.problem
    button = next(d for d in trained.get("download_button") if d.proto.label.startswith("Model"))
    # the bytes handed over at once (a callable would export on the page's thread, deferred)
    assert button.proto.url and not button.proto.deferred_file_id


def test_while_it_trains_each_epoch_shows_and_a_cancelled_one_is_not_started_again() -> None:
    """The live views come from the job's thread; a cancelled job (in line or running) ends."""
    import itertools
    import time

    from explorer.figures.describe import percent_text
    from explorer.hosting.jobs import Job, JobCancelled
    from explorer.models.shapes import shape_set
    from explorer.models.teach import Taught, TeachSettings, teach
    from explorer.views.pictures import Training

    with torch_threads(1):
        seen: list[Taught] = []
        teach(shape_set(2, 10, seed=7), TeachSettings(epochs=2), on_epoch=seen.append)
    runs = itertools.count()

    def run(progress: Callable[[float], None]) -> None:
        next(runs)
        for so_far in seen:  # each epoch ends; the page polls every 0.25 s and draws it
            training.so_far = so_far
            for _ in range(6):
                time.sleep(0.1)
                progress(0.5)
        raise JobCancelled  # as when another heavy job of this session replaces it

    key = ("teach", "live-test")
    training = Training(Job(key, run, lane="long", cache=False, on_cancel=lambda: training.stop()))
    at = AppTest.from_file(str(REPO / "pages" / "pictures.py"), default_timeout=60)
    at.session_state["pictures_training"] = training
    at.run()
    assert not at.exception
    # both epochs drawn in the one run, each over the last (its charts' keys its own)
    metric = next(m for m in at.metric if m.label.startswith("Held-out accuracy"))
    assert metric.label == "Held-out accuracy after epoch 2"
    assert metric.value == percent_text(seen[1].points[-1].val_accuracy)
    assert "Epoch 2 of 2…" in [c.value for c in at.caption]
    charts = [str(c.proto.id) for c in at.get("plotly_chart")]
    for chart_key in (
        "pictures_curves_live1",
        "pictures_filters_live1",
        "pictures_confusion_live1",
    ):
        assert any(chart_key in chart for chart in charts), chart_key
    assert not any("_live0" in chart for chart in charts)
    assert not at.get("download_button")  # nothing to use or download before it ends
    assert any(i.value == "Training: stopped." for i in at.info)
    assert training.stopped
    at.run()  # the next rerun says so once, and does not start it again
    assert any("Training was stopped" in w.value for w in at.warning)
    assert "pictures_training" not in at.session_state
    at.run()
    assert next(runs) == 1


def test_when_the_session_ends_its_pictures_and_model_leave_the_server() -> None:
    """Nothing outside the session (the scheduler, a cache) keeps a picture or the model."""
    import gc
    import weakref

    with torch_threads(1):
        at = AppTest.from_file(str(REPO / "pages" / "pictures.py"), default_timeout=120).run()
        for index, shape in enumerate(SHAPES[:2]):
            at.file_uploader(key=f"pictures_upload_{index}_0").set_value(uploads(shape, 10, index))
        at.run()
        at.slider(key="pictures_epochs_small").set_value(1)
        at.button(key="pictures_train").click().run()
    assert not at.exception
    kept = [
        *at.session_state["pictures_drafts"],
        at.session_state["pictures_taught"],
        at.session_state["pictures_outcome"],
    ]
    assert len(kept[0].pictures) == 10 and kept[-1].program
    gone = [weakref.ref(thing) for thing in kept]
    del at, kept
    gc.collect()
    assert [ref() for ref in gone] == [None] * len(gone)
