"""Fixtures of the notebook tests: one papermill run of the whole walkthrough per session."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from notebook_support import CLI, REPO, kernel_env, stop_endpoints


@dataclass
class Walkthrough:
    """One `visionops notebooks --profile smoke` run: its project root and what it recorded."""

    root: Path
    returncode: int
    output: str

    @property
    def outputs(self) -> Path:
        return self.root / "outputs" / "notebooks"

    @property
    def run(self) -> dict[str, Any]:
        path = self.outputs / "run.json"
        return json.loads(path.read_text()) if path.is_file() else {"notebooks": []}

    def summary(self, name: str) -> dict[str, Any]:
        """The notebook's recorded summary; fails the test (with the run's output) if it did not run."""
        status = {n["name"]: n["status"] for n in self.run["notebooks"]}
        if status.get(name) != "ok":
            pytest.fail(f"{name} did not run ok ({status.get(name, 'not run')}):\n{self.output[-6000:]}")
        return json.loads((self.outputs / f"{name}.json").read_text())

    @property
    def settings(self):
        from visionops.settings import get_settings

        return get_settings(root=self.root)


@pytest.fixture(scope="session")
def walkthrough(session_root, netblocked_env) -> Walkthrough:
    """All six notebooks in order with papermill and notebooks/profiles/smoke.yaml, through the CLI
    (`visionops notebooks`), in a fresh project root: each notebook reuses what the previous left."""
    root = session_root / "notebooks-papermill"
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [CLI, "notebooks", "--profile", "smoke"], env=kernel_env(netblocked_env, root), cwd=REPO,
        capture_output=True, text=True, timeout=1500,
    )
    yield Walkthrough(root=root, returncode=proc.returncode, output=proc.stdout + proc.stderr)
    stop_endpoints(root)
