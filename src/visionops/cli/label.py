"""`visionops label export`: the production images the model was unsure about, as a labeling batch
(visionops.monitoring.labeling); `visionops data import <batch> --into NAME` brings it back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionops.cli._app import _settings, app, console
from visionops.cli.monitor import parse_when
from visionops.errors import ConfigError

label_app = typer.Typer(help="Human in the loop: production images to label, and back.", no_args_is_help=True)
app.add_typer(label_app, name="label")


@label_app.command("export")
def label_export_cmd(
    model: Annotated[str | None, typer.Option(
        help="name:version, or a name (its production version); default: the production model.")] = None,
    records: Annotated[Path | None, typer.Option(
        help="Collection folder (default: VISIONOPS_COLLECT_DIR or outputs/production).")] = None,
    since: Annotated[str | None, typer.Option(help="Window start: ISO date/time or a duration back (7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Window end (exclusive), same forms as --since.")] = None,
    threshold: Annotated[float, typer.Option(
        help="Confidence below which a box or top-1 probability counts as unsure.")] = 0.5,
    limit: Annotated[int, typer.Option(help="Most images in the batch (the most uncertain first).")] = 100,
    out: Annotated[Path | None, typer.Option(
        help="New folder for the batch (default: outputs/labeling/<UTC time>).")] = None,
) -> None:
    """Pick low-confidence, empty and unusual production images (sampled ones) into a labeling batch:
    images/, annotations.json (COCO, the model's predictions as pre-labels) and batch.json."""
    from visionops.monitoring.labeling import label_export

    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold {threshold}: expected a confidence between 0 and 1")
    summary = label_export(_settings(), model=model, records=records, since=parse_when(since, "--since"),
                           until=parse_when(until, "--until"), out=out, threshold=threshold, limit=limit)
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(summary.reasons.items())) or "none"
    console.print(f"labeling batch {summary.folder}: {summary.picked} image(s) ({reasons}) of "
                  f"{summary.candidates} candidate(s) in {summary.considered} record(s)")
    if summary.missing_samples:
        console.print(f"[yellow]{summary.missing_samples} candidate(s) had no saved image[/] (sampling off or the "
                      "file is gone): set VISIONOPS_COLLECT_SAMPLE_RATE to keep images for labeling",
                      highlight=False)
    console.print("next: label it (docs/labeling.md), then: visionops data import "
                  f"{summary.folder} --into <data set name>")
