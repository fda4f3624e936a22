"""The AutoML-vs-champion comparison (visionops.sweep.automl): which metric compares with which,
the winner, the JSON written, and bad metrics files refused with the file and the field named."""

from __future__ import annotations

import json

import pytest

from visionops.errors import ConfigError
from visionops.sweep.automl import Comparison, compare, compare_files, read_metrics

AUTOML = {"mean_average_precision": 0.71, "precision": 0.8, "recall": 0.6, "loss": 1.2}  # as MLflow reports it
CHAMPION = {"run_id": "abc", "metrics": {"map50": 0.75, "map50_95": 0.5, "precision": 0.7, "recall": 0.6}}


def test_voc_compares_map_at_0_5_with_our_map50_and_writes_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(AUTOML))
    (tmp_path / "c.json").write_text(json.dumps(CHAMPION))
    out = tmp_path / "out" / "comparison.json"
    result = compare_files(tmp_path / "a.json", tmp_path / "c.json", out, champion_name="shapes-detector:1")
    rows = {r.automl_metric: r for r in result.rows}
    assert rows["mean_average_precision"].visionops_metric == "map50"
    assert rows["mean_average_precision"].difference == pytest.approx(-0.04)
    assert rows["precision"].better == "automl" and rows["recall"].better == "tie"
    assert result.winner == "visionops" and result.split == "test" and "in its favour" in result.note
    assert Comparison.model_validate_json(out.read_text()) == result


def test_coco_compares_with_map50_95_only():
    result = compare({"mean_average_precision": 0.55}, CHAMPION["metrics"], metric_type="coco")
    assert [(r.automl_metric, r.visionops_metric) for r in result.rows] == [("mean_average_precision", "map50_95")]
    assert result.winner == "automl"


@pytest.mark.parametrize(("automl", "message"), [
    ({"precision": 0.8, "recall": 0.6}, "field 'mean_average_precision' is missing"),
    ({**AUTOML, "mean_average_precision": "0.7"}, "is '0.7', not a number"),
    ({**AUTOML, "mean_average_precision": 71.0}, "outside 0..1"),
])
def test_bad_automl_metrics_name_the_field(automl, message):
    with pytest.raises(ConfigError, match=message):
        compare(automl, CHAMPION["metrics"], automl_source="best.json")


def test_a_bad_file_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"mean_average_precision":\n 0.7,,}')
    with pytest.raises(ConfigError, match=r"bad\.json: line 2: not JSON"):
        read_metrics(bad)
    bad.write_text("[0.7]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        read_metrics(bad)
    with pytest.raises(ConfigError, match="no such metrics file"):
        read_metrics(tmp_path / "missing.json")
