"""Drift statistics: a window of production records against the registration baseline, column by column.

Pure functions over `ProductionRecord`s (no I/O): `compare` returns a `DriftReport`, which the HTML
report (drift_report.py) and `visionops monitor` render.

What is compared (both sides are the same `image_stats` and `summarize`, see records.py):

- numeric columns, one value per record: the image's width, height, aspect, brightness, contrast and
  sharpness; the prediction's count (boxes per image), max_conf, mean_conf and low_conf_frac (a
  record without a box has no max/mean/low_conf value and is left out of those three);
- `confidence`: every box confidence (top-1 probability for a classifier), pooled over the records;
- `class`: the predicted labels, pooled (class mix).

Tests: scipy's two-sample Kolmogorov-Smirnov test for a numeric column, scipy's chi-squared test of
homogeneity (a 2 x K contingency table: baseline counts and window counts per label) for the class
mix. A label the baseline never showed (the model predicts a class its test split never produced,
or an object type it never saw is taken for one) is simply another column of that table, so it
raises the statistic instead of dividing by a zero expectation.

A column drifts when both say so: the test's p-value is below `drift_p_value` divided by the number
of columns tested (Bonferroni: over the dozen columns of one report the chance of any false alarm
stays at most `drift_p_value`, whatever the dependence between columns), and the population
stability index (PSI) is above `drift_psi`. The test says a shift is real; PSI says it is large
enough to matter (with thousands of records a KS test finds shifts nobody cares about, and with
a few dozen PSI swings on noise alone). Pooled columns (`confidence`, `class`) count boxes, which
are not independent within an image; their p-values are optimistic, PSI keeps them honest.

A column with fewer than `drift_min_records` window values (or no baseline value) is reported as
`insufficient_data`, never as drift; a window with fewer records than that makes the whole report
`insufficient_data`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from visionops.monitoring.records import ProductionRecord

if TYPE_CHECKING:
    from visionops.settings import Settings

Status = Literal["ok", "drift", "insufficient_data"]
PSI_BINS = 10
# Added to every bin's count before PSI's log ratio: an empty bin on one side (routine with a few
# dozen records) would otherwise make the index infinite, or huge with a tiny floor. Half a count
# is the Jeffreys prior of a multinomial, the usual small-sample choice.
PSI_PSEUDOCOUNT = 0.5

Extract = Callable[[ProductionRecord], list[float]]


def _one(value: float | int | None) -> list[float]:
    return [] if value is None else [float(value)]


NUMERIC_COLUMNS: dict[str, Extract] = {
    "brightness": lambda r: _one(r.image.brightness),
    "contrast": lambda r: _one(r.image.contrast),
    "sharpness": lambda r: _one(r.image.sharpness),
    "aspect": lambda r: _one(r.image.aspect),
    "width": lambda r: _one(r.image.width),
    "height": lambda r: _one(r.image.height),
    "count": lambda r: _one(r.prediction.count),
    "max_conf": lambda r: _one(r.prediction.max_conf),
    "mean_conf": lambda r: _one(r.prediction.mean_conf),
    "low_conf_frac": lambda r: _one(r.prediction.low_conf_frac),
    "confidence": lambda r: [float(c) for c in r.prediction.confidences],
}
CLASS_COLUMN = "class"
COLUMNS: tuple[str, ...] = (*NUMERIC_COLUMNS, CLASS_COLUMN)


class Thresholds(BaseModel):
    """The decision rule (from settings: drift_p_value, drift_psi, drift_min_records)."""

    p_value: float = Field(0.01, gt=0.0, lt=1.0, description="family-wise false-alarm level of one report")
    psi: float = Field(0.2, gt=0.0)
    min_records: int = Field(30, ge=2)

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(p_value=settings.drift_p_value, psi=settings.drift_psi, min_records=settings.drift_min_records)


class ColumnDrift(BaseModel):
    column: str
    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2"]
    statistic: float | None = None
    p_value: float | None = None
    psi: float | None = None
    drifted: bool = False
    status: Status
    n_baseline: int
    n_window: int
    baseline_median: float | None = None
    window_median: float | None = None
    new_labels: list[str] = Field(default_factory=list, description="labels in the window the baseline never had")
    reason: str = ""


class DriftReport(BaseModel):
    status: Status
    model: str = Field(description="name:version of the model whose baseline was compared")
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    window_start: datetime | None = None
    window_end: datetime | None = None
    n_baseline: int
    n_window: int
    skipped: int = Field(0, description="corrupt or unreadable production lines skipped while reading the window")
    excluded: int = Field(0, description="records in the window's time range from other models or versions, left out")
    thresholds: Thresholds
    alpha_per_column: float | None = Field(None, description="p_value / columns tested (Bonferroni)")
    columns: list[ColumnDrift]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


def of_model(records: Sequence[ProductionRecord], name: str, version: str
             ) -> tuple[list[ProductionRecord], int]:
    """(the records scored by model `name` version `version`, how many others were left out): a
    window compared with one version's baseline must hold that version's answers only."""
    kept = [r for r in records if r.model.name == name and r.model.version == str(version)]
    return kept, len(records) - len(kept)


def column_values(records: Sequence[ProductionRecord], column: str) -> list[float]:
    """All values of a numeric column over `records` (records without one contribute nothing)."""
    extract = NUMERIC_COLUMNS[column]
    return [v for r in records for v in extract(r)]


def class_counts(records: Sequence[ProductionRecord]) -> Counter[str]:
    """Predicted labels, pooled over the records."""
    return Counter(label for r in records for label in r.prediction.labels)


def psi(baseline: Sequence[float], window: Sequence[float], bins: int = PSI_BINS) -> float:
    """Population stability index of `window` against `baseline`: sum (w - b) * ln(w / b) over bins.

    Written here because no package of this environment provides it (scipy and numpy do not).
    Bins: one per distinct value when both samples together have at most `bins` of them (counts,
    sizes), else the baseline's quantiles (equal-mass bins, the usual choice), outer bins open."""
    b = np.asarray(baseline, dtype=float)
    w = np.asarray(window, dtype=float)
    values = np.unique(np.concatenate([b, w]))
    if len(values) <= bins:
        b_counts = np.array([(b == v).sum() for v in values], dtype=float)
        w_counts = np.array([(w == v).sum() for v in values], dtype=float)
    else:
        inner = np.unique(np.quantile(b, np.linspace(0, 1, bins + 1)[1:-1]))
        b_counts = np.bincount(np.searchsorted(inner, b, side="right"), minlength=len(inner) + 1).astype(float)
        w_counts = np.bincount(np.searchsorted(inner, w, side="right"), minlength=len(inner) + 1).astype(float)
    return _psi_from_counts(b_counts, w_counts)


def _psi_from_counts(b_counts: np.ndarray, w_counts: np.ndarray) -> float:
    bp = (b_counts + PSI_PSEUDOCOUNT) / (b_counts.sum() + PSI_PSEUDOCOUNT * len(b_counts))
    wp = (w_counts + PSI_PSEUDOCOUNT) / (w_counts.sum() + PSI_PSEUDOCOUNT * len(w_counts))
    return float(np.sum((wp - bp) * np.log(wp / bp)))


def _numeric(column: str, baseline: list[float], window: list[float], min_records: int) -> ColumnDrift:
    base = ColumnDrift(column=column, kind="numeric", test="ks", status="insufficient_data",
                       n_baseline=len(baseline), n_window=len(window),
                       baseline_median=float(np.median(baseline)) if baseline else None,
                       window_median=float(np.median(window)) if window else None)
    if missing := _too_few(len(baseline), len(window), min_records):
        return base.model_copy(update={"reason": missing})
    result = stats.ks_2samp(baseline, window)
    return base.model_copy(update={"statistic": float(result.statistic), "p_value": float(result.pvalue),
                                   "psi": psi(baseline, window), "status": "ok"})


def _categorical(baseline: Counter[str], window: Counter[str], min_records: int) -> ColumnDrift:
    n_b, n_w = sum(baseline.values()), sum(window.values())
    new = sorted(set(window) - set(baseline))
    base = ColumnDrift(column=CLASS_COLUMN, kind="categorical", test="chi2", status="insufficient_data",
                       n_baseline=n_b, n_window=n_w, new_labels=new)
    if missing := _too_few(n_b, n_w, min_records):
        return base.model_copy(update={"reason": missing})
    labels = sorted(set(baseline) | set(window))
    b_counts = np.array([baseline.get(k, 0) for k in labels], dtype=float)
    w_counts = np.array([window.get(k, 0) for k in labels], dtype=float)
    if len(labels) < 2:  # one label on both sides: nothing can differ
        statistic, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(np.vstack([b_counts, w_counts]))
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return base.model_copy(update={"statistic": statistic, "p_value": p_value,
                                   "psi": _psi_from_counts(b_counts, w_counts), "status": "ok"})


def _too_few(n_baseline: int, n_window: int, min_records: int) -> str:
    if n_baseline == 0:
        return "the baseline has no value in this column"
    if n_window < min_records:
        return f"{n_window} window value(s), fewer than drift_min_records={min_records}"
    return ""


def compare(
    baseline: Sequence[ProductionRecord],
    window: Sequence[ProductionRecord],
    thresholds: Thresholds,
    *,
    model: str,
    skipped: int = 0,
    excluded: int = 0,
) -> DriftReport:
    """The drift report of `window` against `baseline` (see the module docstring for the rule)."""
    columns = [_numeric(c, column_values(baseline, c), column_values(window, c), thresholds.min_records)
               for c in NUMERIC_COLUMNS]
    columns.append(_categorical(class_counts(baseline), class_counts(window), thresholds.min_records))
    times = sorted(r.time for r in window)
    common = {"model": model, "n_baseline": len(baseline), "n_window": len(window), "skipped": skipped,
              "excluded": excluded,
              "thresholds": thresholds, "window_start": times[0] if times else None,
              "window_end": times[-1] if times else None}
    if len(window) < thresholds.min_records:
        reason = f"the window has {len(window)} record(s), fewer than drift_min_records={thresholds.min_records}"
        columns = [c.model_copy(update={"status": "insufficient_data", "drifted": False, "statistic": None,
                                        "p_value": None, "psi": None, "reason": reason}) for c in columns]
        return DriftReport(status="insufficient_data", columns=columns, **common)
    tested = [c for c in columns if c.status == "ok"]
    if not tested:
        return DriftReport(status="insufficient_data", columns=columns, **common)
    alpha = thresholds.p_value / len(tested)
    decided = [_decide(c, alpha, thresholds.psi) for c in columns]
    status: Status = "drift" if any(c.drifted for c in decided) else "ok"
    return DriftReport(status=status, columns=decided, alpha_per_column=alpha, **common)


def _decide(column: ColumnDrift, alpha: float, psi_threshold: float) -> ColumnDrift:
    if column.status != "ok" or column.p_value is None or column.psi is None:
        return column
    significant, large = column.p_value < alpha, column.psi > psi_threshold
    drifted = significant and large
    if drifted:
        reason = f"p={column.p_value:.2g} < {alpha:.2g} and PSI {column.psi:.2f} > {psi_threshold:g}"
    elif significant:
        reason = f"significant (p={column.p_value:.2g}) but small (PSI {column.psi:.2f} <= {psi_threshold:g})"
    elif large:
        reason = f"PSI {column.psi:.2f} > {psi_threshold:g} but not significant (p={column.p_value:.2g} >= {alpha:.2g})"
    else:
        reason = "no shift"
    return column.model_copy(update={"drifted": drifted, "status": "drift" if drifted else "ok", "reason": reason})
