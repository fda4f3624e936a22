"""One monitoring pass: a window of production records against the model's registration baseline,
written as a report. `visionops monitor`, notebook 08 and the scheduled pipeline all call `monitor`,
so the window, the baseline and the rule are chosen in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionops.errors import ConfigError, VisionOpsError
from visionops.monitoring.drift import DriftReport

if TYPE_CHECKING:
    from visionops.settings import Settings


@dataclass(frozen=True)
class MonitorResult:
    """What a monitoring pass found and where it wrote it."""

    report: DriftReport
    html: Path
    json: Path
    records_dir: Path
    model: Any  # the registry's ModelVersionRef the window was compared for
    baseline_built: bool  # True when the baseline did not exist and was built (and stored) now
    baseline: list[Any]  # the ProductionRecords compared: the baseline's and the window's
    window: list[Any]

    @property
    def baseline_images(self) -> int:
        return len(self.baseline)


def model_ref(settings: Settings, spec: str | None) -> Any:
    """The registry entry of `name:version`, `name` (its production version) or the production model."""
    from visionops import registry

    return registry.resolve(settings, spec)


def monitor(settings: Settings, *, model: str | None = None, records: Path | None = None,
            since: datetime | None = None, until: datetime | None = None, out: Path | None = None,
            rebuild_baseline: bool = False) -> MonitorResult:
    """Compare the records of `model` (default: the production model) collected in `records`
    (default: settings.production_dir) between `since` and `until` with its baseline; write
    drift_report.html/.json to `out` (default: outputs/monitoring/<UTC time>)."""
    from visionops.monitoring.baseline import ensure_baseline
    from visionops.monitoring.collect import read_records
    from visionops.monitoring.drift import Thresholds, compare, of_model
    from visionops.monitoring.drift_report import write_report

    if since is not None and until is not None and since >= until:
        raise ConfigError(f"the window starts ({since.isoformat()}) at or after its end ({until.isoformat()})")
    folder = Path(records) if records is not None else settings.production_dir
    try:  # before the registry is asked anything: a wrong folder fails in a second
        found, skipped = read_records(folder, since, until)
    except FileNotFoundError as exc:
        raise VisionOpsError(str(exc)) from None
    ref = model_ref(settings, model)
    window, excluded = of_model(found, ref.name, ref.version)
    baseline, built = ensure_baseline(settings, ref, rebuild=rebuild_baseline)
    report = compare(baseline, window, Thresholds.from_settings(settings), model=f"{ref.name}:{ref.version}",
                     skipped=skipped, excluded=excluded)
    target = Path(out) if out is not None else settings.outputs_dir / "monitoring" / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%SZ")
    paths = write_report(report, baseline, window, target)
    return MonitorResult(report=report, html=Path(paths["html"]), json=Path(paths["json"]), records_dir=folder,
                         model=ref, baseline_built=built, baseline=list(baseline), window=list(window))
