"""Attribution maps against formulas written out with plain autograd and brute-force loops.

Every model here has seeded random weights; the shared model must come out untouched (no
hooks, no ``requires_grad``) whatever ran on it, and threads attributing at once must each get
the answer they get alone.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from explorer.analysis.attribution import (
    METHODS,
    SMOOTHGRAD_BATCH,
    AttributionError,
    Settings,
    attribute,
    cam_layers,
    default_cam_layer,
    deletion_check,
    occlusion_windows,
    private_copy,
)
from explorer.analysis.capture import capture
from explorer.cli import main
from explorer.models.nets import LeNet5
from explorer.models.zoo import load_model

REPO = Path(__file__).resolve().parents[1]


class TinyNet(nn.Module):
    """Two convs (one ReLU in place, as torchvision writes them), a max-pool, a linear head."""

    def __init__(self, channels: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 5, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(5, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(6 * 6 * 6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(torch.flatten(self.features(x), 1))
        return logits


def shared(model: nn.Module) -> nn.Module:
    """A model as the zoo shares it: eval mode, no parameter requires grad."""
    return model.eval().requires_grad_(False)


@pytest.fixture
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return shared(TinyNet())


@pytest.fixture
def image() -> torch.Tensor:
    return torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))


def untouched(model: nn.Module) -> bool:
    hooks = (
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        for module in model.modules()
    )
    return not any(hooks) and not any(p.requires_grad for p in model.parameters())


def test_private_copy_shares_tensors_but_not_hooks_or_inplace(tiny: nn.Module) -> None:
    twin = private_copy(tiny)
    for mine, theirs in zip(twin.parameters(), tiny.parameters(), strict=True):
        assert mine is theirs
    twin.get_submodule("features.0").register_forward_hook(lambda *_: None)
    assert not tiny.get_submodule("features.0")._forward_hooks
    relus = (twin.get_submodule("features.1"), tiny.get_submodule("features.1"))
    assert [getattr(relu, "inplace", None) for relu in relus] == [False, True]


def test_gradcam_is_the_formula_with_plain_autograd(tiny: nn.Module, image: torch.Tensor) -> None:
    target = 2
    found = attribute(tiny, image, Settings("gradcam", target, layer="features.2"))
    # Grad-CAM written out: A = conv2's output, α_k = mean over positions of ∂y/∂A_k.
    model = private_copy(tiny)
    conv_out: dict[str, torch.Tensor] = {}
    model.get_submodule("features.2").register_forward_hook(
        lambda _m, _i, out: conv_out.update(A=out)
    )
    with torch.enable_grad():
        score = model(image.clone().requires_grad_(True))[0, target]
        (grad,) = torch.autograd.grad(score, conv_out["A"])
    activation = conv_out["A"].detach()[0]
    alpha = grad[0].mean(dim=(1, 2))
    cam = F.relu((alpha[:, None, None] * activation).sum(0))
    expected = bilinear(cam, (12, 12))
    np.testing.assert_allclose(found.values, expected, rtol=1e-5, atol=1e-7)
    assert found.settings.layer == "features.2"
    assert untouched(tiny)


def test_layercam_is_the_formula_with_plain_autograd(tiny: nn.Module, image: torch.Tensor) -> None:
    found = attribute(tiny, image, Settings("layercam", 1, layer="features.0"))
    model = private_copy(tiny)
    seen: dict[str, torch.Tensor] = {}
    model.get_submodule("features.0").register_forward_hook(lambda _m, _i, out: seen.update(A=out))
    with torch.enable_grad():
        score = model(image.clone().requires_grad_(True))[0, 1]
        (grad,) = torch.autograd.grad(score, seen["A"])
    cam = F.relu((F.relu(grad[0]) * seen["A"].detach()[0]).sum(0))
    np.testing.assert_allclose(found.values, cam.numpy(), rtol=1e-5, atol=1e-7)


def test_saliency_is_the_input_gradient(tiny: nn.Module, image: torch.Tensor) -> None:
    found = attribute(tiny, image, Settings("saliency", 3))
    x = image.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(private_copy(tiny)(x)[0, 3], x)
    np.testing.assert_allclose(found.values, grad[0].abs().amax(0).numpy(), rtol=1e-6)
    assert found.values.shape == (12, 12) and found.values.dtype == np.float32


@pytest.mark.parametrize("baseline", ["zero", "black"])
def test_integrated_gradients_add_up_to_the_score_difference(
    tiny: nn.Module, image: torch.Tensor, baseline: str
) -> None:
    black = torch.full((1, 3, 1, 1), -1.5)
    found = attribute(
        tiny, image, Settings("integrated_gradients", 2, steps=512, baseline=baseline), black=black
    )
    start = torch.zeros_like(image) if baseline == "zero" else black.expand_as(image)
    with torch.no_grad():
        difference = float(tiny(image)[0, 2] - tiny(start)[0, 2])
    assert abs(difference) > 1e-2  # the test means something
    # A ReLU net's path integral is piecewise smooth: 512 steps bring the sum within 1 %.
    assert float(found.values.sum()) == pytest.approx(difference, rel=1e-2)


def test_occlusion_is_a_brute_force_loop_over_windows(tiny: nn.Module, image: torch.Tensor) -> None:
    window, stride, target = 4, 2, 1
    found = attribute(tiny, image, Settings("occlusion", target, window=window, stride=stride))
    with torch.no_grad():
        before = torch.softmax(tiny(image), 1)[0, target]
        total = torch.zeros(12, 12, dtype=torch.float64)
        count = torch.zeros(12, 12, dtype=torch.float64)
        for top in range(0, 12 - window + 1, stride):
            for left in range(0, 12 - window + 1, stride):
                hidden = image.clone()
                hidden[..., top : top + window, left : left + window] = 0.0
                drop = before - torch.softmax(tiny(hidden), 1)[0, target]
                total[top : top + window, left : left + window] += float(drop)
                count[top : top + window, left : left + window] += 1
    expected = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    np.testing.assert_allclose(found.values, expected.numpy(), atol=1e-6)
    assert occlusion_windows((12, 12), window, stride) == 25


def bilinear(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A ``(h, w)`` map resized to ``size``: bilinear, corners not aligned (as the pages show)."""
    grown = F.interpolate(cam[None, None].float(), size=size, mode="bilinear", align_corners=False)
    return grown[0, 0].numpy()


def layer_output_and_gradient(
    model: nn.Module, image: torch.Tensor, layer: str, target: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``layer``'s output ``A`` and ``∂y_target/∂A`` for one input, by plain autograd."""
    twin = private_copy(model)
    seen: dict[str, torch.Tensor] = {}
    twin.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.update(A=out))
    with torch.enable_grad():
        score = twin(image.clone().requires_grad_(True))[0, target]
        (grad,) = torch.autograd.grad(score, seen["A"])
    return seen["A"].detach()[0], grad[0]


def test_gradcampp_is_the_papers_formula(tiny: nn.Module, image: torch.Tensor) -> None:
    target = 2
    # "features" ends with the max-pool: a 6×6 map, upsampled to the 12×12 input.
    found = attribute(tiny, image, Settings("gradcampp", target, layer="features"))
    activation, grad = layer_output_and_gradient(tiny, image, "features", target)
    # Chattopadhay et al. (2018), eq. 19 with exp(score): α = g² / (2g² + Σ_ab A_ab g³),
    # w_k = Σ_ij α_ij ReLU(g_ij), L = ReLU(Σ_k w_k A_k); the denominator has torchcam's 1e-8
    # added (its guard against 0/0, not negligible here: g² is about 1e-6).
    g = grad.double()
    a = activation.double()
    denominator = 2 * g**2 + (a * g**3).sum(dim=(1, 2), keepdim=True) + 1e-8
    alpha = torch.where(g != 0, g**2 / denominator, torch.zeros_like(g))
    weights = (alpha * F.relu(g)).sum(dim=(1, 2))
    cam = F.relu((weights[:, None, None] * a).sum(0))
    expected = bilinear(cam, (12, 12))
    assert float(cam.max()) > 0  # the test means something
    np.testing.assert_allclose(found.values, expected, rtol=1e-4, atol=1e-6)
    # Grad-CAM's mean gradient would weigh the channels otherwise.
    grad_cam = bilinear(F.relu((g.mean(dim=(1, 2))[:, None, None] * a).sum(0)), (12, 12))
    assert not np.allclose(found.values / found.values.max(), grad_cam / grad_cam.max())


def test_scorecam_weights_channels_by_the_masked_inputs_scores(
    tiny: nn.Module, image: torch.Tensor
) -> None:
    target = 1
    found = attribute(tiny, image, Settings("scorecam", target, layer="features"))
    activation, _ = layer_output_and_gradient(tiny, image, "features", target)
    # Each channel scaled to 0…1 (at the layer's resolution, as torchcam does), upsampled
    # bilinearly to a mask over the input; its weight is the softmax over channels of the class
    # score of the masked input.
    low = activation.amin(dim=(1, 2), keepdim=True)
    scaled = (activation - low) / ((activation - low).amax(dim=(1, 2), keepdim=True) + 1e-8)
    masks = F.interpolate(scaled[:, None], size=(12, 12), mode="bilinear", align_corners=False)
    with torch.no_grad():
        scores = torch.stack([tiny(image * mask)[0, target] for mask in masks])
    weights = torch.softmax(scores.double(), dim=0)
    cam = F.relu((weights[:, None, None] * activation.double()).sum(0))
    assert float(cam.max()) > 0
    np.testing.assert_allclose(found.values, bilinear(cam, (12, 12)), rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_the_mean_input_gradient_over_seeded_noisy_copies(
    tiny: nn.Module, image: torch.Tensor
) -> None:
    target, samples, noise = 0, 12, 0.1
    torch.manual_seed(3)
    found = attribute(tiny, image, Settings("smoothgrad", target, samples=samples, noise=noise))
    # The same noise drawn again: N(0, σ²), σ a fraction of the input's range, drawn
    # SMOOTHGRAD_BATCH copies at a time from the global generator (Captum's NoiseTunnel).
    sigma = noise * float(image.max() - image.min())
    torch.manual_seed(3)
    sizes = [SMOOTHGRAD_BATCH] * (samples // SMOOTHGRAD_BATCH) + [samples % SMOOTHGRAD_BATCH]
    draws = [torch.normal(0.0, torch.full((n, 3, 12, 12), sigma)) for n in sizes if n]
    noisy = image + torch.cat(draws)
    model = private_copy(tiny)
    total = torch.zeros(3, 12, 12, dtype=torch.float64)
    for copy in noisy:
        x = copy[None].clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(model(x)[0, target], x)
        total += grad[0].abs().double()
    expected = (total / samples).amax(dim=0).numpy()
    np.testing.assert_allclose(found.values, expected, rtol=1e-5, atol=1e-7)
    plain = attribute(tiny, image, Settings("saliency", target))
    assert not np.allclose(found.values, plain.values)  # the noise changed the answer


def test_guided_backprop_is_the_backward_pass_with_relus_passing_positive_signals(
    tiny: nn.Module, image: torch.Tensor
) -> None:
    target = 0
    found = attribute(tiny, image, Settings("guided_backprop", target))
    conv1, conv2 = tiny.get_submodule("features.0"), tiny.get_submodule("features.2")
    head = tiny.get_submodule("head")
    assert isinstance(conv1, nn.Conv2d) and isinstance(conv2, nn.Conv2d)
    assert isinstance(head, nn.Linear)
    with torch.no_grad():  # the forward pass, every pre-activation kept
        z1 = F.conv2d(image, conv1.weight, conv1.bias, padding=1)
        z2 = F.conv2d(F.relu(z1), conv2.weight, conv2.bias, padding=1)
        _, where = F.max_pool2d(F.relu(z2), 2, return_indices=True)
        # The backward pass by hand: the head's row, routed to each pool window's maximum,
        # then at each ReLU the input's sign mask and the gradient's own (clamped at 0).
        grad_pool = head.weight[target].view(1, 6, 6, 6)
        grad_a2 = F.max_unpool2d(grad_pool, where, (2, 2), output_size=z2.shape[-2:])
        grad_z2 = (z2 > 0) * grad_a2.clamp(min=0)
        grad_a1 = F.conv_transpose2d(grad_z2, conv2.weight, padding=1)
        grad_z1 = (z1 > 0) * grad_a1.clamp(min=0)
        grad_x = F.conv_transpose2d(grad_z1, conv1.weight, padding=1)
    expected = grad_x[0].abs().amax(dim=0).numpy()
    assert float(grad_x.abs().max()) > 0
    np.testing.assert_allclose(found.values, expected, rtol=1e-5, atol=1e-7)
    plain = attribute(tiny, image, Settings("saliency", target))
    assert not np.allclose(found.values, plain.values)  # the clamping changed the answer


def test_scorecam_and_gradcampp_run_on_a_digit_net() -> None:
    torch.manual_seed(0)
    lenet = shared(LeNet5())
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ticks: list[float] = []
    score = attribute(lenet, x, Settings("scorecam", 7), progress=ticks.append)
    plus = attribute(lenet, x, Settings("gradcampp", 7))
    assert score.settings.layer == plus.settings.layer == default_cam_layer(lenet, (1, 28, 28))
    assert score.values.shape == plus.values.shape == (28, 28)
    assert ticks and ticks[-1] == 1.0 and ticks == sorted(ticks)
    assert untouched(lenet)


def test_deletion_check_hides_the_top_of_the_map(tiny: nn.Module, image: torch.Tensor) -> None:
    found = attribute(tiny, image, Settings("saliency", 2))
    before, after = deletion_check(tiny, image, found, fraction=0.1)
    order = np.argsort(found.values.ravel())[::-1][: round(0.1 * 144)]
    hidden = image.clone()
    rows, cols = np.unravel_index(order, (12, 12))
    hidden[..., torch.from_numpy(rows), torch.from_numpy(cols)] = 0.0
    with torch.no_grad():
        assert before == pytest.approx(float(torch.softmax(tiny(image), 1)[0, 2]))
        assert after == pytest.approx(float(torch.softmax(tiny(hidden), 1)[0, 2]))


def test_settings_keep_only_what_the_method_uses() -> None:
    a = Settings("gradcam", 1, layer="x", steps=5, window=3).used()
    assert a == Settings("gradcam", 1, layer="x")
    assert Settings("occlusion", 0, layer="x", window=8, stride=4).used() == Settings(
        "occlusion", 0, window=8, stride=4
    )
    assert set(METHODS) == {
        "gradcam",
        "gradcampp",
        "layercam",
        "scorecam",
        "saliency",
        "smoothgrad",
        "integrated_gradients",
        "guided_backprop",
        "occlusion",
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings("nope", 0), "unknown method"),
        (Settings("saliency", 9), "out of range"),
        (Settings("gradcam", 0, layer="features.9"), "no layer named"),
        (Settings("occlusion", 0, window=40), "occlusion window"),
        (Settings("integrated_gradients", 0, baseline="grey"), "unknown baseline"),
    ],
)
def test_bad_settings_get_a_clear_message(
    tiny: nn.Module, image: torch.Tensor, settings: Settings, message: str
) -> None:
    with pytest.raises(AttributionError, match=message):
        attribute(tiny, image, settings)
    assert untouched(tiny)


def test_cam_layers_list_convs_and_blocks(tiny: nn.Module) -> None:
    assert cam_layers(tiny) == ["features", "features.0", "features.2"]


def test_threads_attributing_at_once_each_get_their_own_answer(tiny: nn.Module) -> None:
    inputs = [
        torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(s)) for s in range(6)
    ]
    methods = ["gradcam", "saliency", "gradcam", "occlusion", "saliency", "gradcam"]
    jobs = [
        (inputs[i], Settings(method, i % 4, layer="features.2", window=4, stride=2).used())
        for i, method in enumerate(methods)
    ]
    alone = [attribute(tiny, x, s).values for x, s in jobs]
    captured_alone = capture(tiny, inputs[0])["features.2"].numpy()
    results: dict[int, np.ndarray] = {}
    captures: list[np.ndarray] = []
    barrier = threading.Barrier(len(jobs) + 1)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            results[i] = attribute(tiny, *jobs[i]).values

    def watch() -> None:
        barrier.wait()
        for _ in range(10):
            captures.append(capture(tiny, inputs[0])["features.2"].numpy())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    threads.append(threading.Thread(target=watch))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Float sums may be ordered differently when threads share the cores (a last-bit change);
    # another session's hook would change the answer itself.
    for i, expected in enumerate(alone):
        np.testing.assert_allclose(results[i], expected, rtol=1e-5, atol=1e-7)
    for seen in captures:  # no attribution hook ever reached a capture
        np.testing.assert_allclose(seen, captured_alone, rtol=1e-5, atol=1e-7)
    assert untouched(tiny)


def test_cli_writes_the_map_the_overlay_and_a_summary(tmp_path: Path) -> None:
    digit = REPO / "assets" / "digits" / "7_1.png"
    out = tmp_path / "why"
    assert main(["attribute", str(digit), "--model", "lenet5", "--method", "saliency",
                 "--target", "2", "--out", str(out)]) == 0  # fmt: skip
    values = np.load(out / "attribution.npy")
    loaded = load_model("lenet5")
    x = loaded.prepare(digit).tensor.clone().requires_grad_(True)
    with torch.enable_grad():  # saliency: |∂y₂/∂x|, by plain autograd on a private copy
        (grad,) = torch.autograd.grad(private_copy(loaded.model)(x)[0, 2], x)
    np.testing.assert_allclose(values, grad[0].abs().amax(0).numpy(), rtol=1e-6)
    assert values.dtype == np.float32 and values.shape == (28, 28)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "saliency" and summary["layer"] is None
    assert summary["target"] == {"index": 2, "label": "2"}
    assert summary["model"] == "lenet5" and summary["weights"] == loaded.weights
    assert summary["min"] == pytest.approx(float(values.min()))
    assert summary["max"] == pytest.approx(float(values.max()))
    with Image.open(out / "overlay.png") as overlay:
        assert overlay.size[0] > 200 and overlay.size[1] > 200


def test_cli_defaults_to_the_top_class_and_the_last_conv_block(tmp_path: Path) -> None:
    digit = REPO / "assets" / "digits" / "3_0.png"
    assert main(["attribute", str(digit), "--model", "lenet5", "--method", "gradcam",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["target"]["label"] == "3"  # the shipped LeNet reads it right
    assert summary["layer"] == "pool2"


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--layer", "nope"], "no layer named 'nope'"), (["--target", "10"], "out of range")],
)
def test_cli_bad_settings_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    digit = REPO / "assets" / "digits" / "3_0.png"
    argv = ["attribute", str(digit), "--model", "lenet5", "--method", "gradcam"]
    assert main([*argv, *extra, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.parametrize("name", ["lenet5.pt2", "lenet5.onnx"])
def test_a_users_graph_for_a_batch_of_one_gets_every_method(name: str) -> None:
    from explorer.inputs.spec import InputSpec
    from explorer.models.own import load_program

    loaded = load_program(
        (REPO / "assets" / "models" / "own" / name).read_bytes(),
        name,
        InputSpec(1, 28, 28, digit=True),
    )
    x = loaded.prepare(REPO / "assets" / "digits" / "3_0.png").tensor
    # both formats come back from the sandbox with conv, linear, pool and ReLU modules
    methods = ["saliency", "smoothgrad", "integrated_gradients", "occlusion"]
    methods += ["gradcam", "scorecam", "guided_backprop"]
    for method in methods:
        found = attribute(
            loaded.model, x, Settings(method, 3, samples=4, steps=8, window=7, stride=7)
        )
        assert found.values.shape == (28, 28) and np.isfinite(found.values).all(), method
