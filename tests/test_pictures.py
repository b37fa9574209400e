"""Your own pictures: the set's bounds, the held-out split, folders, training, the card."""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.inputs.preprocess import preprocess_input
from explorer.models.cards import (
    MAX_CARD_BYTES,
    CardError,
    check_card,
    read_card,
)
from explorer.models.folders import read_folder
from explorer.models.loop import MISTAKES_SHOWN
from explorer.models.own import OwnModelError, load_program, program_bytes
from explorer.models.picturenets import PASS_MULT_ADDS, SmallPictureNet, build_picture_net
from explorer.models.pictures import (
    MAX_PICTURE_MB,
    Picture,
    PictureError,
    held_out_split,
    picture_set,
)
from explorer.models.shapes import SHAPES, shape_picture, shape_set, write_shape_folder
from explorer.models.teach import PREPARE_SHARE, Taught, TeachSettings, taught_model, teach
from tests.conftest import torch_threads


def png(colour: tuple[int, int, int] = (200, 0, 0), side: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, "PNG")
    return buffer.getvalue()


_colours = itertools.count()


def pictures(count: int, name: str = "p") -> list[Picture]:
    """``count`` pictures, each different from every other made here."""
    made = []
    for i in range(count):
        n = next(_colours)
        made.append(Picture(f"{name}{i}.png", png((n % 256, n // 256 % 256, 7))))
    return made


@pytest.fixture(scope="module")
def taught() -> Taught:
    """The small CNN trained on the easy set: 3 shapes × 20 pictures."""
    with torch_threads(1):
        return teach(shape_set(3, 20, seed=0), TeachSettings(epochs=12))


# --- the set's bounds ----------------------------------------------------------------------


def test_a_set_keeps_its_classes_in_order_with_labels() -> None:
    made = picture_set({"cats": pictures(10), "dogs": pictures(12)})
    assert made.classes == ("cats", "dogs")
    assert len(made) == 22
    assert made.labels.tolist() == [0] * 10 + [1] * 12


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ({"only": pictures(10)}, "1 class(es): give 2…5"),
        ({f"c{i}": pictures(10) for i in range(6)}, "6 class(es): give 2…5"),
        ({"a": pictures(10), "b": pictures(9)}, "class 'b' (b) has only 9 picture(s)"),
        ({"a": pictures(10), "b": []}, "class 'b' (b) has no pictures"),
        ({"a": pictures(10), "b": pictures(101)}, "101 pictures: at most 100"),
        ({"a": pictures(10), "A ": pictures(10)}, "two classes have the same name"),
        ({"a": pictures(10), "  ": pictures(10)}, "a class needs a name"),
        ({"a": pictures(10), "b\x00": pictures(10)}, "control characters"),
    ],
)
def test_a_bad_set_is_refused_with_one_clear_line(
    classes: dict[str, list[Picture]], message: str
) -> None:
    with pytest.raises(PictureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        picture_set(classes)


def test_an_unreadable_or_huge_picture_is_named() -> None:
    broken = [*pictures(9), Picture("holiday.jpg", b"not a picture at all")]
    with pytest.raises(PictureError, match=r"^holiday\.jpg: .*not an image"):
        picture_set({"a": pictures(10), "b": broken})
    huge = [*pictures(9), Picture("big.png", b"\0" * (MAX_PICTURE_MB * 2**20 + 1))]
    with pytest.raises(PictureError, match=r"^big\.png: over 10 MB"):
        picture_set({"a": pictures(10), "b": huge})


def test_a_decompression_bomb_is_refused_by_the_safe_reader() -> None:
    buffer = io.BytesIO()
    Image.new("L", (10_000, 10_000)).save(buffer, "PNG")  # 100 MP in ~100 kB
    bomb = [*pictures(9), Picture("bomb.png", buffer.getvalue())]
    with pytest.raises(PictureError, match=r"^bomb\.png: "):
        picture_set({"a": pictures(10), "b": bomb})


# --- the held-out split --------------------------------------------------------------------


def test_the_split_keeps_held_out_pictures_apart_and_stratified() -> None:
    labels = np.array([0] * 10 + [1] * 23 + [2] * 60)
    split = held_out_split(labels, seed=3)
    assert not set(split.train) & set(split.held_out)
    assert sorted([*split.train, *split.held_out]) == list(range(len(labels)))
    held = np.bincount(labels[split.held_out])
    assert held.tolist() == [2, 5, 12]  # max(2, round(20 %)) of 10, 23 and 60
    again = held_out_split(labels, seed=3)
    assert np.array_equal(again.held_out, split.held_out)
    assert not np.array_equal(held_out_split(labels, seed=4).held_out, split.held_out)


# --- folders -------------------------------------------------------------------------------


def test_a_folder_in_imagefolder_layout_reads_as_its_classes(tmp_path: Path) -> None:
    write_shape_folder(tmp_path, classes=3, per_class=10)
    (tmp_path / "circle" / "notes.txt").write_text("skipped: not a picture")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "README.md").write_text("a loose file is not a class")
    made = read_folder(tmp_path)
    assert made.classes == SHAPES[:3]
    assert [len(p) for p in made.pictures] == [10, 10, 10]
    assert made.pictures[0][0].data == shape_set(3, 10, seed=0).pictures[0][0].data


def test_bad_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(PictureError, match="not a folder"):
        read_folder(tmp_path / "missing")
    with pytest.raises(PictureError, match="no class folders"):
        read_folder(tmp_path)
    write_shape_folder(tmp_path, classes=1, per_class=10)
    with pytest.raises(PictureError, match="1 class"):
        read_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PictureError, match=r"class 'empty' .*empty.* has no pictures"):
        read_folder(tmp_path)
    write_shape_folder(tmp_path, classes=2, per_class=10)
    (tmp_path / "empty").rmdir()
    (tmp_path / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(PictureError, match=r"square/broken\.png: "):
        read_folder(tmp_path)


# --- the networks --------------------------------------------------------------------------


def test_the_small_net_names_its_layers_for_the_views() -> None:
    names = [name for name, _ in SmallPictureNet(4).named_children()]
    assert names[:6] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    assert SmallPictureNet(4)(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_finetuning_trains_only_layer4_and_a_new_fc_and_says_where_weights_came_from() -> None:
    built = build_picture_net("finetune:resnet18", 3)
    trainable = {n.split(".")[0] for n, p in built.net.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "fc"}
    assert built.net.get_submodule("fc").out_features == 3
    # offline (the tests' setting): random init, and the notice says so and why
    assert built.weights.startswith("random init")
    assert built.notice is not None and "RANDOM" in built.notice
    assert "ResNet18_Weights.IMAGENET1K_V1" in built.notice and "EXPLORER_OFFLINE" in built.notice


# --- training ------------------------------------------------------------------------------


def test_the_small_cnn_learns_the_easy_set(taught: Taught) -> None:
    assert taught.held_out_accuracy >= 0.9
    assert len(taught.points) == 12 and len(taught.snapshots) == 12
    assert taught.points[-1].val_accuracy == pytest.approx(taught.held_out_accuracy)
    assert int(taught.confusion.sum()) == len(taught.held_out) == 12
    assert taught.card()["classes"] == ["circle", "square", "triangle"]


def test_held_out_accuracy_matches_predictions_of_the_original_pictures(taught: Taught) -> None:
    """Prepared from the files as any prediction is, the held-out pictures score the same."""
    pictures_ = shape_set(3, 20, seed=0)
    split = held_out_split(pictures_.labels, seed=0)
    loaded = taught_model(taught)
    flat = pictures_.flat()
    right = 0
    for index in split.held_out:
        prepared = loaded.prepare(flat[index].data)
        right += int(loaded.capture(prepared, layers=[]).probs.argmax()) == pictures_.labels[index]
    assert right / len(split.held_out) == pytest.approx(taught.held_out_accuracy)
    assert loaded.categories == ("circle", "square", "triangle")
    assert loaded.input_spec.shape == (3, 64, 64)
    assert loaded.weights_label == "trained by you, on your pictures"


def test_finetuning_with_random_weights_still_learns_the_easy_set() -> None:
    with torch_threads(1):
        result = teach(shape_set(3, 20, seed=1), TeachSettings("finetune:resnet18", epochs=8))
    assert result.held_out_accuracy >= 0.75  # chance is 1/3
    assert result.built.notice is not None
    assert result.card()["start_weights"].startswith("random init")
    # the frozen layers are as built: weights AND BatchNorm's running statistics (a frozen
    # part left in train mode would move its running means while the head trains)
    start = build_picture_net("finetune:resnet18", 3, seed=0).net.state_dict()
    end = result.net.state_dict()
    frozen = [k for k in start if not k.startswith(("layer4.", "fc."))]
    assert any("running_mean" in k for k in frozen) and any("running_var" in k for k in frozen)
    changed = [k for k in frozen if not torch.equal(start[k], end[k])]
    assert changed == []
    assert not torch.equal(start["layer4.1.conv2.weight"], end["layer4.1.conv2.weight"])
    # the watched weight's snapshot is a slice of a 512-filter layer, and its words say so
    from explorer.views.pictures import snapshot_description

    whole = end[result.built.watched].shape
    kept = result.snapshots[-1].shape
    assert whole[:2] == (512, 512) and kept == (16, 8, 3, 3)
    text = snapshot_description(result, len(result.points) - 1)
    assert text.startswith(
        "layer4.1.conv2 after epoch 8 (its first 16 of 512 filters, 8 of 512 inputs): "
        "16 filters of 8 × 3 × 3, weights "
    )


# --- the card ------------------------------------------------------------------------------


def test_a_whole_watched_weight_is_described_as_itself(taught: Taught) -> None:
    from explorer.views.pictures import snapshot_description

    weights = taught.snapshots[3]
    assert weights.shape == taught.net.get_parameter("conv1.weight").shape == (16, 3, 3, 3)
    text = snapshot_description(taught, 3)
    largest = np.unravel_index(np.argmax(weights), weights.shape)
    assert text.startswith("conv1 after epoch 4: 16 filters of 3 × 3 × 3, weights ")
    assert text.endswith(
        f"largest in filter {largest[0]} at input channel {largest[1]}, row {largest[2]}, "
        f"column {largest[3]}"
    )


def test_the_card_round_trips_inside_the_program(taught: Taught) -> None:
    data = program_bytes(taught.net, taught.built.spec, taught.card())
    card = read_card(data)
    assert card is not None
    assert card.classes == taught.classes and card.spec == taught.built.spec
    assert card.fields["held_out_accuracy"] == round(taught.held_out_accuracy, 4)
    loaded = load_program(data, "shapes.pt2")
    assert loaded.categories == taught.classes
    assert loaded.input_spec == taught.built.spec
    picture = shape_picture("triangle", np.random.default_rng(9))
    mine = taught_model(taught)
    expected = mine.capture(preprocess_input(picture, mine.input_spec), layers=[]).probs
    found = loaded.capture(loaded.prepare(picture), layers=[]).probs
    assert torch.allclose(found, expected, atol=1e-5)


def good_card() -> dict[str, object]:
    return {
        "classes": ["a", "b"],
        "input": {"channels": 3, "height": 64, "width": 64, "mean": [0.5] * 3, "std": [0.2] * 3},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": "ab"}, "list of 2…5 names"),
        ({"classes": ["a"] * 6}, "list of 2…5 names"),
        ({"classes": ["a", 1]}, "must be strings"),
        ({"classes": ["a", "a"]}, "same name"),
        ({"classes": ["Cat", "cat "]}, "same name"),  # the page's rule: case and spaces aside
        ({"classes": ["a", "x" * 41]}, "over 40 characters"),
        ({"input": [3, 64, 64]}, "must be an object"),
        ({"input": {**good_card()["input"], "channels": True}}, "whole numbers"),  # type: ignore[dict-item]
        ({"input": {**good_card()["input"], "height": 100_000}}, "8…1024 pixels"),  # type: ignore[dict-item]
        ({"input": {**good_card()["input"], "mean": [1e308] * 3}}, "finite numbers"),  # type: ignore[dict-item]
        ({"input": {**good_card()["input"], "std": [0, 1, 1]}}, "std must be positive"),  # type: ignore[dict-item]
        ({"input": {**good_card()["input"], "mean": "0.5"}}, "list of 1…3 numbers"),  # type: ignore[dict-item]
    ],
)
def test_a_hostile_card_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(CardError, match=message):
        check_card(json.dumps({**good_card(), **change}).encode())


def test_a_huge_deep_or_broken_card_is_refused_without_reading_it_all() -> None:
    with pytest.raises(CardError, match="over 16 kB"):
        check_card(b" " * (MAX_CARD_BYTES + 1))
    with pytest.raises(CardError, match="not JSON"):
        check_card(b"[" * 10_000)
    with pytest.raises(CardError, match="not JSON"):
        check_card(b'{"classes": NaN')
    with pytest.raises(CardError, match="not a JSON object"):
        check_card(b"[1, 2]")
    card = good_card()
    card["input"]["mean"] = [float("nan")] * 3  # type: ignore[index]
    with pytest.raises(CardError, match="finite"):
        check_card(json.dumps(card).encode())


def test_a_card_that_lies_about_its_size_or_classes_is_refused(taught: Taught) -> None:
    data = program_bytes(taught.net, taught.built.spec, taught.card())
    # a zip entry stating a small size but holding more: read no further than the limit
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(buffer, "w") as target,
    ):
        for entry in source.infolist():
            body = source.read(entry)
            if entry.filename.endswith("extra/card.json"):
                body = b'{"classes": ["a", "b", "c"], "pad": "' + b"x" * 40_000 + b'"}'
            target.writestr(entry, body)
    with pytest.raises(CardError, match="over 16 kB"):
        read_card(buffer.getvalue())
    two_classes = {**taught.card(), "classes": ["a", "b"]}
    wrong = program_bytes(taught.net, taught.built.spec, two_classes)
    with pytest.raises(OwnModelError, match="2 names for 3 classes"):
        load_program(wrong, "wrong.pt2")


# --- the page's view-model -----------------------------------------------------------------


def test_adding_pictures_counts_each_once_checks_each_and_stops_at_the_cap() -> None:
    from explorer.views.pictures import THUMBNAIL_SIDE, ClassDraft, add_pictures

    draft = ClassDraft("cats")
    same = Picture("a.png", png((1, 2, 3), side=200))
    assert add_pictures(draft, [same, Picture("again.png", same.data)]) == []
    assert draft.pictures == [same]  # a rerun or the same file uploaded twice: once
    assert draft.thumbnails[0].shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3)
    assert add_pictures(draft, [Picture("notes.txt", b"hello")])[0].startswith("notes.txt: ")
    many = [Picture(f"{i}.png", png((i % 256, i // 256, 0))) for i in range(120)]
    refused = add_pictures(draft, many)
    assert len(draft.pictures) == len(draft.thumbnails) == 100
    # one line a reason: the 20 files past 100 at once are never read; one class is full
    assert refused == [
        "20 file(s) left out: 100 at a time",
        "99.png: a class holds 100 pictures at most",
    ]
    draft.clear()
    assert add_pictures(draft, many[:60]) == []
    assert add_pictures(draft, many[50:])[-1] == (
        "100.png and 19 more: a class holds 100 pictures at most"
    )
    draft.clear()
    assert draft.pictures == draft.thumbnails == [] and draft.version == 2


def test_the_views_name_the_classes(taught: Taught) -> None:
    from explorer.views.pictures import (
        confusion_view,
        mistakes_view,
        snapshot_view,
        training_caption,
    )

    heatmap = confusion_view(taught).data[0]
    assert list(heatmap.x) == list(heatmap.y) == ["circle", "square", "triangle"]
    assert np.array_equal(np.asarray(heatmap.z), taught.confusion)
    assert "conv1 after epoch 3" in snapshot_view(taught, 2).layout.title.text
    assert len(mistakes_view(taught)) == len(taught.mistakes)
    caption = training_caption(taught)
    assert "Trained on 48 pictures, tested on 12 held out" in caption
    assert "starting weights: random (trained from scratch)" in caption


def test_a_cancelled_job_stops_training() -> None:
    calls: list[float] = []

    def report(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as the scheduler's JobCancelled, a BaseException

    with pytest.raises(KeyboardInterrupt):
        teach(shape_set(2, 10, seed=5), TeachSettings(epochs=50), report=report)
    assert len(calls) == 3 and calls == sorted(calls) and calls[-1] < 0.1


def test_each_epoch_hands_over_the_training_so_far() -> None:
    """The page's live views: after each epoch, that epoch's points, weights and matrix."""
    seen: list[Taught] = []
    with torch_threads(1):
        final = teach(shape_set(2, 10, seed=6), TeachSettings(epochs=3), on_epoch=seen.append)
    assert [len(s.points) for s in seen] == [1, 2, 3]
    assert [s.message for s in seen] == ["Epoch 1 of 3…", "Epoch 2 of 3…", "Epoch 3 of 3…"]
    for so_far in seen:
        epoch = len(so_far.points)
        assert so_far.points == final.points[:epoch]  # the same run, seen part by part
        assert len(so_far.snapshots) == epoch
        np.testing.assert_array_equal(so_far.snapshots[-1], final.snapshots[epoch - 1])
        # that epoch's matrix: every held-out picture once, its trace the epoch's accuracy
        assert so_far.confusion.sum() == len(final.held_out)
        accuracy = np.trace(so_far.confusion) / so_far.confusion.sum()
        assert accuracy == pytest.approx(so_far.points[-1].val_accuracy)
        # its mistakes are the matrix's off-diagonal pictures (as many, up to the shown few)
        wrong = int(so_far.confusion.sum() - np.trace(so_far.confusion))
        assert len(so_far.mistakes) == min(wrong, MISTAKES_SHOWN)
        for index, true, predicted, _ in so_far.mistakes:
            assert true != predicted and so_far.held_out_labels[index] == true
    np.testing.assert_array_equal(seen[-1].confusion, final.confusion)
    assert final.message == "Done: 3 epochs."


def test_progress_is_reported_while_decoding_before_training() -> None:
    calls: list[float] = []

    def report(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 30:
            raise KeyboardInterrupt  # cancelled while decoding: no step trained

    with pytest.raises(KeyboardInterrupt):
        teach(shape_set(2, 20, seed=5), TeachSettings(epochs=5), report=report)
    # 40 pictures decoded: the first tenth of the bar, a picture at a time
    assert calls == pytest.approx([PREPARE_SHARE / 2 * i / 40 for i in range(1, 31)])


# --- one name a class, one copy a picture ---------------------------------------------------


def test_two_drafts_of_the_same_name_are_refused_never_merged() -> None:
    from explorer.views.pictures import ClassDraft, gather

    for first, second in [("cat", "cat "), ("cat", "cat"), ("Cat", "cAT")]:
        drafts = [ClassDraft(first, pictures(10)), ClassDraft(second, pictures(12))]
        with pytest.raises(PictureError, match="same name"):
            gather(drafts)
    made = gather([ClassDraft(" cat ", pictures(10)), ClassDraft("dog", pictures(12))])
    assert made.classes == ("cat", "dog") and [len(p) for p in made.pictures] == [10, 12]


def test_the_same_picture_twice_counts_once_and_never_in_two_classes(tmp_path: Path) -> None:
    ten = pictures(10)
    copies = [Picture(f"copy{i}.png", ten[0].data) for i in range(3)]
    made = picture_set({"a": [*ten, *copies], "b": pictures(10)})
    assert [len(p) for p in made.pictures] == [10, 10]  # the copies could land held out
    with pytest.raises(PictureError, match="only 9 different picture"):
        picture_set({"a": [*ten[:9], *copies], "b": pictures(10)})
    with pytest.raises(PictureError, match=r"copy0\.png: the same picture is in class 'a'"):
        picture_set({"a": ten, "b": [*pictures(10), copies[0]]})
    folder = write_shape_folder(tmp_path, classes=2, per_class=10)
    for i in range(5):  # the same file saved again under other names
        (folder / "circle" / f"again-{i}.png").write_bytes(
            (folder / "circle" / "000.png").read_bytes()
        )
    assert [len(p) for p in read_folder(folder).pictures] == [10, 10]


def test_a_session_holds_at_most_max_total_mb_of_pictures(monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer.views import pictures as view

    monkeypatch.setattr(view, "MAX_TOTAL_MB", 1)
    rng = np.random.default_rng(0)

    def noise(i: int) -> Picture:  # ~300 kB: noise does not compress
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)).save(buffer, "PNG")
        return Picture(f"noise{i}.png", buffer.getvalue())

    first, second = view.ClassDraft("a"), view.ClassDraft("b")
    made = [noise(i) for i in range(5)]
    assert view.add_pictures(first, made[:2], [first, second]) == []
    refused = view.add_pictures(second, made[2:], [first, second])
    held = sum(len(p.data) for d in (first, second) for p in d.pictures)
    assert len(first.pictures) + len(second.pictures) == 1024 * 1024 // len(made[0].data)
    assert held <= 1024 * 1024 < held + len(made[0].data) * 1.1
    assert len(refused) == 1 and "at most 1 MB in all" in refused[0]


# --- the training job -----------------------------------------------------------------------


def test_the_pass_multiply_adds_are_counted_from_the_networks() -> None:
    def count(net: torch.nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
        total = 0

        def hook(module: torch.nn.Module, _: object, out: torch.Tensor) -> None:
            nonlocal total
            if isinstance(module, torch.nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                total += out[0].numel() * module.in_channels // module.groups * k
            elif isinstance(module, torch.nn.Linear):
                total += module.in_features * module.out_features

        hooks = [m.register_forward_hook(hook) for m in net.modules()]
        with torch.no_grad():
            y = net(x)
        for h in hooks:
            h.remove()
        return total, y

    for architecture, (frozen, trained) in PASS_MULT_ADDS.items():
        built = build_picture_net(architecture, 2)
        x = torch.zeros(1, *built.spec.shape)
        found, features = count(built.frozen, x) if built.frozen is not None else (0, x)
        assert found == pytest.approx(frozen, rel=1e-3)
        assert count(built.head, features)[0] == pytest.approx(trained, rel=1e-2)


def test_training_is_costed_and_a_long_one_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer.hosting.cost import check_budget
    from explorer.hosting.scheduler import OverBudget
    from explorer.views.pictures import AUGMENT_S, STEP_OVERHEAD_S, TRAIN_PASSES, teach_job

    monkeypatch.setenv("EXPLORER_SECONDS_PER_GMAC", "0.05")
    shapes = shape_set(3, 20, seed=0)  # 60 pictures, 12 held out
    cost = teach_job(shapes, TeachSettings("finetune:resnet18", epochs=10)).job.cost
    assert cost is not None
    frozen, trained = PASS_MULT_ADDS["finetune:resnet18"]
    mult_adds = 60 * frozen + 10 * (48 * TRAIN_PASSES + 12) * trained
    assert cost.seconds == pytest.approx(mult_adds / 1e9 * 0.05 + 10 * 48 * STEP_OVERHEAD_S)
    check_budget(cost, budget=cost.seconds * 1.01)
    with pytest.raises(OverBudget, match=r"train 4 epoch\(s\) at most"):
        check_budget(cost, budget=(60 * frozen + 4.5 * (48 * 3 + 12) * trained) / 1e9 * 0.05)
    small = teach_job(shapes, TeachSettings("small", epochs=10)).job.cost
    assert small is not None
    # a tiny net is mostly per-picture overhead: batching, the step, the distortion
    overhead = 10 * 48 * (STEP_OVERHEAD_S + AUGMENT_S)
    assert small.seconds == pytest.approx(10 * (48 * 3 + 12) * 11.2e6 / 1e9 * 0.05 + overhead)
    plain = teach_job(shapes, TeachSettings("small", epochs=10, augmentation=False)).job.cost
    assert plain is not None
    assert small.seconds - plain.seconds == pytest.approx(10 * 48 * AUGMENT_S)
    # the overhead is seconds, whatever the multiply-adds' rate: a faster rate, the same
    monkeypatch.setenv("EXPLORER_SECONDS_PER_GMAC", "0.005")
    fast = teach_job(shapes, TeachSettings("small", epochs=10)).job.cost
    assert fast is not None
    assert fast.seconds == pytest.approx(10 * (48 * 3 + 12) * 11.2e6 / 1e9 * 0.005 + overhead)


def test_a_rerun_finds_the_training_still_running_and_its_answer_kept() -> None:
    from explorer.hosting.scheduler import Scheduler
    from explorer.views.pictures import teach_job

    scheduler = Scheduler(workers=1, budget=1e9)
    training = teach_job(shape_set(2, 10, seed=3), TeachSettings(epochs=40))
    with torch_threads(1):
        with scheduler.submit("s", training.job) as ticket:  # the page's run
            while ticket.status().progress < 0.2:
                ticket.wait(0.05)
        # a rerun (a webcam shot): the ticket was let go; the next run submits the same job
        again = scheduler.submit("s", training.job)
        status = again.status()
        assert status.state in {"running", "done"} and status.progress >= 0.2  # not restarted
        outcome = again.result()
        again.release()
    assert outcome.program is not None and not outcome.problem
    assert read_card(outcome.program) is not None
    assert len(outcome.taught.points) == 40
    assert training.outcome is outcome


def test_a_training_replaced_in_line_is_stopped_for_good() -> None:
    """The student went to another page and ran a heavy job there while it waited in line."""
    import threading

    from explorer.hosting.jobs import Job
    from explorer.hosting.scheduler import Scheduler
    from explorer.views.pictures import teach_job

    scheduler = Scheduler(workers=1, budget=1e9)
    hold, started = threading.Event(), threading.Event()

    def busy(_progress: object) -> None:
        started.set()
        hold.wait(10)

    ahead = scheduler.submit("classmate", Job(("busy", 2), busy, lane="long", cache=False))
    assert started.wait(10)
    training = teach_job(shape_set(2, 10, seed=3), TeachSettings(epochs=1))
    ticket = scheduler.submit("me", training.job)
    assert ticket.status().state == "queued"
    ticket.release()  # the page was left
    scheduler.submit("me", Job(("occlusion", 1), lambda _p: None, lane="long", cache=False))
    assert ticket.wait(10) and ticket.status().state == "cancelled"
    assert training.stopped and training.outcome is None and training.so_far is None
    hold.set()
    ahead.release()


def test_a_failed_export_is_one_line_and_keeps_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer.views import pictures as view

    class Untraceable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: torch.export cannot trace it
                return x.flatten(1)[:, :2]
            return -x.flatten(1)[:, :2]

    spec = build_picture_net("small", 2).spec
    with pytest.raises(OwnModelError, match=r"torch\.export could not trace the network"):
        program_bytes(Untraceable(), spec, good_card())

    def fail(*_: object) -> bytes:
        raise OwnModelError("torch.export could not trace the network (Boom: no)")

    monkeypatch.setattr(view, "program_bytes", fail)
    training = view.teach_job(shape_set(2, 10, seed=3), TeachSettings(epochs=1))
    outcome = training.job.run(lambda _done: None)
    assert outcome.program is None and outcome.taught.points
    assert outcome.problem == (
        "the .pt2 could not be made: torch.export could not trace the network (Boom: no)"
    )


def test_one_evaluation_of_held_out_scores_for_both_trainings() -> None:
    from explorer.models.loop import evaluate

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    labels = torch.tensor([0, 0, 2, 2])
    held = evaluate(logits, labels, 3)
    assert held.confusion.tolist() == [[1, 1, 0], [0, 0, 0], [0, 1, 1]]
    assert held.accuracy == 0.5
    probs = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    assert held.loss == pytest.approx(-np.mean(np.log(probs[[0, 1, 2, 3], [0, 0, 2, 2]])))
    # the most confident mistake first: row 1 (class 1 at p≈0.91), then row 3 (p≈0.45)
    assert [(i, t, p) for i, t, p, _ in held.mistakes] == [(1, 0, 1), (3, 2, 1)]
    assert held.mistakes[0][3] == pytest.approx(probs[1, 1])
