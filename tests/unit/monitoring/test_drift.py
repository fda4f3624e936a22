"""The drift statistics on synthetic production windows: real images (visionops.data.synthetic)
through the real `image_stats`, with predictions simulated from the images' true boxes through the
real `summarize`, so each side of a comparison is built exactly as collection and the baseline
build it. A shift that matters is flagged; same-distribution windows almost never are."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import numpy as np
import pytest
from PIL import Image

from visionops.data.synthetic import SyntheticSpec, render_image
from visionops.monitoring.drift import NUMERIC_COLUMNS, Thresholds, compare, psi
from visionops.monitoring.records import ModelRef, ProductionRecord, image_stats, summarize

KNOWN = ["circle", "rectangle"]  # what the simulated model was trained on
MODEL = ModelRef(name="shapes-detector", version="1", task="detect")
THRESHOLDS = Thresholds(p_value=0.01, psi=0.2, min_records=30)
BASELINE_SIZE = 200  # a realistic test split
WINDOW_SIZE = 150  # a day of a quiet line


def _predict(boxes: list, classes: list[str], rng: np.random.Generator) -> dict:
    """A detector that knows KNOWN: finds most known objects with high confidence, now and then a
    low-confidence false positive; an object type it never saw is missed or taken, unsure, for a
    rectangle (the endpoint's prediction dict, as `summarize` reads it)."""
    labels, confs = [], []
    for box in boxes:
        kind = classes[box.cls]
        if kind in KNOWN:
            if rng.uniform() < 0.92:
                labels.append(kind)
                confs.append(float(rng.beta(8, 2)))
        elif rng.uniform() < 0.6:
            labels.append("rectangle")
            confs.append(float(rng.uniform(0.25, 0.5)))
    if rng.uniform() < 0.1:
        labels.append(KNOWN[int(rng.integers(2))])
        confs.append(float(rng.uniform(0.25, 0.4)))
    return {"labels": labels, "confidences": confs}


@cache
def _records(n: int, seed: int, classes: tuple[str, ...] = tuple(KNOWN), dim: float = 1.0) -> tuple:
    """n production records of images drawn from `classes`, their pixels scaled by `dim`."""
    spec = SyntheticSpec(image_size=96, min_objects=1, max_objects=3, classes=list(classes), seed=seed)
    rng = np.random.default_rng(seed + 10_000)
    out = []
    for i in range(n):
        img, boxes = render_image(spec, "test", i)
        if dim != 1.0:
            img = Image.fromarray((np.asarray(img, dtype=np.float32) * dim).astype(np.uint8))
        prediction = summarize("detect", _predict(boxes, list(classes), rng))
        out.append(ProductionRecord(model=MODEL, image=image_stats(img), prediction=prediction))
    return tuple(out)


def _baseline() -> tuple:
    return _records(BASELINE_SIZE, 0)


def test_darker_images_are_flagged_on_brightness():
    report = compare(_baseline(), _records(WINDOW_SIZE, 101, dim=0.5), THRESHOLDS, model="shapes-detector:1")
    assert report.status == "drift"
    brightness = next(c for c in report.columns if c.column == "brightness")
    assert brightness.drifted and brightness.p_value < report.alpha_per_column and brightness.psi > 1.0
    assert brightness.window_median < brightness.baseline_median * 0.6
    assert "class" not in report.drifted_columns  # the objects did not change


def test_an_object_type_the_model_never_saw_is_flagged():
    # a third of the line's images now show triangles, which the model never learnt
    shifted = _records(100, 102) + _records(50, 103, classes=("triangle",))
    report = compare(_baseline(), shifted, THRESHOLDS, model="shapes-detector:1")
    assert report.status == "drift"
    drifted = set(report.drifted_columns)
    # seen as unsure rectangles or missed: the confidences move most (the class mix leans a little
    # towards rectangles, too little for PSI to call it large: the confidence columns carry the signal)
    assert {"confidence", "low_conf_frac"} <= drifted, report.columns
    assert not drifted & {"brightness", "contrast", "width", "height", "aspect"}


def test_a_label_the_baseline_never_had_is_counted_not_divided_by_zero():
    window = [r.model_copy(update={"prediction": summarize("detect", {"labels": ["triangle"], "confidences": [0.9]})})
              for r in _records(WINDOW_SIZE, 104)]
    report = compare(_baseline(), window, THRESHOLDS, model="shapes-detector:1")
    cls = next(c for c in report.columns if c.column == "class")
    assert cls.new_labels == ["triangle"]
    assert cls.drifted and np.isfinite(cls.statistic) and np.isfinite(cls.psi)


def test_at_most_one_false_alarm_in_20_same_distribution_windows():
    reports = [compare(_baseline(), _records(WINDOW_SIZE, 200 + seed), THRESHOLDS, model="m:1")
               for seed in range(20)]
    alarms = [(i, r.drifted_columns) for i, r in enumerate(reports) if r.status == "drift"]
    assert all(r.status in ("ok", "drift") for r in reports)
    assert len(alarms) <= 1, alarms


def test_a_small_window_is_insufficient_data_not_drift():
    dark = _records(THRESHOLDS.min_records - 1, 105, dim=0.3)  # a huge shift, but too few records to tell
    report = compare(_baseline(), dark, THRESHOLDS, model="m:1")
    assert report.status == "insufficient_data"
    assert not report.drifted_columns
    assert all(c.status == "insufficient_data" and "drift_min_records" in c.reason for c in report.columns)


def test_a_column_with_too_few_values_is_insufficient_while_the_others_are_tested():
    # every image with a box but only 5 with a low-confidence one: max_conf has all values, yet a
    # window where nothing was found leaves the confidence columns empty
    empty = [r.model_copy(update={"prediction": summarize("detect", {})}) for r in _records(WINDOW_SIZE, 106)]
    report = compare(_baseline(), empty, THRESHOLDS, model="m:1")
    by_name = {c.column: c for c in report.columns}
    for name in ("max_conf", "mean_conf", "low_conf_frac", "confidence", "class"):
        assert by_name[name].status == "insufficient_data" and by_name[name].n_window == 0
    assert by_name["count"].drifted  # no boxes at all is itself the shift
    assert report.status == "drift"


def test_bonferroni_divides_the_level_by_the_columns_tested():
    report = compare(_baseline(), _records(WINDOW_SIZE, 107), THRESHOLDS, model="m:1")
    tested = [c for c in report.columns if c.status != "insufficient_data"]
    assert len(tested) == len(NUMERIC_COLUMNS) + 1
    assert report.alpha_per_column == pytest.approx(THRESHOLDS.p_value / len(tested))


def test_psi_is_zero_for_identical_samples_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 2000)
    assert psi(base, base) == pytest.approx(0.0, abs=1e-9)
    small, large = psi(base, rng.normal(0.1, 1, 2000)), psi(base, rng.normal(1.0, 1, 2000))
    assert small < 0.1 < 0.2 < large
    assert psi([1, 1, 2, 2], [1, 1, 1, 1]) > psi([1, 1, 2, 2], [1, 1, 2, 1])  # discrete values: a bin each


def test_the_report_round_trips_through_json():
    from visionops.monitoring.drift import DriftReport

    report = compare(_baseline(), _records(WINDOW_SIZE, 108), THRESHOLDS, model="m:1", skipped=3)
    again = DriftReport.model_validate_json(report.model_dump_json())
    assert again == report and again.skipped == 3


def test_corrupt_lines_are_skipped_and_counted_in_the_report(tmp_path):
    from visionops.monitoring.collect import read_records

    good = _records(40, 109)
    lines = [r.model_dump_json() for r in good]
    lines.insert(5, '{"schema_version": 1, "time": "2026-')  # truncated by a crash
    lines.insert(12, "not json at all")
    lines.insert(20, '{"schema_version": 1}')  # JSON, but not a record
    (tmp_path / "records-000.jsonl").write_text("\n".join(lines) + "\n")
    window, skipped = read_records(tmp_path)
    assert (len(window), skipped) == (40, 3)
    report = compare(_baseline(), window, THRESHOLDS, model="m:1", skipped=skipped)
    assert report.skipped == 3 and report.n_window == 40


class _TopLabel:
    """A classifier as `build_baseline` sees one (the Predictor interface it uses): "dark" below a
    mean luma of 100, else "light", top-2 with probabilities."""

    name, version, task, runtime = "signs-classifier", "4", "classify", "onnx"

    def predict(self, images, *, conf):
        from visionops.serving.classify import Classification

        out = []
        for img in images:
            dark = float(np.asarray(img.convert("L")).mean()) < 100
            labels = ["dark", "light"] if dark else ["light", "dark"]
            out.append(Classification(width=img.width, height=img.height, labels=labels, class_ids=[0, 1],
                                      probabilities=[0.8, 0.2]))
        return out


def test_a_classifier_baseline_has_one_top1_prediction_per_image(tmp_path):
    from visionops.monitoring.baseline import build_baseline, read_baseline, write_baseline

    paths = []
    for i, grey in enumerate((40, 200, 220)):
        paths.append(tmp_path / f"{i}.jpg")
        Image.new("RGB", (80, 60), (grey,) * 3).save(paths[-1])
    records = build_baseline(paths, _TopLabel())
    assert [r.prediction.labels for r in records] == [["dark"], ["light"], ["light"]]
    assert all(r.prediction.count == 1 and r.prediction.confidences == [0.8] for r in records)
    assert records[0].model.task == "classify" and records[0].image.width == 80
    again = read_baseline(write_baseline(records, tmp_path / "baseline.jsonl"))
    assert again == records


def test_a_damaged_baseline_is_an_error_naming_file_and_line(tmp_path):
    from visionops.errors import DataValidationError
    from visionops.monitoring.baseline import read_baseline

    path = tmp_path / "baseline.jsonl"
    path.write_text(_baseline()[0].model_dump_json() + "\n{not json\n")
    with pytest.raises(DataValidationError, match=r"baseline.jsonl:2: .*--rebuild-baseline"):
        read_baseline(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", datetime(2026, 11, 24, 12, tzinfo=UTC)), ("12h", datetime(2026, 12, 1, 0, tzinfo=UTC)),
    ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
    ("2026-11-30T08:00+01:00", datetime(2026, 11, 30, 7, tzinfo=UTC)),
])
def test_window_bounds_parse_durations_and_iso_times(text, expected):
    from visionops.cli.monitor import parse_when

    assert parse_when(text, "--since", now=datetime(2026, 12, 1, 12, tzinfo=UTC)) == expected
