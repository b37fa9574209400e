"""One geometry for captions, receptive fields and the lab, checked against torch itself."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from explorer.analysis.geometry import output_size, output_size_numbers, output_size_rule, pair

CASES = list(itertools.product([5, 7, 28], [1, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]))


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "dilation"), CASES)
def test_output_size_is_torchs(
    size: int, kernel: int, stride: int, padding: int, dilation: int
) -> None:
    x = torch.zeros(1, 1, size, size)
    w = torch.zeros(1, 1, kernel, kernel)
    if size + 2 * padding < dilation * (kernel - 1) + 1:
        with pytest.raises(ValueError, match="larger than the padded input"):
            output_size(size, kernel, stride, padding, dilation)
        return
    out = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape[-1]
    assert output_size(size, kernel, stride, padding, dilation) == out
    if padding <= kernel // 2:  # torch's pooling limit
        for ceil in (False, True):
            pooled = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil)
            assert output_size(size, kernel, stride, padding, dilation, ceil) == pooled.shape[-1]


@pytest.mark.parametrize(("before", "after"), [(0, 1), (2, 0), (1, 3)])
def test_uneven_padding_is_torchs(before: int, after: int) -> None:
    x = F.pad(torch.zeros(1, 1, 9, 9), (before, after, before, after))
    out = F.conv2d(x, torch.zeros(1, 1, 3, 3), stride=2).shape[-1]
    assert output_size(9, 3, 2, (before, after)) == out
    assert output_size_rule((before, after)) == "⌊(W − F + P₁ + P₂) / S⌋ + 1"
    assert output_size_numbers(9, 3, 2, (before, after)).endswith(f"= {out}")


def test_formula_text_has_the_numbers() -> None:
    assert output_size_rule(1) == "⌊(W − F + 2P) / S⌋ + 1"
    assert output_size_numbers(7, 3, 2, 1) == "⌊(7 − 3 + 2·1) / 2⌋ + 1 = 4"
    assert output_size_numbers(28, 3, 1, 2, dilation=2) == "⌊(28 − 5 + 2·2) / 1⌋ + 1 = 28"


def test_pair() -> None:
    assert pair(3) == (3, 3)
    assert pair((2, 5)) == (2, 5)
    assert pair((4,)) == (4, 4)
