"""Command line: ``python -m explorer COMMAND``.

Commands: models, predict, inspect, attribute, visualize, compare, export, train, bench,
loadtest, cluster, fetch-weights, index-images.

Every failure prints one line, ``error: …``, on stderr and exits non-zero; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch

from explorer.analysis.attribution import KNOBS, METHODS, AttributionError
from explorer.analysis.capture import CaptureError
from explorer.analysis.experiment import ExperimentError
from explorer.analysis.visualize import VisualizeError
from explorer.inputs.preprocess import ImageError
from explorer.models.cards import CardError
from explorer.models.device import DEVICE_CHOICES, DeviceError
from explorer.models.own import OwnModelError
from explorer.models.weights import WeightsError
from explorer.models.zoo import (
    ZOO,
    LoadedModel,
    ModelError,
    download_blocked,
    download_pretrained,
    get_spec,
    load_model,
    pretrained_download,
    zoo_table,
)

ATTRIBUTE_OPTIONS = ("steps", "baseline", "samples", "window", "stride")
"""The method settings ``attribute`` takes as options (``--steps`` …; see
:data:`~explorer.analysis.attribution.KNOBS`)."""
_Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What :func:`build_parser`'s subcommands are added to (one ``_add_*_command`` each)."""

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ModelError,
    ImageError,
    WeightsError,
    DeviceError,
    CaptureError,
    AttributionError,
    OwnModelError,
    CardError,
    VisualizeError,
    ExperimentError,
    OSError,
    KeyError,
)


def _error(message: str) -> None:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)


def _notice(loaded: LoadedModel) -> None:
    if loaded.notice:
        print(f"notice: {loaded.notice}", file=sys.stderr)


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=list(ZOO), help="zoo model name")
    which.add_argument(
        "--model-file",
        metavar="PATH",
        help="your own model: a torch.export program (.pt2) or an ONNX file (.onnx)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="'pretrained' (default), 'untrained', or a .pth/.pt state dict for this model",
    )
    parser.add_argument(
        "--device",
        default=None,
        help=f"one of {', '.join(DEVICE_CHOICES)} or cuda:N (default: $EXPLORER_DEVICE or auto)",
    )
    own = parser.add_argument_group("your own model (with --model-file)")
    own.add_argument("--labels", metavar="FILE", help="class names, one per line")
    own.add_argument(
        "--input-shape", metavar="C,H,W", help="the input's shape (default: as the file says)"
    )
    own.add_argument("--mean", type=float, nargs="+", help="per-channel mean (0…1 scale)")
    own.add_argument("--std", type=float, nargs="+", help="per-channel std")
    own.add_argument(
        "--digit", action="store_true", help="1 channel: lay the input out like MNIST digits"
    )


def _load(args: argparse.Namespace) -> LoadedModel:
    """The zoo model, or the user's file, that the arguments name."""
    if args.model_file is None:
        return load_model(args.model, args.weights, args.device)
    from explorer.inputs.spec import InputSpec
    from explorer.models.own import load_program

    if args.weights is not None:
        raise OwnModelError("--weights goes with --model: a model file carries its weights")
    path = Path(args.model_file)
    spec = None
    if args.input_shape or args.mean or args.std or args.digit:
        shape = _input_shape(args.input_shape, path)
        mean = tuple(args.mean) if args.mean else None  # one without the other: check_input
        std = tuple(args.std) if args.std else None  # (in load_program) says so
        spec = InputSpec(*shape, mean=mean, std=std, digit=args.digit)
    labels = Path(args.labels).read_text(encoding="utf-8") if args.labels else None
    return load_program(path.read_bytes(), path.name, spec, labels, args.device)


def _input_shape(text: str | None, path: Path) -> tuple[int, int, int]:
    from explorer.models.own import read_untrusted

    if text is None:
        found = read_untrusted(path.read_bytes(), path.name).input_shape
        if found is None:
            raise OwnModelError("the file does not say its input's shape: give --input-shape")
        return found
    try:
        channels, height, width = (int(part) for part in text.split(","))
    except ValueError:
        raise OwnModelError(f"--input-shape takes C,H,W (e.g. 3,224,224), not {text!r}") from None
    return channels, height, width


def _top(loaded: LoadedModel, probs: Any, k: int) -> list[dict[str, Any]]:
    values = probs.detach().float().cpu()
    k = max(1, min(k, values.numel()))
    order = values.argsort(descending=True)[:k]
    return [
        {"label": loaded.categories[int(i)], "index": int(i), "prob": round(float(values[i]), 6)}
        for i in order
    ]


def cmd_models(args: argparse.Namespace) -> int:
    """``python -m explorer models``: the model zoo as a table, or as JSON."""
    rows = zoo_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        size = "×".join(map(str, row["input_size"]))
        print(f"{row['name']:<{width}}  {row['title']:<20} {size:<11} {row['weights']}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``python -m explorer predict``: top-k classes of each image."""
    loaded = _load(args)
    _notice(loaded)
    failed = 0
    for file in args.images:
        try:
            prepared = loaded.prepare(Path(file))
            result = loaded.capture(prepared, layers=[])
        except (ImageError, OSError) as exc:
            failed += 1
            if args.json:
                print(
                    json.dumps({"file": file, "model": loaded.name, "error": str(exc)}), flush=True
                )
            _error(f"{file}: {exc}")
            continue
        top = _top(loaded, result.probs, args.top)
        if args.json:
            record = {
                "file": file,
                "model": loaded.name,
                "device": str(loaded.device),
                "weights": loaded.weights,
                "top": top,
            }
            print(json.dumps(record), flush=True)
        else:
            best = ", ".join(f"{t['label']} {t['prob']:.1%}" for t in top)
            print(f"{file}: {best}  [{loaded.name}, {loaded.weights}, {loaded.device}]", flush=True)
    return 1 if failed else 0


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("#", "_call"))


def cmd_inspect(args: argparse.Namespace) -> int:
    """``python -m explorer inspect``: every layer of one image, written to a folder."""
    from explorer.figures.render import render_filters_png, render_layer_png, render_softmax_png

    loaded = _load(args)
    _notice(loaded)
    prepared = loaded.prepare(Path(args.image))
    result = loaded.capture(prepared)
    out = Path(args.out)
    (out / "layers").mkdir(parents=True, exist_ok=True)
    (out / "filters").mkdir(parents=True, exist_ok=True)
    top = _top(loaded, result.probs, args.top)
    layers = []
    for index, layer in enumerate(result.layers):
        stats = layer.stats()
        layers.append(
            {
                "name": layer.name,
                "kind": layer.kind,
                "op": layer.op,
                "shape": list(layer.shape),
                "min": stats["min"],
                "max": stats["max"],
                "mean": stats["mean"],
            }
        )
        if layer.kind != "softmax":
            render_layer_png(layer, out / "layers" / f"{index:03d}_{_file_stem(layer.name)}.png")
        if layer.kind == "conv" and layer.module and "#" not in layer.name:
            weight = loaded.model.get_submodule(layer.module).weight
            assert isinstance(weight, torch.Tensor)
            render_filters_png(
                layer.name, weight, out / "filters" / f"{_file_stem(layer.name)}.png"
            )
    render_softmax_png(
        [t["label"] for t in top],
        [t["prob"] for t in top],
        out / "softmax.png",
        f"{loaded.spec.title} ({loaded.weights_label}) · top {len(top)}",
    )
    (out / "activations.npz").write_bytes(result.to_npz())
    summary = {
        "model": loaded.name,
        "weights": loaded.weights,
        "device": str(loaded.device),
        "image": str(args.image),
        "input_shape": list(result.input.shape),
        "layers": layers,
        "top": top,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {len(layers)} layers of {loaded.name} to {out}/ (summary, activations, PNGs)")
    return 0


def cmd_attribute(args: argparse.Namespace) -> int:
    """``python -m explorer attribute``: why the model chose a class, as a map over the input."""
    from explorer.analysis.attribution import Settings
    from explorer.figures.render import render_attribution_png
    from explorer.views.attribution import on_picture, why_view

    loaded = _load(args)
    _notice(loaded)
    prepared = loaded.prepare(Path(args.image))
    result = loaded.capture(prepared, layers=[])
    target = int(result.top(1)[0][0]) if args.target is None else args.target
    chosen = {name: getattr(args, name) for name in ATTRIBUTE_OPTIONS}
    settings = Settings(args.method, target, layer=args.layer, **chosen)
    view = why_view(loaded, prepared, settings)
    values = view.attribution.values
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "attribution.npy", values)
    shown = on_picture(values, prepared.display)
    render_attribution_png(
        prepared.display,
        shown,
        out / "overlay.png",
        view.title.replace("<b>", "").replace("</b>", ""),
    )
    used = view.attribution.settings
    summary = {
        "model": loaded.name,
        "weights": loaded.weights,
        "image": str(args.image),
        "method": used.method,
        "layer": used.layer,
        "target": {"index": target, "label": view.label},
        "probability": view.before,
        "probability_top10_hidden": view.after,
        "settings": {
            k: v for k, v in asdict(used).items() if k not in ("method", "target", "layer")
        },
        "shape": list(values.shape),
        "min": float(values.min()),
        "max": float(values.max()),
        "sum": float(values.sum()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"wrote {used.method} of class {view.label} ({view.before:.1%}) for {loaded.name} to {out}/"
    )
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    """``python -m explorer visualize``: an input that excites one channel, by gradient ascent."""
    from PIL import Image

    from explorer.analysis.visualize import visualize

    loaded = _load(args)
    _notice(loaded)
    mean, std = loaded.normalisation
    layer = "" if args.layer == "logits" else args.layer
    unit = _pair(args.unit) if args.unit else None
    found = visualize(
        loaded.model, layer, args.channel, loaded.spec.input_size, mean, std,
        steps=args.steps, learning_rate=args.lr, seed=args.seed, unit=unit,
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(found.picture).save(out / "image.png")
    np.save(out / "image.npy", found.input.numpy()[0].astype(np.float32))
    summary = {
        "model": loaded.name,
        "weights": loaded.weights,
        "layer": args.layer,
        "channel": args.channel,
        "unit": list(unit) if unit else None,
        "steps": args.steps,
        "learning_rate": args.lr,
        "seed": args.seed,
        "mean_activation": found.activation,
        "mean_activation_start": found.start_activation,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"wrote {loaded.name} {args.layer}[{args.channel}]: mean activation "
        f"{found.start_activation:.4g} → {found.activation:.4g} to {out}/"
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``python -m explorer compare``: two forward passes, and what moved in each layer."""
    from explorer.analysis.experiment import Knockout, Perturbation, knocked_out, perturb, to_input
    from explorer.views.experiment import comparison_report

    first = _load(args)
    prepared = first.prepare(Path(args.image))
    second = load_model(args.model2, None, args.device) if args.model2 else first
    change = Perturbation(shift=_pair(args.shift), rotate=args.rotate, noise=args.noise)
    if args.image2:
        x2 = second.prepare(Path(args.image2)).tensor
    elif second is first and change.is_identity:
        x2 = prepared.tensor
    elif second is first:
        x2 = to_input(perturb(prepared.display, change), *first.normalisation)
    else:
        x2 = second.prepare(Path(args.image)).tensor
    model2 = second.model
    if args.knockout:
        model2 = knocked_out(model2, Knockout.parse(args.knockout, args.knockout_mode))
    a = first.capture(prepared)
    b = second.capture(x2) if model2 is second.model else _capture(model2, x2)
    moved = comparison_report(a, b, same_model=second is first)
    layers = moved.pop("layers")
    tops = [_top(first, a.probs, 5), _top(second, b.probs, 5)]
    report: dict[str, Any] = {"layers": layers, "top5": tops, **moved}
    if args.json:
        print(json.dumps(report))
        return 0
    for title, rows in zip((first.name, second.name), report.get("stages", []), strict=False):
        print(f"{title}: " + " → ".join(f"{r['layer']} {r['shape']}" for r in rows))
    for row in layers:
        name, kind = row["name"], row["kind"]
        print(f"{name:<28} {kind:<10} rel L2 {row['relative_l2']:.4g}  cos {row['cosine']:.4f}")
    for label, top in (("first", tops[0]), ("second", tops[1])):
        print(f"{label}: " + ", ".join(f"{t['label']} {t['prob']:.1%}" for t in top))
    return 0


def _capture(model: torch.nn.Module, x: torch.Tensor) -> Any:
    from explorer.analysis.capture import capture

    return capture(model, x)


def _pair(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 0)
    try:
        dx, dy = (int(part) for part in text.split(","))
    except ValueError:
        raise OwnModelError(f"expected two whole numbers A,B (e.g. 2,0), not {text!r}") from None
    return dx, dy


def cmd_export(args: argparse.Namespace) -> int:
    """``python -m explorer export``: a zoo model as a .pt2 or .onnx file (a model of your own)."""
    from explorer.models.own import export_model

    loaded = load_model(args.model, args.weights, "cpu")
    _notice(loaded)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_model(loaded.model, loaded.spec.input_size, out)
    print(f"wrote {loaded.name} ({loaded.weights_label}) to {out} ({out.stat().st_size:,} bytes)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``python -m explorer train``: train a digit model and print its validation accuracy."""
    from explorer.models.train import TrainingError, summary_line, train

    if args.images is not None:
        return cmd_train_pictures(args)
    if args.arch is not None:
        _error("--arch goes with --images (a network on your pictures), not --model")
        return 1
    try:
        options: dict[str, Any] = {"out": args.out, "seed": args.seed, "progress": not args.quiet}
        if args.epochs is not None:
            options["epochs"] = args.epochs
        result = train(args.model, args.data or "mnist", **options)
    except TrainingError as exc:
        _error(str(exc))
        return 1
    print(summary_line(result))
    if args.out:
        print(f"saved {args.out} and its card {Path(args.out).with_suffix('.json')}")
    return 0


def cmd_train_pictures(args: argparse.Namespace) -> int:
    """``python -m explorer train --images DIR``: teach a network your classes, save a .pt2."""
    from explorer.models.folders import read_folder
    from explorer.models.own import program_bytes
    from explorer.models.teach import DEFAULT_EPOCHS, Taught, TeachSettings, teach

    if args.data is not None:
        _error("--data goes with --model (the digit nets); --images is the folder trained on")
        return 1
    if not args.out:
        _error("train --images needs --out PATH.pt2 (where the model and its card go)")
        return 1
    out = Path(args.out)
    if out.suffix.lower() != ".pt2":
        _error(f"--out {out}: the model is written as a .pt2 file")
        return 1
    arch = args.arch or "small"
    try:
        settings = TeachSettings(
            architecture=arch,
            epochs=DEFAULT_EPOCHS[arch] if args.epochs is None else args.epochs,
            seed=args.seed,
        )
        pictures = read_folder(args.images)
    except ValueError as exc:  # PictureError included: one line naming the folder or file
        _error(str(exc))
        return 1

    def show(so_far: Taught) -> None:
        point = so_far.points[-1]
        if not args.quiet:
            print(
                f"epoch {point.epoch:g}: loss {point.train_loss:.4f}, accuracy "
                f"{point.train_accuracy:.1%}, held-out accuracy {point.val_accuracy:.1%}",
                flush=True,
            )

    counts = ", ".join(
        f"{c} {len(p)}" for c, p in zip(pictures.classes, pictures.pictures, strict=True)
    )
    print(f"{len(pictures)} pictures ({counts}); training {arch}", flush=True)
    taught = teach(pictures, settings, on_epoch=show)
    if taught.built.notice:
        print(f"notice: {taught.built.notice}", file=sys.stderr)
    card = taught.card()
    program = program_bytes(taught.net, taught.built.spec, card)  # CardError: one line (main)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(out, program)
    _write_atomically(out.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode())
    print(
        f"held-out accuracy {taught.held_out_accuracy:.1%} on {len(taught.held_out)} pictures "
        f"never trained on ({taught.message})"
    )
    print(f"saved {out} (card inside) and its card {out.with_suffix('.json')}")
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then renamed."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_bench(args: argparse.Namespace) -> int:
    """``python -m explorer bench``: capture, figure and page costs against their targets."""
    from explorer.bench.suite import cmd_bench as run_bench

    return run_bench(args)


def cmd_loadtest(args: argparse.Namespace) -> int:
    """``python -m explorer loadtest``: rerun latencies of many sessions on a live server."""
    from explorer.bench.loadcommand import cmd_loadtest as run_loadtest

    return run_loadtest(args)


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    """Put torchvision's pretrained weights in torch's hub cache, where the app looks."""
    specs = [get_spec(name) for name in dict.fromkeys(args.models or ZOO)]
    missing = []
    for spec in specs:
        target = pretrained_download(spec)
        if target is None:
            why = (
                "its weights ship in assets/models/"
                if spec.source == "shipped"
                else "no pretrained weights exist (built from the paper)"
            )
            print(f"{spec.name}: nothing to download, {why}")
        elif target[1].is_file():
            print(f"{spec.name}: present in {target[1]}")
        else:
            missing.append((spec, *target))
    if not missing:
        return 0
    blocked = download_blocked(missing[0][1])
    if blocked:
        names = ", ".join(spec.name for spec, _, _ in missing)
        _error(f"cannot download the pretrained weights of {names}: {blocked}")
        return 1
    failed = []
    for spec, url, path in missing:
        print(f"{spec.name}: downloading {url}", flush=True)
        try:
            download_pretrained(spec, progress=not args.no_progress)
        except (OSError, RuntimeError) as exc:
            failed.append(f"{spec.name} ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        print(f"{spec.name}: saved {path} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    if failed:
        _error(f"{len(failed)} of {len(missing)} downloads failed: {'; '.join(failed)}")
        return 1
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """``python -m explorer cluster``: start, stop or check app replicas behind nginx."""
    from explorer.hosting.cluster import cmd_cluster as run_cluster

    return run_cluster(args)


def cmd_index_images(args: argparse.Namespace) -> int:
    """``python -m explorer index-images``: every channel's top images of a folder, to a file."""
    from explorer.analysis.imageindex import (
        ImageIndexError,
        default_output,
        index_folder,
        stderr_line,
    )

    folder = Path(args.folder)
    out = Path(args.out) if args.out else default_output(folder, args.model)
    try:
        get_spec(args.model)
        for where in (folder, out.parent):
            if not where.is_dir():
                raise ImageIndexError(f"{where} is not a folder")
        loaded = load_model(args.model, args.weights, args.device)
        _notice(loaded)
        # this process's own model: channels-last convs take about a third less CPU time
        loaded.model.to(memory_format=torch.channels_last)
        index = index_folder(
            loaded.model,
            lambda path: loaded.prepare(path).tensor,
            folder,
            out,
            model_name=loaded.name,
            weights=loaded.cache_key,
            layers=args.layers,
            k=args.top_k,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            warn=stderr_line,
        )
    except ImageIndexError as exc:
        _error(str(exc))
        return 1
    print(
        f"{out}: {index.images:,} images ({index.skipped:,} skipped), {len(index.layers)} "
        f"layers, top {index.k} per channel, {out.stat().st_size / 2**20:.1f} MB"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m explorer``: one subcommand per ``cmd_*`` function."""
    parser = argparse.ArgumentParser(prog="python -m explorer", description="See inside a CNN.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in (
        _add_models_command,
        _add_predict_command,
        _add_inspect_command,
        _add_attribute_command,
        _add_visualize_command,
        _add_compare_command,
        _add_export_command,
        _add_train_command,
        _add_bench_command,
        _add_loadtest_command,
        _add_fetch_weights_command,
        _add_cluster_command,
        _add_index_images_command,
    ):
        add_command(sub)
    return parser


def _add_models_command(sub: _Subcommands) -> None:
    models = sub.add_parser("models", help="list the model zoo")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=cmd_models)


def _add_predict_command(sub: _Subcommands) -> None:
    predict = sub.add_parser("predict", help="classify images")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    _add_model_args(predict)
    predict.add_argument("--top", type=int, default=5, help="how many classes to list")
    predict.add_argument("--json", action="store_true", help="one JSON object per image per line")
    predict.set_defaults(func=cmd_predict)


def _add_inspect_command(sub: _Subcommands) -> None:
    inspect = sub.add_parser("inspect", help="write every layer of one image to a folder")
    inspect.add_argument("image", metavar="IMAGE")
    _add_model_args(inspect)
    inspect.add_argument("--out", required=True, help="output folder")
    inspect.add_argument("--top", type=int, default=5)
    inspect.set_defaults(func=cmd_inspect)


def _add_attribute_command(sub: _Subcommands) -> None:
    attribute = sub.add_parser(
        "attribute", help="why the model chose a class: an attribution map of one image"
    )
    attribute.add_argument("image", metavar="IMAGE")
    _add_model_args(attribute)
    attribute.add_argument("--method", required=True, choices=list(METHODS))
    attribute.add_argument(
        "--layer", default=None, help="a CAM's layer (default: the last conv block)"
    )
    attribute.add_argument(
        "--target", type=int, default=None, help="class index (default: the top class)"
    )
    for name in ATTRIBUTE_OPTIONS:
        knob = KNOBS[name]
        if knob.choices:
            attribute.add_argument(
                f"--{name}", default=knob.default, choices=list(knob.choices), help=knob.help
            )
        else:
            attribute.add_argument(
                f"--{name}", type=type(knob.default), default=knob.default, help=knob.help
            )
    attribute.add_argument("--out", required=True, help="output folder")
    attribute.set_defaults(func=cmd_attribute)


def _add_compare_command(sub: _Subcommands) -> None:
    cmp = sub.add_parser("compare", help="two forward passes and what moved in each layer")
    cmp.add_argument("image", metavar="IMAGE")
    cmp.add_argument("image2", metavar="IMAGE2", nargs="?", help="a second input (default: IMAGE)")
    _add_model_args(cmp)
    cmp.add_argument("--model2", choices=list(ZOO), help="a second model for the second pass")
    cmp.add_argument("--shift", metavar="DX,DY", help="shift the second input (pixels)")
    cmp.add_argument("--rotate", type=float, default=0.0, help="rotate it (degrees)")
    cmp.add_argument("--noise", type=float, default=0.0, help="Gaussian noise σ (0…1 units)")
    cmp.add_argument("--knockout", metavar="LAYER:CH,CH…", help="switch channels off")
    cmp.add_argument("--knockout-mode", default="zero", choices=["zero", "mean", "filter"])
    cmp.add_argument("--json", action="store_true", help="print one JSON object")
    cmp.set_defaults(func=cmd_compare)


def _add_visualize_command(sub: _Subcommands) -> None:
    vis = sub.add_parser("visualize", help="an input that excites one channel of a layer")
    _add_model_args(vis)
    vis.add_argument(
        "--layer", required=True, help="a module name (conv2, layer3), or 'logits' for a class"
    )
    vis.add_argument("--channel", type=int, required=True, help="the channel (or the class)")
    vis.add_argument("--unit", metavar="Y,X", help="raise one unit of the channel, not its mean")
    vis.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate")
    vis.add_argument("--steps", type=int, default=128, help="gradient steps (default 128)")
    vis.add_argument("--seed", type=int, default=0)
    vis.add_argument("--out", required=True, help="output folder")
    vis.set_defaults(func=cmd_visualize)


def _add_export_command(sub: _Subcommands) -> None:
    export = sub.add_parser("export", help="write a zoo model as a .pt2 or .onnx file")
    export.add_argument("--model", required=True, choices=list(ZOO))
    export.add_argument("--weights", default=None, help="as for predict")
    export.add_argument("--out", required=True, help="PATH.pt2 (torch.export) or PATH.onnx")
    export.set_defaults(func=cmd_export)


def _add_train_command(sub: _Subcommands) -> None:
    train_cmd = sub.add_parser(
        "train", help="train the shipped digit models, or a network on your own pictures"
    )
    what = train_cmd.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", choices=["lenet5", "harley"])
    what.add_argument(
        "--images", metavar="DIR", help="your pictures: one sub-folder per class (2–5 classes)"
    )
    train_cmd.add_argument(
        "--arch",
        default=None,
        choices=["small", "finetune:resnet18"],
        help="with --images: a small CNN from scratch (default), or fine-tune ResNet-18's "
        "last block",
    )
    train_cmd.add_argument(
        "--data",
        default=None,
        help="with --model: an .npz with images/labels, or 'mnist' (the default; torchvision, "
        "online)",
    )
    train_cmd.add_argument("--epochs", type=int, default=None)
    train_cmd.add_argument(
        "--out",
        default=None,
        help="where to save the .pth (card next to it); with --images, the .pt2 (card inside)",
    )
    train_cmd.add_argument("--seed", type=int, default=0)
    train_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    train_cmd.set_defaults(func=cmd_train)


def _add_bench_command(sub: _Subcommands) -> None:
    bench = sub.add_parser("bench", help="measure capture, figure and page costs vs. targets")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: cpu")
    bench.add_argument("--quick", action="store_true", help="few repeats: checks, not figures")
    bench.set_defaults(func=cmd_bench)


def _add_loadtest_command(sub: _Subcommands) -> None:
    from explorer.bench.loadplan import MAX_DURATION_S, MAX_SESSIONS
    from explorer.hosting.drivers import PAGES

    loadtest = sub.add_parser(
        "loadtest", help="drive a live server with many browser-like sessions, time each rerun"
    )
    target = loadtest.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running app on this machine, e.g. http://127.0.0.1:8501")
    target.add_argument("--spawn", action="store_true", help="start the app for the run")
    loadtest.add_argument(
        "--sessions", type=int, required=True, help=f"concurrent sessions (1–{MAX_SESSIONS})"
    )
    loadtest.add_argument(
        "--duration", type=float, required=True, help=f"seconds measured (≤ {MAX_DURATION_S:g})"
    )
    loadtest.add_argument("--page", choices=list(PAGES), default="draw", help="default: draw")
    loadtest.add_argument(
        "--interval", type=float, default=2.0, help="seconds between a session's inputs (2.0)"
    )
    loadtest.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="with --spawn")
    loadtest.add_argument("--json", action="store_true", help="print one JSON object")
    loadtest.set_defaults(func=cmd_loadtest)


def _add_fetch_weights_command(sub: _Subcommands) -> None:
    fetch = sub.add_parser(
        "fetch-weights",
        help="download torchvision's pretrained weights into torch's cache (for the app, offline)",
    )
    fetch.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help=f"zoo models (default: all): {', '.join(ZOO)}",
    )
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=cmd_fetch_weights)


def _add_cluster_command(sub: _Subcommands) -> None:
    cluster = sub.add_parser(
        "cluster", help="N app replicas behind nginx on this machine (deploy/local-cluster)"
    )
    cluster.add_argument("action", choices=["start", "stop", "status"])
    cluster.add_argument(
        "--replicas", type=int, default=None, help="with start: streamlit processes (default 3)"
    )
    cluster.add_argument(
        "--port", type=int, default=None, help="with start: nginx on 127.0.0.1:PORT (8080)"
    )
    cluster.add_argument(
        "--run-dir",
        default=None,
        help="pids, configuration and logs (default: $EXPLORER_CLUSTER_DIR, "
        "$XDG_RUNTIME_DIR/cnn-explorer-cluster or ~/.cache/cnn-explorer/cluster)",
    )
    cluster.set_defaults(func=cmd_cluster)


def _add_index_images_command(sub: _Subcommands) -> None:
    index = sub.add_parser(
        "index-images",
        help="the images of a folder that excite each channel most, for the channel card",
    )
    index.add_argument("folder", metavar="DIR", help="a folder of photos (searched recursively)")
    index.add_argument("--model", required=True, help=f"a zoo model: {', '.join(ZOO)}")
    index.add_argument("--weights", default=None, help="as for predict (default: pretrained)")
    index.add_argument("--device", default=None, help="as for predict")
    index.add_argument(
        "--layers", nargs="+", metavar="LAYER", help="layers to index (default: every conv layer)"
    )
    index.add_argument("--top-k", type=int, default=9, help="images kept per channel (9)")
    index.add_argument("--batch-size", type=int, default=32, help="images per forward pass (32)")
    index.add_argument(
        "--out", default=None, help="the index file (default: DIR/../<DIR>.<model>.index.npz)"
    )
    index.add_argument("--no-progress", action="store_true", help="no progress bar")
    index.set_defaults(func=cmd_index_images)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (`… | head`): stop quietly, as Unix tools do, and keep Python
        # from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except EXPECTED_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        _error(str(message))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
