"""The scheduled monitoring pipeline (ado_pipelines/model_monitoring_pipeline.yml), offline: valid
against Microsoft's schema, wired to the CLI's exit-code contract and to the training pipeline, and
its bash steps run here as Azure DevOps would run them (macros and template parameters expanded),
with `visionops`, `az`, `curl` and the Azure-bound `python -c` calls replaced by fakes on PATH: the
job goes red on drift (exit 3) and on errors, stays green otherwise, and queues training only on
drift with a newer data version."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

# scripts/ado_schema.py: a CI tool, not part of the package (tests/conftest.py puts scripts/ on the path)
import ado_schema
import pytest

pytestmark = pytest.mark.azure

MACRO = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")  # $(name); `$(python -c ...)` is bash, not a macro
PARAM = re.compile(r"\$\{\{\s*parameters\.(\w+)\s*\}\}")


@pytest.fixture(scope="module")
def ado(repo_root) -> Path:
    return repo_root / "ado_pipelines"


@pytest.fixture(scope="module")
def pipeline(ado) -> dict:
    return ado_schema.load_yaml(ado / "model_monitoring_pipeline.yml")


def _steps(pipeline: dict) -> list[dict]:
    [job] = pipeline["jobs"]
    return job["steps"]


def _step(pipeline: dict, display: str) -> dict:
    for step in _steps(pipeline):
        if step.get("parameters", {}).get("displayName", "").startswith(display):
            return step
    raise AssertionError(f"no step {display!r}")


def _retrain_block(pipeline: dict) -> tuple[str, dict]:
    [(key, [step])] = [(k, v) for s in _steps(pipeline) for k, v in s.items() if k.startswith("${{ if")]
    return key, step


def test_valid_against_microsofts_schema_and_red_means_red(ado):
    assert ado_schema.check_file(ado / "model_monitoring_pipeline.yml") == []


def test_schedule_parameters_and_shared_conventions(pipeline):
    [schedule] = pipeline["schedules"]
    minute, hour, dom, month, dow = schedule["cron"].split()
    assert (dom, month, dow) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()  # daily
    assert schedule["branches"]["include"] == ["main"] and schedule["always"] is True  # even without new commits
    assert pipeline["trigger"] == "none" and pipeline["pr"] == "none"
    params = {p["name"]: p for p in pipeline["parameters"]}
    assert params["since"]["default"] == "1d" and params["retrainOnDrift"]["type"] == "boolean"
    assert params["retrainOnDrift"]["default"] is False
    assert pipeline["variables"][:2] == [{"template": "variables/pipeline_variables.yml"}, {"group": "visionops-azure"}]
    [job] = pipeline["jobs"]
    assert job["container"] == {"image": "${{ variables.agentImage }}",
                                "endpoint": "${{ variables.acrServiceConnection }}"}
    templates = [s.get("template") for s in job["steps"]]
    assert templates[:4] == [None, "templates/install_visionops.yml", "templates/azure_ml_step.yml",
                             "templates/azure_ml_step.yml"]


def test_the_report_is_published_even_when_the_run_goes_red(pipeline):
    [publish] = [s for s in _steps(pipeline) if s.get("task") == "PublishPipelineArtifact@1"]
    assert "succeededOrFailed()" in publish["condition"]
    variables = {v["name"]: v["value"] for v in pipeline["variables"] if "name" in v}
    assert publish["inputs"]["targetPath"] == "$(reportDir)" and variables["reportDir"] == "$(outputsDir)/monitoring"
    assert publish["inputs"]["artifact"].startswith("drift-report")


def test_retraining_is_opt_in_and_targets_the_training_pipeline(ado, pipeline):
    key, step = _retrain_block(pipeline)
    assert key == "${{ if eq(parameters.retrainOnDrift, true) }}"
    assert step["env"] == {"SYSTEM_ACCESSTOKEN": "$(System.AccessToken)"}
    assert step["condition"] == "and(failed(), eq(variables['monitorExit'], '3'), ne(variables['retrainDataset'], ''))"
    # the pipeline it queues is the one the deployment pipeline follows, with parameters it really has
    variables = {v["name"]: v["value"] for v in pipeline["variables"] if "name" in v}
    deploy = ado_schema.load_yaml(ado / "model_deployment_pipeline.yml")
    assert variables["trainingPipelineName"] == deploy["resources"]["pipelines"][0]["source"]
    training = {p["name"]: p for p in ado_schema.load_yaml(ado / "model_training_pipeline.yml")["parameters"]}
    sent = set(re.search(r"templateParameters: \{([^}]*)\}", step["script"])[1].replace(" ", "").split(","))
    assert {s.split(":")[0] for s in sent} == {"dataset", "task", "profile"} <= set(training)
    assert {p["values"] == training["profile"]["values"] for p in pipeline["parameters"]
            if p["name"] == "retrainProfile"} == {True}


# --- the steps' bash, run here ------------------------------------------------------------------------

def _render(script: str, params: dict[str, str], macros: dict[str, str]) -> str:
    """The script as the agent runs it: template parameters, then macros (unknown ones stay literal),
    behind the azure_ml_step template's prologue."""
    script = PARAM.sub(lambda m: params[m.group(1)], script)
    script = MACRO.sub(lambda m: macros.get(m.group(1), m.group(0)), script)
    return "set -euo pipefail\nexport VISIONOPS_BACKEND=azure\n" + script


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fakes(tmp_path) -> Path:
    """`visionops` exits $FAKE_RC after writing a report (and logs its arguments); `python -c`
    answers the pipeline's three questions (tracking URI, the report's model, the newer data set);
    `az` writes $FAKE_FILES records files; `curl` answers the Azure DevOps REST calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "visionops", """
echo "$@" > "$FAKE_LOG/visionops.args"
while [ $# -gt 0 ]; do [ "$1" = --out ] && out="$2"; shift; done
mkdir -p "$out" && echo '{"model": "shapes-detector:4", "status": "x"}' > "$out/drift_report.json"
exit "$FAKE_RC"
""")
    _fake(bin_dir, "python", """
case "$2" in
  *tracking_uri*) echo "azureml://fake" ;;
  *json.load*) python3 -c "$2" "$3" ;;
  *get_version*) echo "$3" > "$FAKE_LOG/python.model"; echo "$FAKE_NEWER" ;;
  *) exit 99 ;;
esac
""")
    _fake(bin_dir, "az", """
echo "$@" > "$FAKE_LOG/az.args"
while [ $# -gt 0 ]; do [ "$1" = --destination ] && dst="$2"; [ "$1" = --pattern ] && pat="$2"; shift; done
[ "$FAKE_FILES" -eq 0 ] && exit 0  # like az: nothing matched, nothing created
root="$dst/${pat%%/\\**}"
for device in $FAKE_DEVICES; do  # the same file names on every device
  mkdir -p "$root/$device/records" "$root/$device/samples"
  for i in $(seq 1 "$FAKE_FILES"); do echo '{}' > "$root/$device/records/records-2026120306-7-000$i.jsonl"; done
  echo '{}' > "$root/$device/samples/not-a-record.jsonl"
done
""")
    _fake(bin_dir, "curl", """
echo "$@" >> "$FAKE_LOG/curl.args"
case "$*" in
  *build/definitions*) echo '{"value": [{"id": 42}]}' ;;
  *"/pipelines/42/runs"*) echo '{"id": 7, "_links": {"web": {"href": "https://dev.azure.com/run/7"}}}' ;;
  *) exit 22 ;;
esac
""")
    return bin_dir


def _run(script: str, fakes: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}", "FAKE_LOG": str(tmp_path),
               "FAKE_RC": "0", "FAKE_NEWER": "", "FAKE_FILES": "2", "FAKE_DEVICES": "dev-a dev-b", **env}
    return subprocess.run(["bash", "-c", script], env=environ, capture_output=True, text=True, timeout=60)


def _drift_script(pipeline: dict, tmp_path: Path, retrain: str = "False", model: str = " ") -> str:
    step = _step(pipeline, "Drift report")
    return _render(step["parameters"]["script"], {"model": model, "since": "1d", "retrainOnDrift": retrain},
                   {"recordsFolder": str(tmp_path / "records"), "reportDir": str(tmp_path / "report")})


@pytest.mark.parametrize(("rc", "red"), [(0, False), (3, True), (1, True), (2, True)])
def test_the_job_goes_red_on_drift_and_on_errors(pipeline, fakes, tmp_path, rc, red):
    proc = _run(_drift_script(pipeline, tmp_path), fakes, tmp_path, FAKE_RC=str(rc))
    assert proc.returncode == rc and (proc.returncode != 0) == red
    assert f"##vso[task.setvariable variable=monitorExit]{rc}" in proc.stdout
    assert ("##vso[task.logissue type=error]drift detected" in proc.stdout) == (rc == 3)
    args = (tmp_path / "visionops.args").read_text().split()
    assert args[:1] == ["monitor"] and "--model" not in args  # empty parameter -> the production model
    assert args[args.index("--records") + 1] == str(tmp_path / "records") and args[args.index("--since") + 1] == "1d"
    assert "retrainDataset" not in proc.stdout  # retrainOnDrift is off
    assert not (tmp_path / "python.model").exists()


def test_drift_with_a_newer_data_version_sets_up_retraining(pipeline, fakes, tmp_path):
    script = _drift_script(pipeline, tmp_path, retrain="True", model="shapes-detector:4")
    proc = _run(script, fakes, tmp_path, FAKE_RC="3", FAKE_NEWER="shapes:9f3c detect")
    assert proc.returncode == 3
    assert "--model shapes-detector:4" in (tmp_path / "visionops.args").read_text()
    assert (tmp_path / "python.model").read_text().strip() == "shapes-detector:4"  # the report's model
    assert "##vso[task.setvariable variable=retrainDataset]shapes:9f3c" in proc.stdout
    assert "##vso[task.setvariable variable=retrainTask]detect" in proc.stdout


def test_drift_without_a_newer_data_version_says_what_to_do(pipeline, fakes, tmp_path):
    proc = _run(_drift_script(pipeline, tmp_path, retrain="True"), fakes, tmp_path, FAKE_RC="3", FAKE_NEWER="")
    assert proc.returncode == 3 and "retrainDataset" not in proc.stdout
    assert "##vso[task.logissue type=warning]no newer data version than shapes-detector:4's" in proc.stdout
    assert "visionops label export" in proc.stdout
    # no drift: the data version is not even looked up
    (tmp_path / "python.model").unlink()
    proc = _run(_drift_script(pipeline, tmp_path / "x", retrain="True"), fakes, tmp_path, FAKE_RC="0")
    assert proc.returncode == 0 and "retrainDataset" not in proc.stdout and not (tmp_path / "python.model").exists()


def _download_script(pipeline: dict, tmp_path: Path, **macros: str) -> str:
    step = _step(pipeline, "Download the production records")
    return _render(step["parameters"]["script"], {}, {"recordsDir": str(tmp_path / "production"), **macros})


STORAGE = {"recordsStorageAccount": "prodrecords", "recordsContainer": "production", "recordsPrefix": "edge/"}


@pytest.mark.parametrize("devices", ["", "dev-a dev-b"], ids=["one-device", "fleet"])
def test_records_download(pipeline, fakes, tmp_path, devices):
    proc = _run(_download_script(pipeline, tmp_path, **STORAGE), fakes, tmp_path, FAKE_FILES="2",
                FAKE_DEVICES=devices or ".")
    assert proc.returncode == 0, proc.stderr
    assert f"##vso[task.setvariable variable=recordsFolder]{tmp_path / 'production'}/merged" in proc.stdout
    merged = sorted(p.name for p in (tmp_path / "production" / "merged" / "records").glob("*.jsonl"))
    assert len(merged) == 2 * len(devices.split() or ["."])  # no device's file overwrote another's
    assert all("samples" not in name for name in merged)
    az = (tmp_path / "az.args").read_text().split()
    assert az[:3] == ["storage", "blob", "download-batch"] and "--auth-mode" in az and "login" in az
    assert az[az.index("--pattern") + 1] == "edge/*records/*.jsonl"
    assert az[az.index("--account-name") + 1] == "prodrecords"


def test_records_download_fails_clearly(pipeline, fakes, tmp_path):
    proc = _run(_download_script(pipeline, tmp_path, **STORAGE), fakes, tmp_path, FAKE_FILES="0")
    assert proc.returncode == 1 and "no records under prodrecords/production/edge/:" in proc.stdout
    (tmp_path / "az.args").unlink()
    unset = {k: v for k, v in STORAGE.items() if k != "recordsContainer"}  # the variable group lacks one
    proc = _run(_download_script(pipeline, tmp_path / "u", **unset), fakes, tmp_path)
    assert proc.returncode == 1 and "set recordsStorageAccount, recordsContainer and recordsPrefix" in proc.stdout
    assert not (tmp_path / "az.args").exists()  # refused before any download


def test_queue_training_posts_the_new_data_version(pipeline, fakes, tmp_path):
    _, step = _retrain_block(pipeline)
    macros = {"System.CollectionUri": "https://dev.azure.com/contoso/", "System.TeamProjectId": "p-1",
              "trainingPipelineName": "visionops-model-training", "Build.SourceBranch": "refs/heads/main",
              "retrainDataset": "shapes:9f3c", "retrainTask": "detect"}
    script = PARAM.sub(lambda m: {"retrainProfile": "quick"}[m.group(1)], step["script"])
    script = MACRO.sub(lambda m: macros.get(m.group(1), m.group(0)), script)
    proc = _run(script, fakes, tmp_path, SYSTEM_ACCESSTOKEN="tok")
    assert proc.returncode == 0, proc.stderr
    assert "queued visionops-model-training run 7 on shapes:9f3c: https://dev.azure.com/run/7" in proc.stdout
    lookup, post = (tmp_path / "curl.args").read_text().splitlines()
    assert "https://dev.azure.com/contoso/p-1/_apis/build/definitions?name=visionops-model-training" in lookup
    assert "Authorization: Bearer tok" in lookup and "-X POST" in post
    assert "https://dev.azure.com/contoso/p-1/_apis/pipelines/42/runs?api-version=7.1" in post
    body = json.loads(re.search(r"-d (\{.*\}) https", post)[1])
    assert body == {"resources": {"repositories": {"self": {"refName": "refs/heads/main"}}},
                    "templateParameters": {"dataset": "shapes:9f3c", "task": "detect", "profile": "quick"}}
