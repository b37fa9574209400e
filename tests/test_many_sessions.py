"""Many sessions on one server share one cached model: 16 threads × 50 captures, no cross-talk.

The references and the sessions run with the same torch threads, set here (the server's one
thread a pass) and restored after: ResNet-18's convolutions sum in another order with two
threads than with one, so a reference made under other settings differs in the last bits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import torch

from explorer.analysis.capture import CaptureResult
from explorer.models.zoo import load_model

THREADS = 16
CAPTURES = 50
TORCH_THREADS = 1
"""Intra-op threads of every capture here, the references' and the sessions'."""


@pytest.fixture
def torch_threads() -> Iterator[int]:
    """This thread's torch threads, and the default of threads started from now, pinned."""
    before = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        yield TORCH_THREADS
    finally:
        torch.set_num_threads(before)


def _same(a: CaptureResult, b: CaptureResult) -> bool:
    return a.names == b.names and all(
        torch.equal(x.tensor, y.tensor) for x, y in zip(a.layers, b.layers, strict=True)
    )


@pytest.mark.parametrize(
    ("name", "size"),
    [("lenet5", (1, 28, 28)), ("resnet18", (3, 48, 48))],
)
def test_threads_sharing_one_model_each_get_their_own_results(
    name: str, size: tuple[int, int, int], torch_threads: int
) -> None:
    loaded = load_model(name, "untrained" if name == "resnet18" else None, device="cpu")
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, *size, generator=generator) for _ in range(THREADS)]
    # references first, one per input, each made alone
    assert torch.get_num_threads() == torch_threads
    references = [loaded.capture(x) for x in inputs]
    assert not _same(references[0], references[1])  # the inputs really differ
    captures = CAPTURES if name == "lenet5" else 5  # ResNet-18: 80 captures on 2 cores
    mismatches: list[str] = []
    barrier = threading.Barrier(THREADS)

    def session(i: int) -> None:
        # A thread takes the default of when it first runs torch; say it, whatever ran before.
        torch.set_num_threads(torch_threads)
        barrier.wait()  # start together, so captures overlap
        for k in range(captures):
            result = loaded.capture(inputs[i])
            if not _same(result, references[i]):
                mismatches.append(f"thread {i}, capture {k}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    assert mismatches == []
    # no hook or trace state outlives the calls
    for module in loaded.model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
