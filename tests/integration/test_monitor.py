"""The drift loop end to end on the smoke lifecycle's registered model: the baseline written at
registration (an MLflow artifact of the version's run, loadable back), and `visionops monitor` on
production records: exit 0 without drift, 3 with it, 0 with a warning on too few records, 1 on
an error; the HTML and JSON reports written each time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("visionops"))
WINDOW = 60  # records per simulated production window (more than drift_min_records=30)


@pytest.fixture(scope="module")
def champion(smoke_run, smoke_settings):
    from visionops import registry

    return registry.get_version(smoke_settings, smoke_run.result.registration.version,
                                smoke_run.result.registration.model_name)


@pytest.fixture(scope="module")
def baseline(champion, smoke_settings):
    from visionops.monitoring.baseline import load_baseline

    return load_baseline(smoke_settings, champion)


def _monitor(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, "monitor", *args], env=env, capture_output=True, text=True, timeout=300)


def _window(baseline, folder: Path, n: int = WINDOW, dim: float = 1.0) -> Path:
    """n production records cycling over the baseline's images (as if the line kept showing the
    test split), their brightness scaled by `dim`, stamped over the last hour."""
    now = datetime.now(UTC)
    lines = []
    for i in range(n):
        rec = baseline[i % len(baseline)]
        image = rec.image.model_copy(update={"brightness": rec.image.brightness * dim})
        lines.append(rec.model_copy(update={"image": image, "time": now - timedelta(seconds=30 * (n - i)),
                                            "correlation_id": f"req-{i}"}).model_dump_json())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records-test.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_registration_stored_the_test_split_baseline_with_the_version(smoke_run, champion, baseline, smoke_settings):
    import mlflow

    from visionops.data.kinds import data_kind
    from visionops.monitoring.baseline import ARTIFACT_PATH, RECORDS_TAG

    dataset = Path(smoke_run.result.dataset.path)
    n_test = len(data_kind(dataset).samples(dataset, ("test",)))
    assert len(baseline) == n_test > 0
    assert champion.tags[RECORDS_TAG] == str(n_test)
    artifacts = [f.path for f in mlflow.MlflowClient().list_artifacts(champion.run_id, "monitoring")]
    assert ARTIFACT_PATH in artifacts
    rec = baseline[0]
    assert (rec.model.name, rec.model.version, rec.model.task) == (champion.name, champion.version, "detect")
    assert rec.model.runtime == "onnx"  # what the endpoint runs
    assert rec.image.width == rec.image.height == 96 and rec.prediction.task == "detect"


def test_monitor_exit_codes_and_reports(baseline, session_root, tmp_path):
    same = _monitor(session_root, "--records", str(_window(baseline, tmp_path / "same")),
                    "--out", str(tmp_path / "out-same"))
    assert same.returncode == 0, same.stdout + same.stderr
    report = json.loads((tmp_path / "out-same" / "drift_report.json").read_text())
    assert report["status"] == "ok" and report["n_window"] == WINDOW and report["n_baseline"] == len(baseline)
    page = (tmp_path / "out-same" / "drift_report.html").read_text()
    assert page.count("data:image/png;base64,") == len(report["columns"]) and "<script" not in page

    dark = _monitor(session_root, "--records", str(_window(baseline, tmp_path / "dark", dim=0.3)),
                    "--out", str(tmp_path / "out-dark"), "--since", "1d")
    assert dark.returncode == 3, dark.stdout + dark.stderr
    assert "drift detected in brightness" in dark.stderr
    report = json.loads((tmp_path / "out-dark" / "drift_report.json").read_text())
    assert report["status"] == "drift" and "brightness" in [c["column"] for c in report["columns"] if c["drifted"]]

    few = _monitor(session_root, "--records", str(_window(baseline, tmp_path / "few", n=5, dim=0.3)),
                   "--out", str(tmp_path / "out-few"))
    assert few.returncode == 0, few.stdout + few.stderr
    assert "too few records" in few.stderr
    assert json.loads((tmp_path / "out-few" / "drift_report.json").read_text())["status"] == "insufficient_data"


def test_monitor_errors_exit_1_with_one_line(session_root, tmp_path, smoke_run):
    missing = _monitor(session_root, "--records", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no production records" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_time = _monitor(session_root, "--records", str(tmp_path), "--since", "last tuesday")
    assert bad_time.returncode == 1 and "--since 'last tuesday'" in bad_time.stderr
