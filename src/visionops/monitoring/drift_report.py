"""The drift report as files: `drift_report.json` (the `DriftReport`, for pipelines and tools) and
`drift_report.html`, one self-contained page (figures embedded as base64 PNG, inline CSS, no
script, nothing fetched) that opens from a pipeline artifact, an e-mail or a file share.

The page: the verdict, the thresholds, a table of every column (test, statistic, p-value, PSI,
medians, counts, why), and per column the baseline's and the window's distributions overlaid
(histograms on shared bins; the class mix as side-by-side bars of shares).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from visionops.monitoring.drift import CLASS_COLUMN, ColumnDrift, DriftReport, class_counts, column_values
from visionops.monitoring.records import ProductionRecord

REPORT_JSON = "drift_report.json"
REPORT_HTML = "drift_report.html"
_BASE, _WINDOW = "#4C72B0", "#DD8452"
_STATUS_COLOUR = {"ok": "#2e7d32", "drift": "#c62828", "insufficient_data": "#8d6e00"}
_CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0 24px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td.l { text-align: left; }
.status { font-weight: bold; color: white; padding: 2px 8px; border-radius: 3px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; } .grid figure { margin: 0; }
figcaption { font-size: 12px; text-align: center; }
"""


def write_report(report: DriftReport, baseline: Sequence[ProductionRecord], window: Sequence[ProductionRecord],
                 out: Path) -> dict[str, Path]:
    """Write the JSON and the HTML report into `out`; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / REPORT_JSON, "html": out / REPORT_HTML}
    paths["json"].write_text(report.model_dump_json(indent=2), encoding="utf-8")
    paths["html"].write_text(render_html(report, baseline, window), encoding="utf-8")
    return paths


def render_html(report: DriftReport, baseline: Sequence[ProductionRecord], window: Sequence[ProductionRecord]) -> str:
    """The whole page as one string."""
    e = html.escape
    window_span = (f"{report.window_start:%Y-%m-%d %H:%M} to {report.window_end:%Y-%m-%d %H:%M} UTC"
                   if report.window_start and report.window_end else "no records")
    t = report.thresholds
    alpha = f"{report.alpha_per_column:.3g}" if report.alpha_per_column is not None else "-"
    figures = "".join(
        f"<figure><img alt='{e(c.column)}' src='data:image/png;base64,{_figure(c, baseline, window)}'/>"
        f"<figcaption>{e(c.column)}: {e(c.status)}</figcaption></figure>"
        for c in report.columns
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report {e(report.model)}</title>
<style>{_CSS}</style></head><body>
<h1>Drift report: {e(report.model)}
 <span class="status" style="background:{_STATUS_COLOUR[report.status]}">{e(report.status)}</span></h1>
<p>Window: {report.n_window} record(s), {e(window_span)}; baseline: {report.n_baseline} test image(s);
{report.skipped} corrupt line(s) skipped. Created {report.created:%Y-%m-%d %H:%M} UTC.</p>
<p>A column drifts when its test's p-value is below {t.p_value:g} / columns tested = {alpha} (Bonferroni)
<b>and</b> its PSI is above {t.psi:g}; columns with fewer than {t.min_records} window values are not tested.</p>
{_table(report.columns)}
<h2>Distributions (baseline <span style="color:{_BASE}">blue</span>,
 window <span style="color:{_WINDOW}">orange</span>)</h2>
<div class="grid">{figures}</div>
</body></html>
"""


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _table(columns: Sequence[ColumnDrift]) -> str:
    head = ("column", "test", "statistic", "p-value", "PSI", "baseline median", "window median", "n baseline",
            "n window", "status", "why")
    rows = []
    for c in columns:
        why = c.reason + (f"; new labels: {', '.join(c.new_labels)}" if c.new_labels else "")
        cells = [f"<td class='l'>{html.escape(c.column)}</td>", f"<td class='l'>{c.test}</td>",
                 *(f"<td>{x}</td>" for x in (_num(c.statistic, ".3f"), _num(c.p_value, ".2g"), _num(c.psi, ".3f"),
                                             _num(c.baseline_median, ".3g"), _num(c.window_median, ".3g"),
                                             c.n_baseline, c.n_window)),
                 f"<td class='l' style='color:{_STATUS_COLOUR[c.status]}'><b>{c.status}</b></td>",
                 f"<td class='l'>{html.escape(why)}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def _figure(column: ColumnDrift, baseline: Sequence[ProductionRecord], window: Sequence[ProductionRecord]) -> str:
    fig = Figure(figsize=(3.6, 2.6), layout="constrained")
    ax = fig.add_subplot()
    if column.column == CLASS_COLUMN:
        _class_bars(ax, baseline, window)
    else:
        _histograms(ax, column_values(baseline, column.column), column_values(window, column.column))
    ax.set_title(column.column, fontsize=10)
    ax.tick_params(labelsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _histograms(ax, base: list[float], win: list[float]) -> None:
    values = np.asarray(base + win, dtype=float)
    if values.size == 0:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        return
    lo, hi = float(values.min()), float(values.max())
    whole = np.allclose(values, values.round()) and hi - lo <= 40  # counts, sizes: a bar per value
    bins = np.arange(lo, hi + 2) - 0.5 if whole else np.linspace(lo, hi if hi > lo else lo + 1, 25)
    for data, colour, label in ((base, _BASE, "baseline"), (win, _WINDOW, "window")):
        if data:
            ax.hist(data, bins=bins, density=True, alpha=0.55, color=colour, label=f"{label} ({len(data)})")
    ax.legend(fontsize=7)


def _class_bars(ax, baseline: Sequence[ProductionRecord], window: Sequence[ProductionRecord]) -> None:
    b, w = class_counts(baseline), class_counts(window)
    labels = sorted(set(b) | set(w))
    if not labels:
        ax.text(0.5, 0.5, "no labels", ha="center", va="center", transform=ax.transAxes)
        return
    x = np.arange(len(labels))
    for offset, counts, colour, label in ((-0.2, b, _BASE, "baseline"), (0.2, w, _WINDOW, "window")):
        total = sum(counts.values()) or 1
        ax.bar(x + offset, [counts.get(k, 0) / total for k in labels], width=0.4, color=colour, label=label)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("share", fontsize=8)
    ax.legend(fontsize=7)


def plot_columns(report: DriftReport, baseline: Sequence[ProductionRecord], window: Sequence[ProductionRecord],
                 columns: Sequence[str] | None = None) -> Figure:
    """The report's distributions (baseline vs window) for `columns` (default: the drifted ones, else
    the image columns) in one figure, for a notebook: the same drawing as the HTML page."""
    wanted = list(columns) if columns is not None else (report.drifted_columns
                                                        or ["brightness", "contrast", "sharpness"])
    chosen = [c for c in report.columns if c.column in wanted]
    fig = Figure(figsize=(3.4 * max(len(chosen), 1), 2.8), layout="constrained")
    for i, column in enumerate(chosen, start=1):
        ax = fig.add_subplot(1, len(chosen), i)
        if column.column == CLASS_COLUMN:
            _class_bars(ax, baseline, window)
        else:
            _histograms(ax, column_values(baseline, column.column), column_values(window, column.column))
        ax.set_title(f"{column.column}: {column.status}", fontsize=10)
        ax.tick_params(labelsize=8)
    return fig
