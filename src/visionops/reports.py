"""Tables and figures the notebooks show: training curves from MLflow, predictions beside the
ground truth, endpoint latency, profiles, model versions and the MLflow UI address.

Figures are `matplotlib.figure.Figure` objects (no pyplot, no GUI backend), like
`visionops.data.plots`: display them in a notebook, or save them headless in CI. Detections use
the scoring endpoint's JSON shape for one image (`{"width", "height", "boxes": [[x0, y0, x1, y1]],
"labels", "confidences"}` in pixels), so predictions made in-process and answers from an endpoint
are drawn by the same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from PIL import Image

from visionops.settings import Settings, checkout_root

_FONT = "DejaVu Sans"
# every task's clean names (visionops.training): a run has only its own task's, the rest are left out
LOSSES = ("train_box_loss", "val_box_loss", "train_cls_loss", "val_cls_loss", "train_loss", "val_loss")
QUALITY = ("map50_95", "map50", "precision", "recall", "top1", "top5")


# --- training -----------------------------------------------------------------------------------
def metric_history(settings: Settings, run_id: str, names: Sequence[str] = LOSSES + QUALITY) -> pd.DataFrame:
    """Per-epoch values of the run's metrics from MLflow: one row per epoch (index `epoch`),
    one column per metric that the run logged (missing ones are left out)."""
    import mlflow

    from visionops.tracking import configure_mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    columns: dict[str, pd.Series] = {}
    for name in names:
        history = client.get_metric_history(run_id, name)
        if history:
            by_step = {m.step: m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))}
            columns[name] = pd.Series(by_step, dtype=float)
    frame = pd.DataFrame(columns)
    frame.index.name = "epoch"
    return frame.sort_index()


def plot_training_curves(history: pd.DataFrame, *, title: str = "Training curves") -> Figure:
    """Left: losses per epoch (train solid, validation dashed). Right: mAP, precision, recall
    (detection) or top-1 / top-5 accuracy (classification)."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_loss, ax_q = fig.subplots(1, 2)
    for name in (c for c in LOSSES if c in history):
        ax_loss.plot(history.index, history[name], marker="o", markersize=3,
                     linestyle="--" if name.startswith("val_") else "-", label=name)
    for name in (c for c in QUALITY if c in history):
        ax_q.plot(history.index, history[name], marker="o", markersize=3, label=name)
    ax_loss.set_title("Losses (lower is better)", fontfamily=_FONT)
    ax_q.set_title("Validation quality (higher is better)", fontfamily=_FONT)
    ax_q.set_ylim(-0.02, 1.02)
    for ax in (ax_loss, ax_q):
        ax.set_xlabel("epoch", fontfamily=_FONT)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(prop={"family": _FONT, "size": 8})
        else:
            ax.text(0.5, 0.5, "no metrics logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontfamily=_FONT)
    return fig


def mlflow_ui(settings: Settings, experiment_id: str | None = None, run_id: str | None = None,
              port: int = 5000) -> dict[str, str]:
    """The command that opens the MLflow UI on this backend's store, and the page of a run."""
    base = f"http://127.0.0.1:{port}"
    url = base
    if experiment_id and run_id:
        url = f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    elif experiment_id:
        url = f"{base}/#/experiments/{experiment_id}"
    command = f".venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri} --port {port}  (or: make mlflow-ui)"
    if settings.backend == "azure":
        command = "open the run in Azure ML studio (Jobs); the workspace is the MLflow server"
    return {"command": command, "url": url}


# --- predictions ----------------------------------------------------------------------------
def _samples(root: Path, split: str) -> list[Any]:
    """The split's labelled images in data set order (either task: `visionops.data.kinds`)."""
    from visionops.data.kinds import data_kind

    return data_kind(Path(root)).samples(Path(root), (split,))


def sample_images(root: Path, split: str = "test", n: int = 4) -> list[Path]:
    """`n` images of a split, the same ones on every run: the first ones (data set order), taken
    class by class in turn when each image has one class (a classification split is ordered by
    class, and a sample of one class would show nothing)."""
    groups: dict[Any, list[Path]] = {}
    for sample in _samples(root, split):
        groups.setdefault(sample.label, []).append(sample.image)
    picked: list[Path] = []
    queues = list(groups.values())
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


def ground_truth(root: Path, image: Path, split: str = "test") -> dict[str, Any]:
    """What one image is labelled with, in the endpoint's answer shape: its boxes (detection,
    confidence 1) or its class (classification, probability 1)."""
    label = {Path(s.image): s.label for s in _samples(root, split)}.get(Path(image))
    if label is not None:
        with Image.open(image) as im:
            width, height = im.size
        return {"width": width, "height": height, "labels": [label], "class_ids": [], "probabilities": [1.0]}
    from visionops.data.truth import labelled_image

    truth = labelled_image(root, split, Path(image))
    return {"width": truth.width, "height": truth.height, "boxes": truth.boxes, "class_ids": [],
            "labels": truth.labels, "confidences": [1.0] * len(truth.boxes)}


def ground_truths(root: Path, images: Sequence[Path], split: str = "test") -> list[dict[str, Any]]:
    return [ground_truth(root, image, split) for image in images]


def predict(weights: Path, images: Sequence[Path], settings: Settings, *, imgsz: int | None = None,
            conf: float = 0.25) -> list[dict[str, Any]]:
    """What a .pt model answers for image files, in the endpoint's JSON shape (a detector's boxes
    in pixels, a classifier's top labels): the serving Predictor itself, so what the notebook
    draws is what the endpoint answers."""
    from visionops.serving.predictor import ModelBundle, TorchPredictor
    from visionops.training import resolve_device

    weights = Path(weights)
    bundle = ModelBundle(root=weights.parent, pt=weights, onnx=None, info={"imgsz": imgsz} if imgsz else {},
                         name=weights.stem, version="local")
    predictor = TorchPredictor(bundle, threads=settings.threads, device=resolve_device(settings.device),
                               yolo_config_dir=settings.yolo_config_dir)
    out = []
    for path in images:
        with Image.open(path) as im:
            [detections] = predictor.predict([im.convert("RGB")], conf=conf)
        out.append(detections.to_dict())
    return out


def _colour(label: str, palette: dict[str, Any]) -> Any:
    from matplotlib import colormaps

    if label not in palette:
        palette[label] = colormaps["tab10"](len(palette) % 10)
    return palette[label]


def _draw(ax, image: Path | Image.Image, det: dict[str, Any] | None, title: str, palette: dict[str, Any]) -> None:
    if isinstance(image, Image.Image):
        rgb = np.asarray(image.convert("RGB"))
    else:
        with Image.open(image) as im:
            rgb = np.asarray(im.convert("RGB"))
    ax.imshow(rgb)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8, fontfamily=_FONT)
    if not det:
        return
    confs = det.get("confidences") or [None] * len(det.get("boxes", []))
    for box, label, c in zip(det.get("boxes", []), det.get("labels", []), confs, strict=False):
        x0, y0, x1, y1 = box
        colour = _colour(label, palette)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.5))
        text = label if c is None or c >= 1.0 else f"{label} {c:.2f}"
        ax.text(x0, y0, text, fontsize=7, fontfamily=_FONT, color="white", va="bottom",
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 1, "alpha": 0.8})


def plot_detections(
    images: Sequence[Path | Image.Image],
    predictions: Sequence[dict[str, Any]],
    truths: Sequence[dict[str, Any]] | None = None,
    *,
    title: str = "Predictions",
) -> Figure:
    """One row per image: the ground truth (when given) beside the predicted boxes."""
    if len(predictions) != len(images) or (truths is not None and len(truths) != len(images)):
        raise ValueError(f"{len(images)} images but {len(predictions)} predictions"
                         + ("" if truths is None else f" and {len(truths)} ground truths"))
    cols = 1 if truths is None else 2
    rows = max(1, len(images))
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    palette: dict[str, Any] = {}
    for i, image in enumerate(images):
        name = Path(image).name if isinstance(image, str | Path) else f"image {i}"
        pred = predictions[i]
        if truths is not None:
            _draw(axes[i][0], image, truths[i], f"{name}: ground truth ({len(truths[i]['boxes'])})", palette)
        _draw(axes[i][cols - 1], image, pred, f"{name}: predicted ({len(pred.get('boxes', []))})", palette)
    if not images:
        axes[0][0].set_axis_off()
        axes[0][0].text(0.5, 0.5, "no images", ha="center", va="center")
    fig.suptitle(title, fontfamily=_FONT)
    return fig


def _label_text(answer: dict[str, Any], top: int = 3) -> str:
    probs = answer.get("probabilities") or [None] * len(answer.get("labels", []))
    return ", ".join(label if p is None or p >= 1.0 else f"{label} {p:.2f}"
                     for label, p in list(zip(answer.get("labels", []), probs, strict=False))[:top])


def plot_classifications(
    images: Sequence[Path | Image.Image],
    predictions: Sequence[dict[str, Any]],
    truths: Sequence[dict[str, Any]] | None = None,
    *,
    title: str = "Predictions",
    cols: int = 4,
) -> Figure:
    """A grid of images, each titled with its class (when truths are given) and the classifier's
    top labels with probabilities; a wrong top-1 label is red, a right one green."""
    if len(predictions) != len(images) or (truths is not None and len(truths) != len(images)):
        raise ValueError(f"{len(images)} images but {len(predictions)} predictions"
                         + ("" if truths is None else f" and {len(truths)} ground truths"))
    cols = max(1, min(cols, len(images) or 1))
    rows = max(1, -(-len(images) // cols))
    fig = Figure(figsize=(2.8 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for i, (ax, image) in enumerate(zip(axes, images, strict=False)):
        name = Path(image).name if isinstance(image, str | Path) else f"image {i}"
        pred = predictions[i]
        lines = [name]
        colour = "black"
        if truths is not None:
            true = (truths[i].get("labels") or [None])[0]
            lines.append(f"true: {true}")
            colour = "tab:green" if (pred.get("labels") or [None])[0] == true else "tab:red"
        lines.append(f"predicted: {_label_text(pred)}")
        _draw(ax, image, None, "\n".join(lines), {})
        ax.title.set_color(colour)
    if not images:
        axes[0].text(0.5, 0.5, "no images", ha="center", va="center")
    fig.suptitle(title, fontfamily=_FONT)
    return fig


def plot_predictions(
    images: Sequence[Path | Image.Image],
    predictions: Sequence[dict[str, Any]],
    truths: Sequence[dict[str, Any]] | None = None,
    *,
    title: str = "Predictions",
) -> Figure:
    """What the model answered for each image beside the truth, for either task: a detector's
    boxes drawn on the image, a classifier's top labels in its title. Answers have the
    endpoint's JSON shape, so in-process predictions and an endpoint's answers draw alike."""
    if any("boxes" in p for p in predictions):
        return plot_detections(images, predictions, truths, title=title)
    return plot_classifications(images, predictions, truths, title=title)


def answer_size(answer: dict[str, Any]) -> int:
    """How much one image's answer holds: boxes for a detector, labels for a classifier."""
    return len(answer["boxes"]) if "boxes" in answer else len(answer.get("labels", []))


def _picture(path: Path, title: str) -> Figure:
    """An image file (a plot Ultralytics saved) as a figure, so every evaluation picture is one type."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    fig = Figure(figsize=(7, 7 * rgb.shape[0] / max(rgb.shape[1], 1)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgb)
    ax.set_axis_off()
    ax.set_title(title, fontfamily=_FONT)
    return fig


def evaluation_figures(result: Any) -> list[Figure]:
    """The pictures that explain an evaluation, for either task: the precision-recall curve and
    the confusion matrix Ultralytics drew (a detector: its background row and column count missed
    objects and false alarms), or the confusion matrix with class names and the misclassified
    images, most confident mistakes first (a classifier)."""
    if getattr(result, "confusion", None) is not None:
        return [plot_confusion_matrix(result), plot_misclassified(result)]
    titles = {"pr_curve": "Precision-recall curve", "confusion_matrix": "Confusion matrix"}
    return [_picture(result.plots[key], title) for key, title in titles.items() if key in result.plots]


# --- endpoint calls and latency ----------------------------------------------------------------
def request_payload(images: Sequence[Path], **params: Any) -> dict[str, Any]:
    """The scoring request for image files: `{"images": [base64, ...]}` plus conf / iou / max_det."""
    from visionops.serving.endpoint import encode_image

    return {"images": [encode_image(p) for p in images], **{k: v for k, v in params.items() if v is not None}}


def measure_latency(workspace: Any, endpoint: Any, payload: dict[str, Any], n: int) -> pd.DataFrame:
    """Call the endpoint `n` times, one after the other, through the workspace (as a client
    would): round trip per request, and the server's own decode and inference time."""
    import time

    rows = []
    for i in range(n):
        started = time.perf_counter()
        answer = workspace.invoke_endpoint(endpoint, payload)
        rows.append({
            "request": i + 1,
            "round_trip_ms": round((time.perf_counter() - started) * 1e3, 2),
            "inference_ms": answer.get("inference_ms"),
            "decode_ms": answer.get("decode_ms"),
        })
    return pd.DataFrame(rows, columns=["request", "round_trip_ms", "inference_ms", "decode_ms"]).set_index("request")


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """Count, mean, p50, p95 and max of request latencies in milliseconds."""
    arr = np.asarray(list(latencies_ms), dtype=float)
    if arr.size == 0:
        return {"requests": 0}
    return {
        "requests": int(arr.size),
        "mean_ms": round(float(arr.mean()), 2),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


def plot_latency(latencies_ms: Sequence[float], server_ms: Sequence[float] | None = None, *,
                 title: str = "Endpoint latency") -> Figure:
    """Round trip per request in order (warm-up shows as the first points) with its p50/p95,
    and the server's inference time when given (the rest is HTTP, JSON and image decoding)."""
    arr = np.asarray(list(latencies_ms), dtype=float)
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(1, arr.size + 1)
    ax.plot(x, arr, marker="o", markersize=3, label="round trip")
    if server_ms is not None:
        server = np.asarray([np.nan if v is None else v for v in server_ms], dtype=float)
        ax.plot(x[: server.size], server, marker=".", markersize=3, color="tab:gray", label="server inference")
    if arr.size:
        s = latency_summary(arr)
        ax.axhline(s["p50_ms"], color="tab:green", linestyle="--", label=f"p50 {s['p50_ms']:.1f} ms")
        ax.axhline(s["p95_ms"], color="tab:red", linestyle=":", label=f"p95 {s['p95_ms']:.1f} ms")
    ax.set_xlabel("request", fontfamily=_FONT)
    ax.set_ylabel("milliseconds", fontfamily=_FONT)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontfamily=_FONT)
    ax.grid(alpha=0.3)
    ax.legend(prop={"family": _FONT, "size": 8})
    return fig


# --- pipeline --------------------------------------------------------------------------------
def pipeline_graph() -> pd.DataFrame:
    """The training pipeline as data: one row per node with its component, where each input
    comes from, its outputs, and the command both Azure ML and the local runner execute."""
    from visionops.pipeline.components import GRAPH, load_components

    specs = load_components()
    rows = []
    for node in GRAPH:
        spec = specs[node.component]
        rows.append({
            "step": node.name,
            "component": spec.name,
            "inputs": ", ".join(f"{port} <- {src}" for port, src in node.inputs.items()),
            "outputs": ", ".join(spec.outputs),
            "command": spec.command,
        })
    return pd.DataFrame(rows).set_index("step")


def plot_pipeline() -> Figure:
    """The pipeline's steps as boxes, an arrow for every output an input consumes."""
    from visionops.pipeline.components import GRAPH

    fig = Figure(figsize=(10, 2.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    xs = {node.name: 1.0 + 2.2 * i for i, node in enumerate(GRAPH)}
    ax.set_xlim(-0.6, max(xs.values()) + 1.2)
    ax.set_ylim(-1.2, 1.6)
    ax.add_patch(Rectangle((-0.55, -0.3), 0.8, 0.6, facecolor="#eeeeee", edgecolor="grey"))
    ax.text(-0.15, 0, "data\nprofile\nknobs", ha="center", va="center", fontsize=8, fontfamily=_FONT)
    for node in GRAPH:
        x = xs[node.name]
        ax.add_patch(Rectangle((x - 0.7, -0.35), 1.4, 0.7, facecolor="#dde8f5", edgecolor="#4C72B0", linewidth=1.5))
        ax.text(x, 0, node.name, ha="center", va="center", fontsize=10, fontfamily=_FONT, weight="bold")
        for port, src in node.inputs.items():
            origin, _, output = src.partition(".")
            if origin == "pipeline":
                continue
            x0 = xs[origin]
            if x - x0 > 2.3:  # skips a step: arc above the boxes
                ax.annotate("", xy=(x, 0.36), xytext=(x0, 0.36),
                            arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=-0.3", "color": "#55A868"})
                ax.text((x + x0) / 2, 1.15, f"{output} -> {port}", ha="center", fontsize=7, fontfamily=_FONT)
            else:
                ax.annotate("", xy=(x - 0.7, 0), xytext=(x0 + 0.7, 0), arrowprops={"arrowstyle": "->"})
                ax.text((x + x0) / 2, -0.2, f"{output}\n-> {port}", ha="center", va="top", fontsize=7,
                        fontfamily=_FONT)
    ax.annotate("", xy=(xs[GRAPH[0].name] - 0.7, 0), xytext=(0.25, 0), arrowprops={"arrowstyle": "->"})
    ax.set_title("validate -> train -> evaluate -> register", fontfamily=_FONT)
    return fig


def pipeline_steps_table(pipeline: Any) -> pd.DataFrame:
    """The steps of a built pipeline: the local plan's rendered commands, or an Azure ML
    pipeline job's nodes with their components and inputs."""
    if hasattr(pipeline, "nodes"):  # local PipelinePlan
        rows = [{"step": n.name, "component": n.component, "command": n.command} for n in pipeline.nodes]
    else:  # azure-ai-ml PipelineJob
        rows = []
        for name, job in (getattr(pipeline, "jobs", None) or {}).items():
            component = getattr(job, "component", None)
            rows.append({
                "step": name,
                "component": getattr(component, "name", None) or str(component),
                "command": ", ".join(sorted((getattr(job, "inputs", None) or {}).keys())),
            })
    return pd.DataFrame(rows, columns=["step", "component", "command"]).set_index("step")


def pipeline_run_table(run: Any) -> pd.DataFrame:
    """Status, duration and log of every step of a PipelineRunInfo."""
    rows = [{"step": s.name, "status": s.status, "duration_s": s.duration_s, "log": s.log} for s in run.steps]
    return pd.DataFrame(rows, columns=["step", "status", "duration_s", "log"]).set_index("step")


# --- tables -------------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def read_constraints(path: Path) -> dict[str, str]:
    """`name==version` pins of a pip constraints file, keyed by canonical package name."""
    pins: dict[str, str] = {}
    if not Path(path).is_file():
        return pins
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()  # no comments, no environment markers
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[_canonical(name.split("[")[0])] = version.strip()
    return pins


def environments_table(root: Path | None = None) -> pd.DataFrame:
    """The conda environments in `environments/conda/` next to the pins they share with
    `requirements/constraints.txt` (the single resolver run over pyproject.toml's extras);
    `root` defaults to the source checkout."""
    import yaml

    root = Path(root) if root is not None else checkout_root()
    constraints = read_constraints(root / "requirements" / "constraints.txt")
    rows = []
    for path in sorted((root / "environments" / "conda").glob("*.yml")):
        text = path.read_text()
        doc = yaml.safe_load(text) or {}
        comment = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), "")
        python, pins = "", {}
        for dep in doc.get("dependencies") or []:
            if isinstance(dep, str) and dep.startswith("python"):
                python = dep.partition("=")[2].lstrip("=")
            elif isinstance(dep, dict):
                for entry in dep.get("pip") or []:
                    if "==" in entry and not entry.startswith("-"):
                        name, _, version = entry.partition("==")
                        pins[_canonical(name.split("[")[0])] = version.strip()
        agree = sum(constraints.get(n) == v for n, v in pins.items())
        rows.append({
            "environment": doc.get("name", path.stem),
            "file": path.relative_to(root).as_posix(),
            "python": python,
            "pinned packages": len(pins),
            "same pin as constraints.txt": f"{agree}/{len(pins)}",
            "installs the repo (-e)": any(isinstance(d, dict) and any(str(e).startswith("-e") for e in d.get("pip", []))
                                          for d in doc.get("dependencies") or []),
            "purpose": comment.split(":", 1)[-1].strip() if ":" in comment else comment,
        })
    cols = ["environment", "file", "python", "pinned packages", "same pin as constraints.txt",
            "installs the repo (-e)", "purpose"]
    return pd.DataFrame(rows, columns=cols).set_index("environment")


def datasets_table(refs: Sequence[Any]) -> pd.DataFrame:
    """Registered data set versions (DatasetRef): name, version, images per split, created."""
    rows = [{
        "name": r.name, "version": r.version,
        **{s: r.counts.get(s, {}).get("images", 0) for s in ("train", "val", "test")},
        "created": r.created, "path": r.path,
    } for r in refs]
    return pd.DataFrame(rows, columns=["name", "version", "train", "val", "test", "created", "path"])


def _split_images(spec: Any) -> str:
    """train/val/test image counts of a synthetic spec (a classification spec counts per class)."""
    per_class = [getattr(spec, f"per_class_{split}", None) for split in ("train", "val", "test")]
    if None not in per_class:
        n = len(spec.classes)
        return "/".join(str(k * n) for k in per_class) + f" ({n} classes)"
    return f"{spec.n_train}/{spec.n_val}/{spec.n_test}"


def profiles_table(task: str | None = None) -> pd.DataFrame:
    """The run profiles of a task (None: detection) side by side: data size, training schedule,
    decision rule."""
    from visionops.profiles import PROFILES_BY_TASK
    from visionops.tasks import get_task

    rows = []
    for p in PROFILES_BY_TASK[get_task(task).name].values():
        rows.append({
            "profile": p.name,
            "train/val/test images": _split_images(p.data),
            "image size": p.data.image_size,
            "model": p.train.model,
            "epochs": p.train.epochs,
            "imgsz": p.train.imgsz,
            "batch": p.train.batch,
            "optimizer": p.train.optimizer,
            "decision": f"{p.decision.metric} {p.decision.direction}, floor {p.decision.floor}, "
                        f"min gain {p.decision.min_gain}",
            "for": p.description,
        })
    return pd.DataFrame(rows).set_index("profile")


# what a ClassScore's `instances` counts, per task: labelled objects, or the class's images ("support")
_COUNT_LABEL = {"detect": "instances", "classify": "support"}


def per_class_table(result: Any) -> pd.DataFrame:
    """Per-class scores of an EvalResult, one row per class: precision, recall and AP
    (detection), or precision, recall, F1 and support (classification). Columns a task does
    not fill are left out."""
    rows = [c.model_dump() for c in result.per_class]
    cols = ["name", "instances", "precision", "recall", "f1", "ap50", "ap50_95"]
    frame = pd.DataFrame(rows, columns=cols).set_index("name")
    frame = frame.dropna(axis=1, how="all") if rows else frame.drop(columns=["f1"])
    label = _COUNT_LABEL.get(getattr(result, "task", "detect"), "instances")
    return frame.rename(columns={"instances": label}).round(4)


def metrics_table(result: Any) -> pd.DataFrame:
    """An EvalResult's overall metrics (one row each) with the split and data set they were scored on."""
    frame = pd.Series(result.metrics, name="value", dtype=float).round(4).to_frame()
    frame.index.name = f"{result.dataset_name}:{result.dataset_version} {result.split}"
    return frame


def plot_confusion_matrix(result: Any, *, normalize: bool = False, title: str | None = None) -> Figure:
    """A classifier's confusion matrix with class names: rows are the true class, columns the
    predicted one, each cell the image count (or, normalized, the share of the true class's
    images), so a row shows where that class's images went."""
    if result.confusion is None:
        raise ValueError("this evaluation has no confusion matrix (a classification evaluation has one)")
    names = list(result.classes)
    cm = np.asarray(result.confusion, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    size = max(3.5, 0.55 * len(names) + 2)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1.0, float(shown.max())))
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right", fontfamily=_FONT, fontsize=8)
    ax.set_yticks(ticks, names, fontfamily=_FONT, fontsize=8)
    ax.set_xlabel("predicted", fontfamily=_FONT)
    ax.set_ylabel("true", fontfamily=_FONT)
    if len(names) <= 30:  # beyond that the numbers would not be readable
        threshold = float(shown.max()) / 2
        for (i, j), value in np.ndenumerate(shown):
            ax.text(j, i, f"{value:.2f}" if normalize else f"{int(value)}", ha="center", va="center", fontsize=8,
                    fontfamily=_FONT, color="white" if value > threshold else "black")
    top1 = result.metrics.get("top1")
    default = f"Confusion matrix ({result.split}{f', top-1 {top1:.3f}' if top1 is not None else ''})"
    ax.set_title(title or default, fontfamily=_FONT)
    return fig


def plot_misclassified(result: Any, n: int = 8, *, cols: int = 4, title: str | None = None) -> Figure:
    """The first `n` misclassified images of a classifier's evaluation (the most confident
    mistakes first), each titled with its true and predicted class and the probability."""
    wrong = list(result.misclassified)[:n]
    cols = max(1, min(cols, len(wrong) or 1))
    rows = max(1, -(-len(wrong) // cols))
    fig = Figure(figsize=(2.6 * cols, 2.8 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, m in zip(axes, wrong, strict=False):
        with Image.open(m.path) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
        ax.set_title(f"{Path(m.path).name}\ntrue: {m.true}\npredicted: {m.predicted} ({m.probability:.2f})",
                     fontsize=8, fontfamily=_FONT, color="tab:red")
    if not wrong:
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontfamily=_FONT)
    total = len(result.misclassified)
    fig.suptitle(title or f"Misclassified {result.split} images ({len(wrong)} of {total} shown)", fontfamily=_FONT)
    return fig


def decision_table(outcome: Any) -> pd.DataFrame:
    """Challenger and champion side by side on every metric, with the rule's metric marked."""
    d = outcome.decision
    rows = {"challenger": outcome.challenger.metrics}
    if outcome.champion is not None:
        rows[f"champion v{outcome.champion_version}"] = outcome.champion.metrics
    frame = pd.DataFrame(rows).round(4)
    frame.index = [f"{m} (decides)" if m == d.metric else m for m in frame.index]
    return frame


def versions_table(settings: Settings, name: str | None = None, metric: str = "map50_95") -> pd.DataFrame:
    """Registered versions of the model: stage, decision `metric` (top1 for a classifier), data
    set and training run."""
    from visionops import registry

    rows = []
    for r in registry.list_versions(settings, name):
        rows.append({
            "version": r.version,
            "stage": r.tags.get("stage", ""),
            metric: r.metric(metric),
            "dataset": f"{r.tags.get('dataset.name', '')}:{r.tags.get('dataset.version', '')}",
            "train run": r.tags.get("train.run_id", ""),
        })
    return pd.DataFrame(rows, columns=["version", "stage", metric, "dataset", "train run"]).set_index("version")
