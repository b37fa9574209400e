"""The Image page's layer-browser view-model: paging, orders, statistics, captions, units."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from explorer.analysis.capture import CaptureResult, LayerOutput, capture
from explorer.analysis.explain import receptive_field
from explorer.analysis.geometry import Box
from explorer.assets import ASSETS_DIR
from explorer.bench.library import image_layer_switch_work, streamlit_spec
from explorer.figures.channels import GRID_CURVE, UNIT_CURVE
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import LoadedModel, load_model
from explorer.views.image import (
    DEFAULT_OPACITY,
    UNIT_HINT,
    ChannelPaging,
    LayerStats,
    channel_page,
    channel_view,
    layer_choices,
    layer_page,
    layers_summary,
)

REPO = Path(__file__).resolve().parents[1]
CAPTION = re.compile(r"^Channels (\d+), (\d+), (\d+)… \((\d+) of (\d+), page (\d+) of (\d+)\)")


class Tiny(nn.Module):
    """conv 3×3 pad 1 → ReLU → max-pool 2 → conv 3×3 pad 1 → flatten → linear to 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        logits: torch.Tensor = self.fc(torch.flatten(self.conv2(x), 1))
        return logits


CLASSES = ("cat", "dog", "fish")


@pytest.fixture(scope="module")
def tiny() -> tuple[Tiny, CaptureResult]:
    torch.manual_seed(0)
    model = Tiny().eval()
    return model, capture(model, torch.randn(1, 8, 8))


def _one_layer(values: torch.Tensor, kind: str = "conv") -> CaptureResult:
    """A capture holding only ``values`` as layer ``maps``."""
    layer = LayerOutput("maps", kind, "Conv2d", None, values)
    return CaptureResult(torch.zeros(1, 1, 1), [layer], torch.zeros(3), torch.full((3,), 1 / 3))


def _click(index: int, curve: int) -> dict[str, object]:
    """The selection state ``st.plotly_chart`` holds after a click on point ``index``."""
    return {"selection": {"points": [{"curve_number": curve, "point_index": index}]}}


def test_layer_menu_lists_every_layer_in_execution_order(tiny: tuple[Tiny, CaptureResult]) -> None:
    _, result = tiny
    labels = layer_choices(result)
    assert list(labels) == ["conv1", "relu", "pool", "conv2", "flatten", "fc", "softmax"]
    assert labels["conv1"] == "0 · conv1 · conv · 4×8×8"
    assert labels["pool"] == "2 · pool · pool · 4×4×4"
    assert labels["softmax"] == "6 · softmax · softmax · 3"
    assert layers_summary(result) == (
        "7 layers in execution order: 2 conv, 1 relu, 1 pool, 1 flatten, 1 linear, 1 softmax."
    )


def test_stats_are_the_layers_values(tiny: tuple[Tiny, CaptureResult]) -> None:
    _, result = tiny
    for layer in result.layers:
        t = layer.tensor
        stats = LayerStats.of(layer)
        assert stats.shape == tuple(t.shape)
        assert stats.minimum == pytest.approx(t.min().item())
        assert stats.maximum == pytest.approx(t.max().item())
        assert stats.mean == pytest.approx(t.mean().item(), rel=1e-6, abs=1e-7)
        assert stats.zero_fraction == (t == 0).sum().item() / t.numel()
        texts = {m.label: m.value for m in stats.metrics}
        assert texts == {
            "shape": "×".join(str(s) for s in t.shape),
            "min": f"{t.min().item():.4g}",
            "max": f"{t.max().item():.4g}",
            "mean": f"{t.mean().item():.4g}",
            "zeros": f"{(t == 0).sum().item() / t.numel():.1%}",
        }
    assert LayerStats.of(result["relu"]).zero_fraction > 0  # a ReLU of noise: some did not fire
    assert [m.help is not None for m in LayerStats.of(result["relu"]).metrics] == [
        False,
        False,
        False,
        False,
        True,
    ]


def _page_size_by_rule(height: int, width: int) -> int:
    """The largest square number of whole maps within 64×112×112 values and 256 channels, ≥ 4."""
    budget = min(256, (64 * 112 * 112) // (height * width))
    side = 2
    while (side + 1) ** 2 <= budget:
        side += 1
    return side * side


@pytest.mark.parametrize(
    ("count", "height", "width", "per_page", "pages"),
    [
        (64, 112, 112, 64, 1),  # ResNet conv1: the whole layer on one page
        (256, 56, 56, 256, 1),
        (512, 7, 7, 256, 2),
        (600, 7, 7, 256, 3),  # a partial last page
        (2048, 7, 7, 256, 8),  # ResNet-50's layer4
        (1024, 100, 100, 64, 16),  # 80 maps fit; the largest square below is 64
        (3, 224, 224, 16, 1),  # 16 fit: a page larger than the layer
        (2, 1000, 1000, 4, 1),  # not even one map fits: still 2×2
    ],
)
def test_paging(count: int, height: int, width: int, per_page: int, pages: int) -> None:
    paging = ChannelPaging.of((count, height, width))
    assert paging == ChannelPaging(count, per_page, pages)
    assert paging.per_page == _page_size_by_rule(height, width)
    assert paging.pages * paging.per_page >= count > (paging.pages - 1) * paging.per_page
    for bad in (0, pages + 1):
        with pytest.raises(ValueError, match="page must be"):
            paging.positions(bad)


@pytest.mark.parametrize("count", [64, 256, 512, 600, 2048])
def test_pages_show_every_channel_once_in_order(count: int) -> None:
    shown = layer_page((), _one_layer(torch.randn(count, 7, 7)), "maps")
    assert shown.is_map and shown.paging is not None and shown.vector_figure is None
    per_page = shown.paging.per_page
    seen: list[int] = []
    for page in range(1, shown.paging.pages + 1):
        channels = channel_page(shown, "index", "layer", page)
        expected = list(range((page - 1) * per_page, min(page * per_page, count)))
        assert list(channels.channels) == expected
        assert list(channels.grid.channels) == expected  # the tiles are those channels
        assert channels.first_channel == expected[0]
        match = CAPTION.match(channels.caption)
        assert match is not None, channels.caption
        assert [int(g) for g in match.groups()] == [
            *expected[:3],
            len(expected),
            count,
            page,
            shown.paging.pages,
        ]
        seen += channels.channels
    assert seen == list(range(count))


def test_sort_orders_against_an_independent_sort() -> None:
    # Whole numbers: every mean is exact in float32, so numpy and torch agree to the bit, and
    # the many equal maxima check that ties keep channel order.
    generator = torch.Generator().manual_seed(3)
    values = torch.randint(-50, 50, (600, 7, 7), generator=generator).float()
    values[7] = values[3]  # an exact tie in both orders
    shown = layer_page((), _one_layer(values), "maps")
    means = values.flatten(1).mean(1).tolist()
    maxima = values.flatten(1).amax(1).tolist()
    by_key = {
        "index": list(range(600)),
        "mean": sorted(range(600), key=lambda c: (-means[c], c)),
        "max": sorted(range(600), key=lambda c: (-maxima[c], c)),
    }
    for sort, expected in by_key.items():
        first = channel_page(shown, sort, "layer", 1)
        np.testing.assert_array_equal(first.order, expected)
        assert list(first.channels) == expected[:256]
        last = channel_page(shown, sort, "map", 3)
        assert list(last.channels) == expected[512:]
        assert (last.sort, last.scale, last.page) == (sort, "map", 3)
    assert by_key["mean"].index(3) < by_key["mean"].index(7)
    # nothing chosen in the page's segmented controls: the defaults
    unchosen = channel_page(shown, None, None, 1)
    assert (unchosen.sort, unchosen.scale) == ("index", "layer")
    with pytest.raises(ValueError, match="sort"):
        channel_page(shown, "median", "layer", 1)


def test_flat_layers_get_categories_only_when_their_width_matches(
    tiny: tuple[Tiny, CaptureResult],
) -> None:
    _, result = tiny

    def labels(name: str, categories: tuple[str, ...]) -> object:
        shown = layer_page(categories, result, name)
        assert not shown.is_map and shown.maps is None and shown.paging is None
        assert shown.vector_figure is not None
        text = shown.vector_figure.data[0].text
        return None if text is None else [list(row) for row in text]

    assert labels("fc", CLASSES) == [list(CLASSES)]  # one row of 3 units, each its class
    assert labels("softmax", CLASSES) == [list(CLASSES)]
    assert labels("flatten", CLASSES) is None  # 96 units, 3 classes
    assert labels("fc", ("a", "b", "c", "d")) is None
    with pytest.raises(ValueError, match="not a map layer"):
        channel_page(layer_page(CLASSES, result, "fc"))
    with pytest.raises(KeyError):
        layer_page(CLASSES, result, "no.such.layer")


def test_channel_view_without_a_click(tiny: tuple[Tiny, CaptureResult]) -> None:
    model, result = tiny
    shown = layer_page(CLASSES, result, "conv2")
    background = np.zeros((8, 8), dtype=np.uint8)
    view = channel_view(model, shown, 5, background)
    t = result["conv2"].tensor[5]
    assert view.stats_text == (
        f"channel **5**: min {t.min().item():.4g} · max {t.max().item():.4g} · "
        f"mean {t.mean().item():.4g}"
    )
    assert view.unit is None and view.receptive_field is None and view.unit_text is None
    assert not view.figure.layout.shapes
    assert view.figure.data[1].opacity == DEFAULT_OPACITY
    assert "channel 5" in view.figure.layout.title.text
    np.testing.assert_array_equal(np.asarray(view.figure.data[1].z), t.numpy())
    assert UNIT_HINT.startswith("Click a unit")
    with pytest.raises(ValueError, match="channel must be"):
        channel_view(model, shown, 6, background)


def test_a_clicked_unit_gets_its_receptive_field(tiny: tuple[Tiny, CaptureResult]) -> None:
    model, result = tiny
    shown = layer_page(CLASSES, result, "conv2")
    background = np.zeros((8, 8, 3), dtype=np.uint8)
    # point 6 of the 4×4 map is row 1, col 2
    view = channel_view(model, shown, 2, background, 0.3, _click(6, UNIT_CURVE))
    assert view.unit == (1, 2)
    # by hand: conv2's 3 rows 0…2 of the pooled map are input rows 0…5 under the 2×2 pool,
    # and conv1 (3×3, pad 1) widens that by one each side: rows −1…6; columns 2…9 likewise
    assert view.receptive_field == Box(-1, 1, 7, 9)
    assert view.receptive_field == receptive_field(model, "conv2", 1, 2, (8, 8))
    value = result["conv2"].tensor[2, 1, 2].item()
    assert view.unit_text == (
        f"**Unit conv2[2, 1, 2] = {value:.6g}**  \n"
        "Its receptive field: 8×8 input pixels, rows 0–6, columns 1–7 (the orange box)."
    )
    (shape,) = view.figure.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (0.5, 8.5, -1.5, 6.5)
    assert view.figure.data[1].opacity == 0.3
    # a click on another trace (the background) is no unit
    assert channel_view(model, shown, 2, background, 0.3, _click(6, 0)).unit is None


def test_a_kept_unit_draws_as_its_click_does(tiny: tuple[Tiny, CaptureResult]) -> None:
    """A unit the page keeps (or a link's) gives the very view a click on it gives."""
    model, result = tiny
    shown = layer_page(CLASSES, result, "conv2")
    background = np.zeros((8, 8, 3), dtype=np.uint8)
    assert shown.clicked_unit(_click(6, UNIT_CURVE)) == (1, 2)  # 4×4 map: 6 = 1 · 4 + 2
    assert shown.clicked_unit(_click(16, UNIT_CURVE)) is None  # past the 16 units
    assert layer_page(CLASSES, result, "fc").clicked_unit(_click(0, UNIT_CURVE)) is None
    clicked = channel_view(model, shown, 2, background, 0.3, _click(6, UNIT_CURVE))
    kept = channel_view(model, shown, 2, background, 0.3, unit=(1, 2))
    assert (kept.unit, kept.receptive_field, kept.unit_text) == (
        clicked.unit,
        clicked.receptive_field,
        clicked.unit_text,
    )
    assert kept.figure.layout.shapes == clicked.figure.layout.shapes
    # the kept unit wins over a selection the chart still holds
    held = _click(0, UNIT_CURVE)
    assert channel_view(model, shown, 2, background, 0.3, held, (3, 3)).unit == (3, 3)
    for outside in ((4, 0), (0, 4), (-1, 0)):
        with pytest.raises(ValueError, match="outside the 4×4 map"):
            channel_view(model, shown, 2, background, unit=outside)


def test_a_grid_click_picks_the_tiles_channel() -> None:
    values = torch.arange(300 * 7 * 7, dtype=torch.float32).reshape(300, 7, 7)
    shown = layer_page((), _one_layer(values), "maps")
    channels = channel_page(shown, "mean", "layer", 2)  # largest mean first: 299 … 0
    assert channels.channels[:3] == (43, 42, 41)
    assert channels.clicked_channel(_click(2, GRID_CURVE)) == 41
    assert channels.clicked_channel(None) is None


@pytest.fixture(scope="module")
def resnet() -> tuple[LoadedModel, PreparedInput, CaptureResult]:
    loaded = load_model("resnet18", "untrained")
    prepared = loaded.prepare(sorted((ASSETS_DIR / "photos").glob("*.jpg"))[0])
    return loaded, prepared, loaded.capture(prepared)


@pytest.mark.parametrize("name", ["conv1", "layer2.0.conv1", "layer4.1.relu#2", "fc"])
def test_bench_times_the_view_model(
    resnet: tuple[LoadedModel, PreparedInput, CaptureResult], name: str
) -> None:
    loaded, prepared, result = resnet
    shown = layer_page(loaded.categories, result, name)
    if shown.vector_figure is not None:
        expected = [shown.vector_figure]
    else:
        channels = channel_page(shown, "index", "layer", 1)
        large = channel_view(loaded.model, shown, channels.first_channel, prepared.display, 0.65)
        expected = [channels.grid.figure, large.figure]
    specs = image_layer_switch_work(loaded, result, prepared, name)
    assert [json.loads(s) for s in specs] == [json.loads(streamlit_spec(f)) for f in expected]


def test_the_page_draws_the_view_models_figures(
    resnet: tuple[LoadedModel, PreparedInput, CaptureResult],
) -> None:
    loaded, prepared, result = resnet
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=180).run()
    assert not at.exception
    charts = {str(c.proto.id): json.loads(c.proto.spec) for c in at.get("plotly_chart")}

    def drawn(key: str) -> object:
        (spec,) = [spec for element_id, spec in charts.items() if element_id.endswith(f"-{key}")]
        return spec

    grid, large = image_layer_switch_work(loaded, result, prepared, "conv1")
    assert drawn("image_grid_conv1") == json.loads(grid)
    assert drawn("image_channel_fig_conv1_0") == json.loads(large)
