"""The ONNX serving path needs neither torch nor Ultralytics (issue 16).

The ONNX inference environment (pyproject's `onnx` extra, environments/conda/deployment.yml, the
inference image) has no torch, torchvision or Ultralytics. Here the real azmlinfsrv serves the
session's detector with those three made unimportable in every server process
(tests/support/notorch, a `sys.meta_path` blocker on the server's PYTHONPATH, with the network
block of tests/support/netblock armed too), and the serving protocol checks of test_endpoint.py
run against that server: the `endpoint` fixture below overrides conftest's for this module.

The runtime choice a deployment makes from a model's files (serving.runtimes) is checked here
too; that the Azure backend picks the environment from it is in tests/azure/test_azure_workspace.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

# The protocol checks, collected again in this module so that they run against the server below.
from test_endpoint import (  # noqa: F401
    test_bad_request_corpus_gets_named_4xx_errors_and_server_stays_healthy,
    test_get_and_unknown_route_are_refused_as_json,
    test_key_is_never_logged_or_shown,
    test_known_image_is_detected_with_model_identity,
    test_server_listens_on_loopback_only,
    test_several_images_and_parameters,
)

from visionops.errors import ConfigError, ModelNotFoundError
from visionops.serving.runtimes import choose_runtime, inference_environment

for _check in (test_bad_request_corpus_gets_named_4xx_errors_and_server_stays_healthy,
               test_get_and_unknown_route_are_refused_as_json, test_key_is_never_logged_or_shown,
               test_known_image_is_detected_with_model_identity, test_server_listens_on_loopback_only,
               test_several_images_and_parameters):
    pytest.mark.slow(_check)  # they train the session's detector (a minute of CPU)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
NOTORCH = SUPPORT / "notorch"
# small limits, as conftest's ENDPOINT_LIMITS, so that over-limit requests stay small and fast
LIMITS = {"max_payload_bytes": 300_000, "max_images_per_request": 4}


def _blocked_env(notorch_log: Path, netblock_log: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(NOTORCH), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "NOTORCH_LOG": str(notorch_log), "NETBLOCK_LOG": str(netblock_log)}


@pytest.fixture(scope="module")
def blocker_logs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("onnx-only")
    return folder / "notorch.log", folder / "netblock.log"


@pytest.fixture(scope="module")
def endpoint(detector, blocker_logs):
    """The detector behind a real azmlinfsrv (ONNX Runtime, key auth, two workers) in which torch,
    torchvision and ultralytics cannot be imported and the network is blocked."""
    from visionops.serving.local_endpoint import LocalEndpoint

    settings = detector.settings.with_overrides(**LIMITS)
    with LocalEndpoint(detector.model_dir, settings, name="onnx-only", runtime="onnx", workers=2,
                       model_name=detector.ref.name, model_version=detector.ref.version,
                       env=_blocked_env(*blocker_logs)) as ep:
        yield ep


def _server_processes(endpoint) -> list[psutil.Process]:
    master = psutil.Process(endpoint.pid)
    return [master, *master.children(recursive=True)]


@pytest.mark.slow
def test_the_server_never_loaded_torch_or_ultralytics(endpoint, client, detector, blocker_logs):
    """The server process had the blocker armed (its workers are forks of it), none of them even
    tried to import the three packages, no torch library is mapped into any of them, and nothing
    touched the network."""
    from visionops.serving.endpoint import encode_image

    answer = client.score({"image": encode_image(detector.known.path)})
    assert answer["model"]["runtime"] == "onnx" and answer["predictions"][0]["boxes"]
    notorch_log, netblock_log = blocker_logs
    lines = notorch_log.read_text().splitlines()
    armed = {int(line.split()[1]) for line in lines if line.startswith("armed ")}
    procs = _server_processes(endpoint)
    assert len(procs) >= 3, "master and two workers"  # the workers did load the model (they answered)
    master, workers = procs[0], procs[1:]
    assert master.pid in armed, "the blocker was not armed in the server"
    # gunicorn forks its workers from the master (no exec, so no new sitecustomize): they inherit
    # the armed sys.meta_path; a worker that had been exec'd would have written its own line
    assert all(w.ppid() == master.pid and w.cmdline() == master.cmdline() for w in workers)
    assert [line for line in lines if line.startswith("blocked ")] == [], "the ONNX path tried to import torch"
    for p in procs:
        mapped = [m.path for m in p.memory_maps()]
        assert not [m for m in mapped if f"{os.sep}torch{os.sep}" in m or "ultralytics" in m], p.pid
        assert any("onnxruntime" in m for m in mapped) or p.pid == endpoint.pid  # workers run ONNX Runtime
    assert "blocked" not in (netblock_log.read_text() if netblock_log.exists() else "")


def test_the_blocker_really_blocks(tmp_path):
    """Control: without this the test above could pass in an environment that simply lacks torch."""
    log = tmp_path / "notorch.log"
    code = "import torch"
    env = {**os.environ, **_blocked_env(log, tmp_path / "net.log")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "blocked by tests/support/notorch" in r.stderr
    assert "blocked torch " in log.read_text()


def test_the_onnx_serving_modules_import_without_torch(tmp_path):
    """score.py, the ONNX predictor and what they import (visionops/__init__, settings, errors,
    protocol, auth, the gunicorn config) import with the three packages blocked, and load none."""
    code = (
        "import sys, visionops.serving.score, visionops.serving.gunicorn_conf, visionops.serving.predictor as p;"
        "assert p.OnnxPredictor;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'ultralytics')))"
    )
    log = tmp_path / "notorch.log"
    env = {**os.environ, **_blocked_env(log, tmp_path / "net.log")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert "blocked" not in log.read_text()


# --- the runtime a deployment chooses from a model's files -------------------------------------
BOTH = ["MLmodel", "artifacts/best.pt", "artifacts/best.onnx", "artifacts/model_info.json"]
PT_ONLY = ["MLmodel", "artifacts/best.pt", "artifacts/model_info.json"]


def test_each_runtime_has_its_environment():
    assert inference_environment("onnx") == "inference"
    assert inference_environment("pytorch") == "inference-pytorch"
    with pytest.raises(ConfigError, match="unknown serving runtime 'openvino'; choose one of"):
        inference_environment("openvino")


@pytest.mark.parametrize(("runtime", "files", "chosen"), [
    ("onnx", BOTH, "onnx"), ("pytorch", BOTH, "pytorch"), ("auto", BOTH, "onnx"), (None, BOTH, "onnx"),
    ("auto", PT_ONLY, "pytorch"), ("pytorch", PT_ONLY, "pytorch"), ("ONNX", BOTH, "onnx"),
])
def test_choose_runtime(runtime, files, chosen):
    assert choose_runtime(runtime, files, "m:1") == chosen


def test_a_model_without_onnx_export_gets_the_way_out():
    with pytest.raises(ModelNotFoundError) as err:
        choose_runtime("onnx", PT_ONLY, "shapes-detector:7")
    message = str(err.value)
    assert message.startswith("model shapes-detector:7 has no ONNX export")
    assert "artifacts/best.pt" in message  # what the model does have
    assert "export_onnx" in message and "extra_artifacts={'onnx'" in message  # how to export
    assert "--runtime pytorch" in message and "visionops-inference-pytorch" in message  # which runtime instead


def test_models_without_the_runtimes_weights_are_refused():
    with pytest.raises(ModelNotFoundError, match="no PyTorch weights .* deploy it with --runtime onnx"):
        choose_runtime("pytorch", ["artifacts/best.onnx"], "m:2")
    with pytest.raises(ModelNotFoundError, match=r"neither a \.onnx nor a \.pt file .*MLmodel"):
        choose_runtime("auto", ["MLmodel"], "m:3")
    with pytest.raises(ConfigError, match="unknown serving runtime"):
        choose_runtime("tensorrt", BOTH, "m:4")
