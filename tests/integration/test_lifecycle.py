"""The smoke lifecycle end to end against a real MLflow sqlite store, run the way a user runs it
(`visionops run --profile smoke`, in a subprocess whose network is blocked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_lifecycle_registers_first_model_with_lineage(smoke_run, smoke_settings):
    import mlflow

    from visionops import registry
    from visionops.profiles import get_profile

    r = smoke_run.result
    assert r.profile == "smoke"
    assert r.evaluation["decision"] == "promote"
    assert r.evaluation["champion"] is None  # first model: judged against the floor
    assert r.registration.registered and r.registration.version == "1"
    assert set(r.timings_s) >= {"data", "validate", "train", "evaluate", "register"}
    assert r.model_name == "shapes-detector" and r.registration.model_name == "shapes-detector"  # <dataset>-detector

    champion = registry.require_champion(smoke_settings)
    assert champion.version == "1" and champion.is_production
    tags = champion.tags
    assert tags["dataset.name"] == r.dataset.name and tags["dataset.version"] == r.dataset.version
    assert tags["train.run_id"] == r.train.run_id
    assert tags["evaluation.run_id"] == r.evaluation["evaluation_run_id"]
    assert float(tags["metric.map50_95"]) == pytest.approx(r.evaluation["challenger"]["map50_95"], abs=1e-6)
    assert len(tags["git.commit"].split("-")[0]) == 40  # the code's commit, though the data root is elsewhere

    files = registry.model_files(registry.download(smoke_settings, champion))
    assert files["pt"].stat().st_size > 1_000_000 and files["onnx"].stat().st_size > 1_000_000
    info = json.loads(files["info"].read_text())
    assert info["classes"] == r.dataset.classes
    assert info["imgsz"] == get_profile("smoke").train.imgsz
    assert info["dataset"] == f"{r.dataset.name}:{r.dataset.version}"

    client = mlflow.MlflowClient()
    run = client.get_run(r.train.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dataset.version"] == r.dataset.version
    assert run.data.tags["visionops.profile"] == "smoke"
    assert run.data.tags["decision"] == "promote"
    assert run.data.params["epochs"] == str(r.train.epochs)
    history = client.get_metric_history(r.train.run_id, "map50_95")
    assert [m.step for m in history] == list(range(1, r.train.epochs + 1))
    for name in ("map50", "precision", "recall", "train_box_loss", "val_box_loss", "metrics/mAP50-95B"):
        assert len(client.get_metric_history(r.train.run_id, name)) == r.train.epochs, name
    artifacts = {a.path for a in client.list_artifacts(r.train.run_id)}
    assert {"weights", "train"} <= artifacts
    train_files = {Path(a.path).name for a in client.list_artifacts(r.train.run_id, "train")}
    assert {"results.csv", "args.yaml"} <= train_files

    ev = client.get_run(r.evaluation["evaluation_run_id"])
    assert ev.data.tags["decision"] == "promote"
    assert ev.data.metrics["test_map50_95"] == pytest.approx(r.evaluation["challenger"]["map50_95"])
    decision = json.loads((Path(r.folders["evaluate"]) / "decision.json").read_text())
    assert decision["outcome"] == "promote" and decision["floor"] == 0.0 and decision["champion"] is None


def test_lifecycle_made_no_network_connection(smoke_run):
    lines = smoke_run.netlog.read_text().splitlines()
    armed = [ln for ln in lines if ln.startswith("armed")]
    blocked = [ln for ln in lines if ln.startswith("blocked")]
    assert armed, "the network block was not active in the lifecycle process"
    assert blocked == [], "network attempts during the smoke lifecycle:\n" + "\n".join(blocked)


def test_network_block_is_effective(tmp_path, netblocked_env):
    """Control: the same block does stop and record a real attempt (else the test above proves nothing)."""
    log = tmp_path / "net.log"
    code = "import urllib.request; urllib.request.urlopen('https://github.com', timeout=5)"
    proc = subprocess.run([sys.executable, "-c", code], env=netblocked_env(log), capture_output=True, text=True)
    assert proc.returncode != 0
    assert "network blocked" in proc.stderr
    assert any(ln.startswith("blocked") and "github.com" in ln for ln in log.read_text().splitlines())


def test_rescoring_the_champion_ties_and_registers_nothing(smoke_run, smoke_settings, tmp_path):
    """The champion re-scored on the same split against itself: a tie, so no new version."""
    from visionops import registry
    from visionops.pipeline.steps import evaluate_step, register_step
    from visionops.profiles import get_profile

    r = smoke_run.result
    before = registry.list_versions(smoke_settings)
    outcome = evaluate_step(
        r.folders["train"], Path(r.dataset.path), tmp_path / "eval", smoke_settings,
        rule=get_profile("smoke").decision,
    )
    assert outcome.champion_version == "1"
    assert outcome.champion.metrics["map50_95"] == pytest.approx(outcome.challenger.metrics["map50_95"])
    assert outcome.decision.outcome == "reject" and "tie" in outcome.decision.reason
    reg = register_step(r.folders["train"], tmp_path / "eval", tmp_path / "reg", smoke_settings)
    assert not reg.registered
    assert json.loads((tmp_path / "reg" / "registration.json").read_text())["registered"] is False
    assert [v.version for v in registry.list_versions(smoke_settings)] == [v.version for v in before]
    assert registry.require_champion(smoke_settings).version == "1"
