"""visionops.notebooks: the papermill runner (order, parameters, HTML, stop at the first failure
naming notebook and cell) and the demo summary, on tiny notebooks that need no model."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from visionops import notebooks, records
from visionops.errors import ConfigError


def _notebook(path: Path, *cells: str) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('profile = None\nmarker = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {path.stem}"), params, *(new_code_cell(c) for c in cells)]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    f = tmp_path / "nbs"
    (f / "profiles").mkdir(parents=True)
    (f / "profiles" / "smoke.yaml").write_text("# comment\nprofile: smoke\nmarker: from-file\n")
    (f / "profiles" / "bad.yaml").write_text("- a list\n")
    _notebook(f / "00_first.ipynb", "import pathlib\npathlib.Path('ran-00').write_text(f'{profile} {marker}')")
    _notebook(f / "01_breaks.ipynb", "x = 1", "# the failing cell\nraise ValueError('planted failure')", "y = 2")
    _notebook(f / "02_never.ipynb", "import pathlib\npathlib.Path('ran-02').write_text('yes')")
    (f / "README.md").write_text("not a notebook")
    return f


def test_list_select_and_parameters(folder):
    names = [p.stem for p in notebooks.list_notebooks(folder)]
    assert names == ["00_first", "01_breaks", "02_never"]
    all_nbs = notebooks.list_notebooks(folder)
    assert [p.stem for p in notebooks.select(all_nbs, ["02", "00_first"])] == ["00_first", "02_never"]
    assert notebooks.select(all_nbs, None) == all_nbs
    with pytest.raises(ConfigError, match="no notebook"):
        notebooks.select(all_nbs, ["07"])
    assert notebooks.load_parameters(folder, "smoke") == {"profile": "smoke", "marker": "from-file"}
    with pytest.raises(ConfigError, match="profiles: bad, smoke"):
        notebooks.load_parameters(folder, "nope")
    with pytest.raises(ConfigError, match="mapping"):
        notebooks.load_parameters(folder, "bad")
    with pytest.raises(ConfigError, match="no notebooks"):
        notebooks.list_notebooks(folder / "profiles")


def test_default_folder_is_the_checkout(repo_root):
    assert notebooks.default_folder() == repo_root / "notebooks"


def test_runs_in_order_and_stops_at_the_first_failure(folder, tmp_path):
    out = tmp_path / "out"
    events: list[tuple[str, str]] = []
    with pytest.raises(notebooks.NotebookFailed) as err:
        notebooks.run_notebooks("smoke", folder=folder, out_dir=out, parameters={"marker": "override"},
                                on_event=lambda n, m: events.append((n, m)))
    failed = err.value
    message = str(failed)
    assert failed.notebook == "01_breaks.ipynb"
    assert "ValueError: planted failure" in message and "01_breaks.ipynb" in message
    assert "# the failing cell" in message  # the cell is named by its first line
    assert failed.cell is not None and failed.output == out / "01_breaks.ipynb"
    # the notebooks ran with the notebooks folder as working directory, with file + override parameters
    assert (folder / "ran-00").read_text() == "smoke override"
    assert not (folder / "ran-02").exists()  # nothing after the failure ran
    assert (out / "00_first.ipynb").is_file() and (out / "00_first.html").is_file()
    assert (out / "01_breaks.ipynb").is_file() and (out / "01_breaks.html").is_file()  # the failing copy too
    assert not (out / "02_never.ipynb").exists()
    run = json.loads((out / notebooks.RUN_JSON).read_text())
    assert run["status"] == "failed" and run["profile"] == "smoke"
    assert [(n["name"], n["status"]) for n in run["notebooks"]] == [("00_first", "ok"), ("01_breaks", "failed")]
    assert run["parameters"] == {"profile": "smoke", "marker": "override"}
    executed = nbformat.read(str(out / "00_first.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'marker = "override"' in injected[0].source
    assert "<html" in (out / "00_first.html").read_text().lower()
    assert [n for n, _ in events] == ["00_first", "00_first", "01_breaks", "01_breaks"]


def test_parameters_go_only_where_they_are_declared(folder, tmp_path):
    _notebook(folder / "03_other.ipynb", "import pathlib\npathlib.Path('ran-03').write_text('ok')")
    with pytest.raises(ConfigError, match=r"no notebook has the parameter\(s\) \['typo'\]"):
        notebooks.run_notebooks("smoke", folder=folder, out_dir=tmp_path / "o", only=["03"], parameters={"typo": 1})
    assert not (folder / "ran-03").exists()  # refused before anything ran
    nb = nbformat.read(str(folder / "03_other.ipynb"), as_version=4)
    nb.cells[1].source = "profile = None"  # this one declares no `marker`
    nbformat.write(nb, str(folder / "03_other.ipynb"))
    notebooks.run_notebooks("smoke", folder=folder, out_dir=tmp_path / "o", only=["00", "03"], html=False)
    injected = [c.source for c in nbformat.read(str(tmp_path / "o" / "03_other.ipynb"), as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "marker" not in injected[0] and 'profile = "smoke"' in injected[0]


def test_only_and_no_html(folder, tmp_path):
    out = tmp_path / "out"
    runs = notebooks.run_notebooks("smoke", folder=folder, out_dir=out, only=["02"], html=False)
    assert [(r.name, r.status, r.html) for r in runs] == [("02_never", "ok", None)]
    assert runs[0].seconds > 0
    assert json.loads((out / notebooks.RUN_JSON).read_text())["status"] == "ok"
    assert not list(out.glob("*.html"))


def test_demo_summary(fresh_settings, tmp_path):
    out = fresh_settings.outputs_dir / "notebooks"
    out.mkdir(parents=True)
    (out / notebooks.RUN_JSON).write_text(json.dumps({
        "profile": "quick", "status": "ok",
        "notebooks": [{"name": "00_environment_setup", "status": "ok", "seconds": 3.0, "html": "/x.html"}],
    }))
    records.record_summary(fresh_settings, "01_dataset_setup", {"dataset": "shapes:abc"})
    records.record_summary(fresh_settings, "02_model_training", {"experiment_id": "1", "run_id": "r1"})
    records.record_summary(fresh_settings, "03_model_evaluation", {
        "decision": "promote", "reason": "no champion yet", "registered_version": "1",
        "champion_version_after": "1", "challenger": {"map50_95": 0.7},
    })
    records.record_summary(fresh_settings, "04_model_deployment", {
        "model_version": "1", "endpoint_check": {"ok": True}, "latency": {"p50_ms": 20.0},
        "kept": True, "scoring_uri": "http://127.0.0.1:1234/score",
    })
    s = notebooks.demo_summary(fresh_settings)
    assert s["profile"] == "quick" and s["run_status"] == "ok"
    assert s["decision"] == "promote" and s["registered_version"] == "1" and s["champion_version"] == "1"
    assert s["deployed_version"] == "1" and s["endpoint_check"] == {"ok": True}
    assert s["endpoint_running"] == "http://127.0.0.1:1234/score"
    assert s["dataset"] == "shapes:abc" and s["test_metrics"] == {"map50_95": 0.7}
    assert s["notebooks"] == [{"name": "00_environment_setup", "status": "ok", "seconds": 3.0, "html": "/x.html"}]
    assert s["mlflow_ui"]["url"].endswith("/#/experiments/1/runs/r1")
    assert s["executed_in"] == str(out)
    empty = notebooks.demo_summary(fresh_settings, tmp_path / "nothing")
    assert empty["run_status"] is None and empty["notebooks"] == []


def test_kernels_talk_over_ipc_not_tcp(tmp_path):
    """The kernel listens on unix sockets, so no other local user can reach it over loopback TCP
    (and ipykernel has no 'running over TCP without encryption' warning to print)."""
    f = tmp_path / "nbs"
    (f / "profiles").mkdir(parents=True)
    (f / "profiles" / "smoke.yaml").write_text("profile: smoke\n")
    _notebook(f / "00_transport.ipynb",
              "import pathlib\nfrom ipykernel.kernelapp import IPKernelApp\n"
              "app = IPKernelApp.instance()\n"
              "pathlib.Path('transport').write_text(f'{app.transport} {app.ip}')")
    notebooks.run_notebooks("smoke", folder=f, out_dir=tmp_path / "out", html=False)
    transport, ip = (f / "transport").read_text().split(" ", 1)
    assert transport == "ipc" and Path(ip).is_absolute(), (transport, ip)
    assert Path(ip).parent.name.startswith("visionops-kernel-")
    assert not Path(ip).parent.exists()  # the sockets' folder is gone after the run
    # and no socket was left in the notebooks' working directory
    assert sorted(p.name for p in f.iterdir()) == ["00_transport.ipynb", "profiles", "transport"]
