"""The architecture table: parameters, multiply-adds, hyper-parameters and receptive fields."""

from __future__ import annotations

import csv
import io

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from explorer.analysis.architecture import (
    ArchitectureRow,
    architecture_csv,
    architecture_table,
    architecture_totals,
    human_count,
)
from explorer.analysis.capture import CaptureResult
from explorer.models.zoo import ZOO, LoadedModel, load_model


def _table(name: str) -> tuple[LoadedModel, torch.Tensor, CaptureResult, list[ArchitectureRow]]:
    loaded = load_model(name, "untrained", device="cpu")
    torch.manual_seed(0)
    x = torch.rand(1, *loaded.spec.input_size)
    result = loaded.capture(x)
    rows = architecture_table(loaded.model, result, loaded.spec.input_size[1:])
    return loaded, x, result, rows


@pytest.mark.parametrize("name", list(ZOO))
def test_parameters_and_mult_adds_match_independent_counts(name: str) -> None:
    loaded, x, result, rows = _table(name)
    totals = architecture_totals(loaded.model, rows)
    assert totals.parameters == sum(p.numel() for p in loaded.model.parameters())
    assert totals.unlisted_parameters == 0
    assert [row.name for row in rows] == result.names
    # PyTorch's own FLOP counter counts 2 FLOPs per multiply-add of every conv and matmul.
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        loaded.model(x)
    assert 2 * totals.mult_adds == counter.get_total_flops()


def test_resnet_rows_read_like_the_paper() -> None:
    _, _, _, rows = _table("resnet18")
    by_name = {row.name: row for row in rows}
    conv1 = by_name["conv1"]
    assert (conv1.kernel, conv1.stride, conv1.padding) == ("7×7", "2×2", "3×3")
    assert conv1.output_shape == "64 × 112 × 112"
    assert conv1.parameters == 64 * 3 * 7 * 7  # no bias
    assert conv1.mult_adds == 64 * 112 * 112 * 3 * 7 * 7
    assert conv1.receptive_field == "7×7"
    pool = by_name["maxpool"]
    assert (pool.kernel, pool.stride, pool.padding, pool.parameters) == ("3×3", "2×2", "1×1", 0)
    # conv1 (7, jump 1 → 2) then maxpool 3×3/2: 7 + (3 - 1) × 2 = 11
    assert pool.receptive_field == "11×11"
    # a reused ReLU module is listed twice but its (zero) parameters are counted once
    assert by_name["layer1.0.relu#2"].parameters == 0
    assert by_name["fc"].parameters == 512 * 1000 + 1000
    assert by_name["fc"].receptive_field == "whole input"
    assert by_name["avgpool"].kernel == "adaptive → 1×1"


def test_lenet_receptive_fields_follow_the_recurrence() -> None:
    _, _, _, rows = _table("lenet5")
    by_name = {row.name: row for row in rows}
    # r_out = r_in + (k - 1) × jump_in, jump_out = jump_in × stride
    assert by_name["conv1"].receptive_field == "5×5"  # 1 + 4·1
    assert by_name["pool1"].receptive_field == "6×6"  # 5 + 1·1, jump 2
    assert by_name["conv2"].receptive_field == "14×14"  # 6 + 4·2
    assert by_name["pool2"].receptive_field == "16×16"  # 14 + 1·2


def test_depthwise_conv_is_labelled_and_costed_per_group() -> None:
    loaded, _, _, rows = _table("mobilenet_v3_small")
    grouped = [row for row in rows if "groups" in row.kernel]
    assert grouped, "MobileNet has depthwise convs"
    row = grouped[0]
    conv = loaded.model.get_submodule(next(r.name for r in rows if r is row))
    assert isinstance(conv, torch.nn.Conv2d)
    kh, kw = conv.kernel_size
    channels, h, w = (int(s) for s in row.output_shape.split(" × "))
    assert row.mult_adds == channels * h * w * (conv.in_channels // conv.groups) * kh * kw


def test_csv_round_trips() -> None:
    _, _, _, rows = _table("lenet5")
    parsed = list(csv.DictReader(io.StringIO(architecture_csv(rows))))
    assert len(parsed) == len(rows)
    assert parsed[0]["name"] == "conv1" and int(parsed[0]["parameters"]) == 6 * 25 + 6
    assert sum(int(r["mult_adds"]) for r in parsed) == sum(r.mult_adds for r in rows)


def test_human_count() -> None:
    assert human_count(11_689_512) == "11.7 M"
    assert human_count(1_814_073_344) == "1.81 G"
    assert human_count(950) == "950"
