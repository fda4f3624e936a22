"""Shared by the benchmarks: describe the machine, and replace one section of docs/benchmarks.md.

Each benchmark owns a section between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`
markers, so re-running one benchmark rewrites its own table and leaves the others alone.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

HEADER = (
    "# Benchmarks\n\nPerformance targets live here, never in tests. "
    "Each section says the machine and the command.\n"
)


def machine() -> dict[str, object]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
        gpu = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version()}


def write_section(doc: Path, name: str, body: str) -> None:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = doc.read_text() if doc.is_file() else HEADER
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def publish(report: dict, out: Path, doc: Path | None, section: str, markdown: str) -> None:
    """Write the benchmark's JSON, its docs section (unless `doc` is None: --no-doc) and print
    each target's verdict (`report["targets"]`: target, value, ok)."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    if doc is not None:
        write_section(doc, section, markdown)
        print(f"updated {doc}")
    for t in report["targets"]:
        print(f"  {'ok  ' if t['ok'] else 'MISS'} {t['target']}: {t['value']}")
