"""`visionops predict`: score a folder (or glob) of images with the production model, in batches.

A detector's records hold boxes and COCO results are written too; a classifier's records hold the
top-k labels with probabilities, and no COCO file (COCO results are a detection format).

The work is visionops.serving.batch's; this module only parses options, shows a progress bar and
prints the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from visionops.cli._app import _settings, app, console, err_console


@app.command("predict")
def predict_cmd(
    source: Annotated[str, typer.Argument(help="A folder (sub-folders too), an image, or a quoted glob 'a/**/*.jpg'.")],
    model: Annotated[str | None, typer.Option(
        help="name:version, or a name (its production version); default: the production model.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (predictions.jsonl; for a detector also coco_results.json, coco_images.json); "
             "default: outputs/predictions/<source folder name>. A rerun into it scores only new images.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per ONNX Runtime call (VISIONOPS_BATCH_SIZE).")] = None,
    conf: Annotated[float, typer.Option(help="Confidence threshold (detection).")] = 0.25,
    iou: Annotated[float, typer.Option(help="NMS IoU threshold (detection).")] = 0.7,
    top_k: Annotated[int | None, typer.Option(
        min=1, help="Labels per image, best first (classification; default 5, capped at the classes).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start the output over instead of resuming.")] = False,
) -> None:
    """Score images with ONNX Runtime in batches: one JSONL record per image (or its error), plus COCO results
    for a detector."""
    from visionops.serving.batch import (
        image_source,
        load_runner,
        predict_folder,
        require_images,
        resolve_model,
        scoring_threads,
    )

    s = _settings()
    src = image_source(source)
    total = require_images(src)  # before loading anything: an empty folder fails in a second
    ref, folder = resolve_model(s, model)
    threads, readers = scoring_threads()
    if s.threads:  # VISIONOPS_THREADS caps the whole command
        threads, readers = max(1, s.threads - 1), 1
    runner = load_runner(folder, threads=threads, name=ref.name, version=ref.version)
    target = out or s.outputs_dir / "predictions" / (src.root.name or "images")
    mode = "batched" if runner.batched else "one image per call"
    model_task = runner.predictor.task
    console.print(f"model          {ref.name} v{ref.version} ({model_task}, onnx, {mode}, {threads} thread(s) + "
                  f"{readers} reader(s))")
    console.print(f"images         {total} under {src.describe()}")
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("scoring", total=total)
        summary = predict_folder(
            runner, src, target, batch_size=batch_size or s.batch_size, conf=conf, iou=iou, top_k=top_k,
            max_pixels=s.max_image_pixels, overwrite=overwrite, readers=readers,
            on_start=lambda started: progress.advance(task, started.skipped),
            on_record=lambda _: progress.advance(task),
        )
    found = f"{summary.detections} detection(s), " if summary.coco_results is not None else ""
    console.print(f"scored         {summary.scored} image(s), {found}{summary.images_per_s:.1f} images/s")
    console.print(f"skipped        {summary.skipped} already in {summary.predictions}")
    if summary.failed:
        console.print(f"[yellow]errors[/]         {summary.failed} image(s) could not be read (error records):")
        for e in summary.errors:
            console.print(f"               {e['file']}: {e['code']}: {e['message']}", highlight=False)
    console.print(f"predictions    {summary.predictions}")
    if summary.coco_results is not None:
        console.print(f"coco results   {summary.coco_results} (images: {summary.coco_images})")
    else:
        console.print(f"coco results   not written: {model_task} model (COCO results are for detection; the labels and "
                      "probabilities are in the JSONL)")

