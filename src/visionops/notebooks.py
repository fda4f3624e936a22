"""Run the walkthrough notebooks headlessly, in order, the way Azure DevOps and `make demo` do.

Each notebook in `notebooks/` (00_environment_setup .. 05_training_pipeline) is executed by
papermill with the parameters of a profile file (`notebooks/profiles/<profile>.yaml`) into
`outputs/notebooks/<name>.ipynb`, plus an HTML copy for people who have no Jupyter at hand. The
run stops at the first failing notebook and raises `NotebookFailed`, which names the notebook,
the failing cell and the error; the executed copy of the failing notebook is still written
(papermill puts a red error cell at its top), so CI can publish it as an artifact.

`visionops notebooks --profile smoke|quick|full` and `make notebooks PROFILE=...` call
`run_notebooks`; `visionops demo-summary` reads what the notebooks recorded (`demo_summary`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from visionops.errors import ConfigError, VisionOpsError

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
RUN_JSON = "run.json"
KERNEL = "python3"


class NotebookRun(BaseModel):
    name: str
    input: Path
    output: Path
    html: Path | None = None
    seconds: float
    status: str  # ok | failed


class NotebookFailed(VisionOpsError):
    """A notebook raised in one of its cells; the notebooks after it did not run."""

    def __init__(self, notebook: str, cell: int | None, exec_count: int | None, error: str, source: str,
                 output: Path):
        first = next((ln for ln in source.splitlines() if ln.strip()), "").strip()
        where = f"cell {cell}" if cell is not None else "an unknown cell"
        if exec_count is not None:
            where += f" (execution count {exec_count})"
        super().__init__(
            f"notebook {notebook} failed in {where}: {error}\n"
            f"  the cell starts with: {first[:120]}\n"
            f"  executed copy with the traceback: {output}"
        )
        self.notebook, self.cell, self.exec_count, self.error, self.output = notebook, cell, exec_count, error, output


def default_folder() -> Path:
    """`notebooks/` of the checkout this package runs from (src layout), else of the working directory.

    Not the settings' root: VISIONOPS_ROOT moves data and outputs (tests, benchmarks), not the code."""
    from visionops.settings import checkout_root

    return checkout_root() / "notebooks"


def list_notebooks(folder: Path) -> list[Path]:
    """The numbered notebooks of a folder in run order (00_..., 01_..., ...)."""
    found = sorted(Path(folder).glob(NOTEBOOK_GLOB))
    if not found:
        raise ConfigError(f"no notebooks matching {NOTEBOOK_GLOB} in {folder}")
    return found


def load_parameters(folder: Path, profile: str) -> dict[str, Any]:
    """The papermill parameters of a profile: `notebooks/profiles/<profile>.yaml`."""
    path = Path(folder) / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(folder) / "profiles").glob("*.yaml"))
        raise ConfigError(f"no parameter file {path}; profiles: {', '.join(known) or 'none'}")
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must be a mapping of parameter names to values")
    return params


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the notebooks named in `only` (by number '03' or name '03_model_evaluation')."""
    if not only:
        return notebooks
    wanted = {o.strip().removesuffix(".ipynb") for o in only if o.strip()}
    picked = [nb for nb in notebooks if nb.stem in wanted or nb.stem[:2] in wanted]
    missing = sorted(w for w in wanted if not any(nb.stem == w or nb.stem[:2] == w for nb in notebooks))
    if missing:
        raise ConfigError(f"no notebook {missing}; have {[nb.stem for nb in notebooks]}")
    return picked


def to_html(executed: Path, html: Path) -> Path:
    """An HTML copy of an executed notebook (nbconvert's lab template, inputs and outputs)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(executed))
    html.write_text(body, encoding="utf-8")
    return html


def kernel_config(socket_dir: Path) -> Any:
    """Kernels talk to papermill over IPC (unix sockets in `socket_dir`), not unencrypted TCP.

    A kernel on loopback TCP is reachable by any local user who finds its port, and ipykernel warns
    about it on every start ("Kernel is running over TCP without encryption"), which would otherwise
    fill the demo's output. The socket prefix must be absolute: jupyter_client's default
    ("kernel-ipc") lands the sockets in the notebook's working directory.
    """
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": str(socket_dir / "kernel")}})


def run_notebooks(
    profile: str = "quick",
    *,
    folder: Path | None = None,
    out_dir: Path | None = None,
    only: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    kernel_name: str = KERNEL,
    html: bool = True,
    log_output: bool = False,
    execution_timeout: int | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> list[NotebookRun]:
    """Execute the notebooks in order with papermill; raise NotebookFailed at the first failure.

    `folder` defaults to the checkout's `notebooks/`, `out_dir` to `outputs/notebooks`; the
    notebooks run with that folder as working directory, as in Jupyter. `parameters` are added
    to (and win over) the profile file's; each notebook receives those its parameters cell declares,
    and a parameter that no notebook declares (a typo) is refused before anything runs. A
    `run.json` in `out_dir` lists what ran and how long.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from visionops.settings import get_settings

    settings = get_settings()
    folder = Path(folder or default_folder()).resolve()
    out_dir = Path(out_dir or Path(settings.outputs_dir) / "notebooks").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {**load_parameters(folder, profile), **(parameters or {})}
    params.setdefault("profile", profile)
    say = on_event or (lambda name, msg: None)
    runs: list[NotebookRun] = []
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    def save(status: str) -> None:
        doc = {
            "profile": profile,
            "parameters": params,
            "started": started_at,
            "status": status,
            "total_seconds": round(sum(r.seconds for r in runs), 2),
            "notebooks": [json.loads(r.model_dump_json()) for r in runs],
        }
        (out_dir / RUN_JSON).write_text(json.dumps(doc, indent=2))

    every = list_notebooks(folder)
    declared = {nb: set(pm.inspect_notebook(str(nb))) for nb in every}
    selected = select(every, only)
    unknown = sorted(set(params) - set().union(*declared.values()))
    if unknown:
        known = sorted(set().union(*declared.values()))
        raise ConfigError(f"no notebook has the parameter(s) {unknown}; they have: {', '.join(known)}")
    # a private (0700) folder for the kernels' sockets, removed when the run ends
    socket_dir = Path(tempfile.mkdtemp(prefix="visionops-kernel-"))
    try:
        for nb in selected:
            output = out_dir / nb.name
            own = {k: v for k, v in params.items() if k in declared[nb]}  # each notebook gets its own parameters
            say(nb.stem, f"running with {own}")
            t = time.perf_counter()
            failure: PapermillExecutionError | None = None
            try:
                pm.execute_notebook(
                    str(nb), str(output), parameters=own, kernel_name=kernel_name, cwd=str(folder),
                    progress_bar=False, log_output=log_output, execution_timeout=execution_timeout,
                    config=kernel_config(socket_dir),
                )
            except PapermillExecutionError as exc:
                failure = exc
            seconds = round(time.perf_counter() - t, 2)
            page = to_html(output, output.with_suffix(".html")) if html and output.is_file() else None
            runs.append(NotebookRun(name=nb.stem, input=nb, output=output, html=page, seconds=seconds,
                                    status="failed" if failure else "ok"))
            if failure is not None:
                save("failed")
                say(nb.stem, f"FAILED after {seconds:.1f}s")
                raise NotebookFailed(nb.name, failure.cell_index, failure.exec_count,
                                     f"{failure.ename}: {failure.evalue}", failure.source or "", output) from None
            say(nb.stem, f"ok in {seconds:.1f}s -> {output}")
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    save("ok")
    return runs


# --- the demo's closing summary ---------------------------------------------------------------
def demo_summary(settings: Any, out_dir: Path | None = None) -> dict[str, Any]:
    """What the notebooks recorded, gathered for the end of `make demo`: the decision, the model
    version, the endpoint check, where the executed notebooks are and how to open the MLflow UI."""
    from visionops.records import read_summary
    from visionops.reports import mlflow_ui

    out_dir = Path(out_dir or Path(settings.outputs_dir) / "notebooks")
    run = json.loads((out_dir / RUN_JSON).read_text()) if (out_dir / RUN_JSON).is_file() else None
    data = read_summary(settings, "01_dataset_setup") or {}
    train = read_summary(settings, "02_model_training") or {}
    evaluation = read_summary(settings, "03_model_evaluation") or {}
    deployment = read_summary(settings, "04_model_deployment") or {}
    pipeline = read_summary(settings, "05_training_pipeline") or {}
    ui = mlflow_ui(settings, train.get("experiment_id"), train.get("run_id"))
    return {
        "profile": (run or {}).get("profile") or evaluation.get("profile"),
        "run_status": (run or {}).get("status"),
        "notebooks": [
            {"name": n["name"], "status": n["status"], "seconds": n["seconds"], "html": n.get("html")}
            for n in (run or {}).get("notebooks", [])
        ],
        "executed_in": str(out_dir),
        "dataset": data.get("dataset"),
        "test_metrics": evaluation.get("challenger"),
        "decision": evaluation.get("decision"),
        "reason": evaluation.get("reason"),
        "registered_version": evaluation.get("registered_version"),
        "champion_version": evaluation.get("champion_version_after"),
        "deployed_version": deployment.get("model_version"),
        "endpoint_check": deployment.get("endpoint_check"),
        "latency": deployment.get("latency"),
        "endpoint_running": deployment.get("scoring_uri") if deployment.get("kept") else None,
        "pipeline": {k: pipeline.get(k) for k in ("status", "decision", "registered_version") if k in pipeline},
        "mlflow_ui": ui,
    }
