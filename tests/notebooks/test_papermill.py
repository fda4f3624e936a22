"""The walkthrough as papermill runs it: all six notebooks in order with notebooks/profiles/smoke.yaml
(`visionops notebooks --profile smoke`) in a fresh project root, network blocked. Each test checks
the values one notebook recorded in outputs/notebooks/<notebook>.json against the stores it wrote
to (catalog, MLflow runs, registry, pipeline folders), and that each notebook reused what the
previous one left (same data set version, same training run, same champion).

One more run with explicit `backend=azure` parameters (and the workspace ids) drives notebook 00's
Azure cells against the mocked MLClient of tests/support/azure_mock.py.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest
from notebook_support import (
    AZURE_IDS,
    CLI,
    NOTEBOOKS,
    ORDER,
    REPO,
    azure_extra_installed,
    kernel_env,
    mock_calls,
    netblock_report,
)

pytestmark = pytest.mark.slow


def test_the_walkthrough_ran_in_order_and_offline(walkthrough):
    run = walkthrough.run
    assert walkthrough.returncode == 0, walkthrough.output[-6000:]
    assert run["status"] == "ok" and run["profile"] == "smoke" and run["parameters"] == {"profile": "smoke"}
    assert [n["name"] for n in run["notebooks"]] == list(ORDER)
    for n in run["notebooks"]:
        assert n["status"] == "ok" and n["seconds"] > 0
        assert Path(n["output"]).is_file() and Path(n["html"]).is_file()
    executed = json.loads(Path(run["notebooks"][0]["output"]).read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in "".join(injected[0]["source"])
    armed, blocked = netblock_report(walkthrough.root)
    assert armed, "the network block was not active"
    assert blocked == [], "network attempts:\n" + "\n".join(blocked)


def test_00_environment(walkthrough):
    s = walkthrough.summary("00_environment_setup")
    assert (s["profile"], s["backend"]) == ("smoke", "local")
    assert s["python"] == platform.python_version()
    assert s["packages"]["visionops"] and s["packages"]["ultralytics"] and s["packages"]["papermill"]
    assert s["tracking_uri"] == walkthrough.settings.tracking_uri
    assert str(walkthrough.root) in s["tracking_uri"]  # the run's own store, not the developer's
    conda = sorted(p for p in (REPO / "environments" / "conda").glob("*.yml"))
    assert len(s["conda_environments"]) == len(conda)
    assert s["azure_environments"] == {}  # local backend: the Azure cell did nothing


def test_01_dataset(walkthrough):
    from visionops.data.faults import FAULTS
    from visionops.profiles import get_profile
    from visionops.workspace import get_workspace

    s = walkthrough.summary("01_dataset_setup")
    spec = get_profile("smoke").data
    assert s["counts"] == {
        "train": {"images": spec.n_train, "boxes": s["counts"]["train"]["boxes"]},
        "val": {"images": spec.n_val, "boxes": s["counts"]["val"]["boxes"]},
        "test": {"images": spec.n_test, "boxes": s["counts"]["test"]["boxes"]},
    }
    assert all(c["boxes"] > 0 for c in s["counts"].values())
    assert s["classes"] == spec.classes
    assert s["validation_ok"] is True and s["images_checked"] == spec.n_train + spec.n_val + spec.n_test
    assert s["planted_faults"] == list(FAULTS) and s["broken_copy_codes"] == sorted(FAULTS)
    assert s["broken_copy_problems"] == len(FAULTS)
    assert s["reregistered_same_version"] is True
    assert s["source"]["kind"] == "synthetic" and s["source"]["spec"]["n_train"] == spec.n_train
    catalog = get_workspace(walkthrough.settings).list_datasets()
    labeled = walkthrough.summary("08_monitoring_and_retraining")["new_dataset"]  # 08 adds its labeled version
    assert [(r.name, r.version) for r in catalog if f"{r.name}:{r.version}" != labeled] == [
        ("shapes", s["dataset_version"])]  # registered once
    assert s["dataset"] == f"shapes:{s['dataset_version']}"
    for split, folder in s["automl"].items():
        lines = (Path(folder) / f"{split}_annotations.jsonl").read_text().splitlines()
        assert len(lines) == s["counts"][split]["images"]
        assert (Path(folder) / "MLTable").is_file()


def test_02_training(walkthrough):
    import mlflow

    from visionops.profiles import get_profile
    from visionops.tracking import configure_mlflow

    data = walkthrough.summary("01_dataset_setup")
    s = walkthrough.summary("02_model_training")
    epochs = get_profile("smoke").train.epochs
    assert s["dataset"] == data["dataset"]  # reused 01's registered version
    assert s["epochs"] == s["history_epochs"] == epochs
    assert {"map50_95", "map50", "precision", "recall", "train_box_loss", "val_box_loss"} <= set(s["history_metrics"])
    assert 0.0 <= s["metrics"]["map50_95"] <= 1.0
    assert s["run_status"] == "FINISHED"
    assert s["run_tags"]["dataset.version"] == data["dataset_version"]
    assert s["run_tags"]["visionops.profile"] == "smoke"
    assert Path(s["weights"]).is_file()
    # the local compute job is the training above, reused, not a second one
    assert s["compute_job"]["status"] == "Completed" and s["compute_job"]["run_id"] == s["run_id"]
    configure_mlflow(walkthrough.settings)
    run = mlflow.MlflowClient().get_run(s["run_id"])
    assert run.info.experiment_id == s["experiment_id"]
    assert len(mlflow.MlflowClient().get_metric_history(s["run_id"], "map50_95")) == epochs


def test_03_evaluation(walkthrough):
    import mlflow

    from visionops import registry
    from visionops.tracking import configure_mlflow

    data = walkthrough.summary("01_dataset_setup")
    train = walkthrough.summary("02_model_training")
    s = walkthrough.summary("03_model_evaluation")
    assert s["train_run_id"] == train["run_id"]  # evaluated 02's model, not a new one
    assert s["dataset"] == data["dataset"]
    # a fresh root: no champion, the smoke floor is 0, so the first model is promoted and registered
    assert s["champion_version_before"] is None and s["champion"] is None
    assert s["rule"]["floor"] == 0.0 and s["rule"]["metric"] == "map50_95"
    assert s["decision"] == "promote" and "no champion yet" in s["reason"]
    assert s["registered"] is True and s["registered_version"] == s["champion_version_after"] == "1"
    names = [c["name"] for c in s["per_class"]]
    assert set(names) <= set(data["classes"]) and names == sorted(names, key=data["classes"].index)
    assert {"pr_curve", "confusion_matrix"} <= set(s["plots"])
    assert s["images_drawn"] == 4
    champion = registry.require_champion(walkthrough.settings)
    assert champion.version == "1"
    assert champion.tags["train.run_id"] == train["run_id"]
    assert champion.tags["evaluation.run_id"] == s["evaluation_run_id"]
    assert champion.tags["dataset.version"] == data["dataset_version"]
    configure_mlflow(walkthrough.settings)
    ev = mlflow.MlflowClient().get_run(s["evaluation_run_id"])
    assert ev.data.tags["decision"] == "promote"
    assert ev.data.metrics["test_map50_95"] == pytest.approx(s["challenger"]["map50_95"])


def test_04_deployment(walkthrough):
    s = walkthrough.summary("04_model_deployment")
    assert s["model_version"] == "1" and s["model_name"] == "shapes-detector"  # 03's champion
    assert s["answered_by"] == {"name": "shapes-detector", "version": "1", "runtime": "onnx", "task": "detect"}
    assert s["scoring_uri"].startswith("http://127.0.0.1:") and s["runtime"] == "onnx"
    assert s["images_sent"] == 4 and len(s["answer_sizes"]) == 4
    assert s["latency"]["requests"] == 20 and 0 < s["latency"]["p50_ms"] <= s["latency"]["p95_ms"]
    assert s["server_inference_ms_median"] > 0
    checks = s["endpoint_check"]["checks"]
    # the two-epoch smoke model finds nothing, so only the "known image" check may fail
    assert checks["health"] and checks["invalid request"] and checks["healthy afterwards"]
    assert "known image" in checks
    assert s["kept"] is False and s["up_after_teardown"] is False
    from visionops.serving.local_endpoint import load_deployment

    assert load_deployment(walkthrough.settings, "local") is None  # torn down, record removed


def test_05_pipeline(walkthrough):
    from visionops import registry
    from visionops.pipeline.components import pipeline_version

    data = walkthrough.summary("01_dataset_setup")
    train = walkthrough.summary("02_model_training")
    s = walkthrough.summary("05_training_pipeline")
    assert s["dataset"] == data["dataset"]
    assert s["status"] == "Completed"
    assert s["steps"] == {"validate": "Completed", "train": "Completed", "evaluate": "Completed",
                          "register": "Completed"}
    assert s["train_run_id"] and s["train_run_id"] != train["run_id"]  # the pipeline trained its own model
    assert s["decision"] in ("promote", "reject")
    assert s["registered"] is (s["decision"] == "promote")
    # notebook 06 may register a version after this one: look at the first two
    versions = [v.version for v in registry.list_versions(walkthrough.settings)]
    if s["registered"]:
        assert s["registered_version"] == "2" and versions[:2] == ["1", "2"]
    else:
        assert s["registered_version"] is None and versions[:1] == ["1"] and "2" not in versions[:1]
    record = json.loads(Path(s["url"]).read_text())  # the run's record, beside the runner's step folders
    assert record["run_id"] == s["run_id"] and record["status"] == "Completed"
    assert all(Path(step["log"]).is_file() for step in record["steps"])
    published = s["published"]
    assert published["backend"] == "local" and published["version"] == pipeline_version()
    assert Path(published["location"]).is_file()


def test_06_sweep(walkthrough):
    import mlflow

    from visionops import registry
    from visionops.sweep.local import SWEEP_JSON, SWEEPS_DIR, SweepResult
    from visionops.tracking import configure_mlflow

    data = walkthrough.summary("01_dataset_setup")
    s = walkthrough.summary("06_hyperparameter_tuning")
    assert s["dataset"] == data["dataset"]
    assert s["trials"] == s["new_trials"] == 3  # the smoke profile's trials, a fresh study
    assert s["space"]["lr0"] == "loguniform(0.0005, 0.02)"
    configure_mlflow(walkthrough.settings)
    client = mlflow.MlflowClient()
    parent = client.get_run(s["parent_run_id"])
    assert parent.data.tags["visionops.stage"] == "sweep" and parent.data.tags["best.trial"] == str(s["best"]["number"])
    for run_id in s["trial_run_ids"]:
        assert client.get_run(run_id).data.tags["mlflow.parentRunId"] == s["parent_run_id"]
    stored = SweepResult.model_validate_json(
        (walkthrough.root / "outputs" / SWEEPS_DIR / s["study_name"] / SWEEP_JSON).read_text())
    assert stored.best.run_id == s["best"]["run_id"] == s["train_run_id"]  # the gate scored the best trial
    assert s["decision"] in ("promote", "reject") and s["registered"] is (s["decision"] == "promote")
    if s["registered"]:
        version = registry.get_version(walkthrough.settings, s["registered_version"], s["model_name"])
        assert version.tags["sweep.parent_run_id"] == s["parent_run_id"]


def test_07_automl(walkthrough):
    import yaml

    from visionops import registry

    data = walkthrough.summary("01_dataset_setup")
    s = walkthrough.summary("07_automl_benchmark")
    assert s["dataset"] == data["dataset"]
    assert s["submitted"] is False and s["job_name"] is None  # the local backend does not submit
    assert s["validated"] is True and s["task"] == "image_object_detection"
    assert s["primary_metric"] == "mean_average_precision" and s["limits"]["max_trials"] == 4
    spec = yaml.safe_load(Path(s["spec_path"]).read_text())
    assert spec["search_space"][0]["model_name"]["values"] == s["models"]
    assert spec["validation_data"]["path"] == "./test" and s["validation_split"] == "test"
    for split in ("train", "test"):
        assert (Path(s["spec_path"]).parent / split / "MLTable").is_file()
    champion = registry.require_champion(walkthrough.settings)
    assert s["champion"]["model"] == f"{champion.name}:{champion.version}"
    assert s["champion"]["metrics"]["map50_95"] == pytest.approx(champion.metric("map50_95"))
    assert s["comparison"] is None  # no AutoML metrics given, none compared before


def test_08_monitoring(walkthrough):
    from visionops.data.catalog import LocalDatasetCatalog
    from visionops.data.layout import iter_images
    from visionops.hashing import file_digest
    from visionops.monitoring.drift import DriftReport

    data = walkthrough.summary("01_dataset_setup")
    s = walkthrough.summary("08_monitoring_and_retraining")
    assert s["dataset"] == data["dataset"]
    assert s["collector"]["records_written"] == s["requests"] == 80  # every request recorded
    assert s["collector"]["samples_saved"] == 80  # sample_rate 1.0
    assert s["normal"]["status"] == "ok"  # the data set's own images: no alarm
    assert s["shifted"]["status"] == "drift" and "brightness" in s["shifted"]["drifted"]
    shifted = DriftReport.model_validate_json(Path(s["shifted"]["json"]).read_text())
    assert shifted.n_window == 40 and Path(s["shifted"]["html"]).is_file()
    batch = s["batch"]
    assert batch["picked"] == 20 and batch["missing_samples"] == 0 and batch["candidates"] >= batch["picked"]
    assert any("unusual_image" in reason for reason in batch["reasons"])  # the dark frames come first
    assert s["labeled_boxes"] > 0
    assert sum(s["added"].values()) + s["duplicates"] == batch["picked"] and s.get("added", {}).get("test") is None
    catalog = LocalDatasetCatalog(walkthrough.settings.catalog_dir)
    (name, old), (_, new) = (d.split(":") for d in (s["dataset"], s["new_dataset"]))
    assert new != old
    before, after = Path(catalog.get(name, old).path), Path(catalog.get(name, new).path)
    assert ({file_digest(p) for p in iter_images(after, "test")}
            == {file_digest(p) for p in iter_images(before, "test")})  # the gate's split is frozen
    assert s["decision"] in ("promote", "reject") and s["registered"] is (s["decision"] == "promote")


def test_demo_summary_reads_what_the_notebooks_recorded(walkthrough):
    env = dict(os.environ, VISIONOPS_ROOT=str(walkthrough.root))
    proc = subprocess.run([CLI, "demo-summary"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "PROMOTE" in out and "registered version 1" in out and "served v1" in out
    assert str(walkthrough.outputs) in out.replace("\n", "")
    assert "mlflow ui --backend-store-uri" in out


@pytest.mark.azure
@pytest.mark.skipif(not azure_extra_installed(), reason="needs the azure extra (azure-ai-ml)")
def test_azure_parameters_reach_the_mocked_workspace(session_root, netblocked_env, tmp_path):
    """`backend=azure` and the workspace ids as papermill parameters: notebook 00 connects to the
    (mocked) workspace and registers the training and inference environments."""
    import papermill  # noqa: F401 - the runner below needs it

    root = session_root / "notebooks-papermill-azure"
    root.mkdir(parents=True, exist_ok=True)
    log = root / "azure-mock.jsonl"
    params = ["--param", "backend=azure"] + [f"--param={k}={v}" for k, v in AZURE_IDS.items()]
    proc = subprocess.run(
        [CLI, "notebooks", "--profile", "smoke", "--only", "00", "--no-html", *params],
        env=kernel_env(netblocked_env, root, azure_mock_log=log), cwd=REPO, capture_output=True, text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    s = json.loads((root / "outputs" / "notebooks" / "00_environment_setup.json").read_text())
    assert s["backend"] == "azure"
    assert set(s["azure_environments"]) == {"training", "inference"}
    assert all(v.startswith("azureml:visionops-") for v in s["azure_environments"].values())
    calls = mock_calls(log)
    created = [c["entity"]["name"] for c in calls if c["op"] == "environments.create_or_update"]
    assert sorted(created) == sorted(v.split(":")[1] for v in s["azure_environments"].values())
    executed = (root / "outputs" / "notebooks" / "00_environment_setup.ipynb").read_text()
    assert AZURE_IDS["workspace_name"] in executed  # the ids arrived as parameters


def test_every_notebook_is_covered():
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) == list(ORDER)
