"""Inference environments benchmark (issue 16): installed size, cold start and endpoint latency of
the ONNX environment (pyproject's `onnx` extra: no torch, no Ultralytics) and the PyTorch one
(`pytorch` extra), each installed into a throw-away venv exactly as the inference image installs it
(`pip install -c requirements/constraints.txt ".[<extra>]"`). This benchmark uses the package
index (pip); the tests never do.

Measured, for each environment:
- installed size: the venv's site-packages (what an image layer carries), the five largest
  distributions, whether torch / ultralytics are in it at all;
- cold start: `azmlinfsrv` started from that venv on the same model folder, until the first
  POST /score is answered 200 (process start, imports, model load, warm-up); median of --starts;
- endpoint latency: --requests sequential POST /score of one test image, p50 / p95.
Serving is measured in --starts interleaved rounds (each environment once per round, order
rotated), so the load of a shared machine falls on every environment alike.
The ONNX runtime served from the full development environment (.venv, what the inference
environment used to be) is measured too, as the "before" of the latency and cold start.

    make bench-envs
    .venv/bin/python benchmarks/bench_envs.py --starts 1 --requests 50     # quicker

The model: as bench_serve.py (the champion with an ONNX export, else a small detector trained once
into outputs/benchmarks/serve-model/). Writes outputs/benchmarks/envs.json and the "Inference
environments" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, write_section  # noqa: E402

PIP_VERSION = "26.3"  # the Makefile's
RUNTIMES = {"onnx": "onnx", "pytorch": "pytorch"}  # extra -> the runtime its server is started with


def _du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = Path(root, f)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return r


def build_env(extra: str, where: Path) -> dict:
    """A fresh venv with `.[extra]` installed under the project's pins; its size and contents."""
    venv = where / f"venv-{extra}"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", f"pip=={PIP_VERSION}"])
    started = time.perf_counter()
    _run([str(py), "-m", "pip", "install", "--quiet", "--no-cache-dir", "-c", "requirements/constraints.txt",
          f".[{extra}]"], cwd=REPO)
    install_s = time.perf_counter() - started
    _run([str(py), "-m", "pip", "check"])
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    probe = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None for m in "
             "('torch', 'torchvision', 'ultralytics', 'onnxruntime', 'cv2')}))")
    present = json.loads(_run([str(py), "-c", probe]).stdout)
    sizes = {}
    for d in site.iterdir():
        if d.is_dir() and not d.name.endswith((".dist-info", "__pycache__")):
            sizes[d.name] = _du(d)
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    n_dists = len(list(site.glob("*.dist-info")))
    return {
        "extra": extra, "venv": str(venv), "python": str(py), "site_packages": str(site),
        "site_packages_mb": round(_du(site) / 1e6, 1), "venv_mb": round(_du(venv) / 1e6, 1),
        "distributions": n_dists, "largest_mb": {k: round(v / 1e6, 1) for k, v in top},
        "installed": present, "install_s": round(install_s, 1),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: bytes, timeout: float) -> int:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


class Server:
    """azmlinfsrv from one venv on one model folder (one worker, no auth), for a measurement."""

    def __init__(self, python: Path, runtime: str, model_dir: Path, workdir: Path, threads: int, body: bytes):
        self.python, self.runtime, self.model_dir, self.workdir = python, runtime, model_dir, workdir
        self.threads, self.body = threads, body
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> float:
        """Seconds from the process start to the first 200 answer to POST /score."""
        score = _run([str(self.python), "-c", "import visionops.serving.score as s; print(s.__file__)"],
                     cwd=self.workdir).stdout.strip()
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VISIONOPS_", "PYTHON", "AZUREML_"))}
        env.update({"VISIONOPS_ROOT": str(self.workdir), "VISIONOPS_SERVING_RUNTIME": self.runtime,
                    "VISIONOPS_THREADS": str(self.threads), "AML_APP_ROOT": str(self.workdir),
                    "PYTHONUNBUFFERED": "1", "YOLO_OFFLINE": "1"})
        exe = self.python.with_name("azmlinfsrv")
        log = open(self.workdir / f"server-{self.runtime}.log", "ab")  # noqa: SIM115 - handed to the child
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(exe), "--entry_script", score, "--model_dir", str(self.model_dir), "--port", str(self.port),
             "--worker_count", "1"], env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        while time.perf_counter() - started < 300:
            if self.proc.poll() is not None:
                raise SystemExit(f"azmlinfsrv ({self.runtime}) exited; see {self.workdir}")
            if _post(self.url, self.body, timeout=30) == 200:
                return time.perf_counter() - started
            time.sleep(0.05)
        raise SystemExit(f"azmlinfsrv ({self.runtime}) did not answer in 300 s; see {self.workdir}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/score"

    def stop(self) -> None:
        if self.proc is None:
            return
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None


def measure(python: Path, runtime: str, model_dir: Path, image: Path, workdir: Path, *, starts: int,
            requests: int, threads: int) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"image": base64.b64encode(image.read_bytes()).decode()}).encode()
    cold = []
    latencies: list[float] = []
    errors = 0
    for i in range(starts):
        server = Server(python, runtime, model_dir, workdir, threads, body)
        try:
            cold.append(server.start())
            if i == starts - 1:  # latency on the last start, after a few warm-up requests
                for _ in range(5):
                    _post(server.url, body, 30)
                for _ in range(requests):
                    t = time.perf_counter()
                    errors += _post(server.url, body, 30) != 200
                    latencies.append((time.perf_counter() - t) * 1e3)
        finally:
            server.stop()
    return {
        "runtime": runtime, "cold_start_s": [round(c, 2) for c in cold],
        "cold_start_median_s": round(statistics.median(cold), 2),
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p95_ms": round(statistics.quantiles(latencies, n=100)[94], 2),
        "requests": len(latencies), "errors": errors, "latencies_ms": [round(x, 3) for x in latencies],
    }


def _pool(parts: list[dict]) -> dict:
    """One environment's rounds pooled: every cold start, every request's latency."""
    cold = [c for p in parts for c in p["cold_start_s"]]
    latencies = [x for p in parts for x in p["latencies_ms"]]
    return {
        "runtime": parts[0]["runtime"], "cold_start_s": cold, "cold_start_median_s": round(statistics.median(cold), 2),
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p95_ms": round(statistics.quantiles(latencies, n=100)[94], 2),
        "requests": len(latencies), "errors": sum(p["errors"] for p in parts),
    }


def verdict(result: dict, target_mb: float = 400.0) -> str:
    """The issue's targets, met or not, from the numbers (size, latency against the old set)."""
    onnx, torch_env = result["environments"]["onnx"], result["environments"]["pytorch"]
    lean, before = result["serving"]["onnx"], result["serving"]["onnx-in-full-env"]
    size = onnx["site_packages_mb"]
    opencv = sum(v for k, v in onnx["largest_mb"].items() if "cv2" in k or "opencv" in k)
    if size <= target_mb:
        size_line = f"installed size <= {target_mb:.0f} MB: **met** ({size:.0f} MB"
    else:
        size_line = (f"installed size <= {target_mb:.0f} MB: **missed by {size - target_mb:.0f} MB** ({size:.0f} MB; "
                     f"OpenCV is {opencv:.0f} MB of it, used only by the letterbox resize in "
                     "serving/predictor.py: a cv2-free letterbox would take the environment to about "
                     f"{size - opencv:.0f} MB")
    size_line += f", {torch_env['site_packages_mb'] / size:.0f}x smaller than the PyTorch environment)"
    ok = lean["latency_p50_ms"] <= before["latency_p50_ms"] * 1.05
    latency_line = (f"endpoint latency unchanged or better: **{'met' if ok else 'missed'}** (p50 "
                    f"{lean['latency_p50_ms']:.1f} ms in the ONNX environment vs {before['latency_p50_ms']:.1f} ms for "
                    "the same runtime in the full environment)")
    return f"Targets (issue 16): {size_line}; {latency_line}."


def render(result: dict) -> str:
    m = result["machine"]
    rows = []
    for name, e in result["environments"].items():
        r = result["serving"][name]
        heavy = ", ".join(k for k in ("torch", "ultralytics") if e["installed"][k]) or "none"
        largest = ", ".join(f"{k} {v:.0f}" for k, v in list(e["largest_mb"].items())[:3])
        rows.append(f"| `{e['extra']}` | {e['site_packages_mb']:.0f} MB | {e['distributions']} | {heavy} | {largest} "
                    f"| {r['cold_start_median_s']:.1f} s | {r['latency_p50_ms']:.1f} / {r['latency_p95_ms']:.1f} ms |")
    before = result["serving"]["onnx-in-full-env"]
    full_mb = result["full_env_site_packages_mb"]
    rows.append(f"| full dev env (`.venv`, the old inference set and more), ONNX runtime | {full_mb:.0f} MB | "
                f"{result['full_env_distributions']} | torch, ultralytics | | {before['cold_start_median_s']:.1f} s "
                f"| {before['latency_p50_ms']:.1f} / {before['latency_p95_ms']:.1f} ms |")
    return "\n".join([
        "## Inference environments: ONNX-only vs PyTorch (issue 16)",
        "",
        f"`make bench-envs` on {m['cpu']} ({m['cores']} cores), Python {m['python']}, {result['date']}. "
        "Each environment is a throw-away venv with `pip install -c requirements/constraints.txt \".[<extra>]\"` "
        "(what the inference images install); size = its site-packages. Cold start = `azmlinfsrv` process start "
        f"to the first answered POST /score (median of {result['starts']}); latency = {result['requests']} "
        f"sequential requests of one {result['image_px']} JPEG, one worker, {result['threads']} thread(s); measured "
        "in interleaved rounds (each round: one start and a share of the requests of every environment). "
        f"Model: {result['model']}.",
        "",
        "| environment (extra) | installed | distributions | torch / Ultralytics | largest (MB) | cold start | "
        "latency p50 / p95 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        verdict(result) + " The PyTorch environment is the opt-in one (`--runtime pytorch`, "
        "environments/azureml/inference-pytorch.yml); its size is torch's CUDA libraries (nvidia, triton).",
        "Raw numbers: `outputs/benchmarks/envs.json`.",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--starts", type=int, default=3, help="server starts per environment (cold start median)")
    ap.add_argument("--requests", type=int, default=200, help="sequential requests for the latency")
    ap.add_argument("--threads", type=int, default=1, help="inference threads (VISIONOPS_THREADS)")
    ap.add_argument("--keep", action="store_true", help="keep the throw-away venvs (printed)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the docs section from outputs/benchmarks/envs.json without measuring again")
    args = ap.parse_args()
    if args.render_only:
        from visionops.settings import get_settings

        saved = json.loads((get_settings().outputs_dir / "benchmarks" / "envs.json").read_text())
        write_section(REPO / "docs" / "benchmarks.md", "envs", render(saved))
        return

    from bench_serve import pick_model, train_model

    from visionops.settings import get_settings

    settings = get_settings()
    model_root = settings.outputs_dir / "benchmarks" / "serve-model"
    picked = pick_model(settings, model_root)
    if picked is None:
        print(f"==> training the benchmark detector into {model_root} (once)")
        train_model(model_root, settings)
        picked = pick_model(settings, model_root)
    _, ref, model_dir, images = picked
    image = images[0]
    from PIL import Image

    w, h = Image.open(image).size
    tmp = Path(tempfile.mkdtemp(prefix="visionops-bench-envs-"))
    result: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                    "model": f"{ref.name} v{ref.version}", "image_px": f"{w}x{h}", "starts": args.starts,
                    "requests": args.requests, "threads": args.threads, "environments": {}, "serving": {}}
    try:
        pythons: dict[str, tuple[Path, str]] = {}
        for extra, runtime in RUNTIMES.items():
            print(f"==> {extra}: installing .[{extra}] into a fresh venv")
            env = build_env(extra, tmp)
            result["environments"][extra] = env
            pythons[extra] = (Path(env["python"]), runtime)
            print(f"    {env['site_packages_mb']} MB, {env['distributions']} distributions, {env['installed']}")
        full_py = REPO / ".venv" / "bin" / "python"
        full_site = Path(_run([str(full_py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                         .stdout.strip())
        result["full_env_site_packages_mb"] = round(_du(full_site) / 1e6, 1)
        result["full_env_distributions"] = len(list(full_site.glob("*.dist-info")))
        # the ONNX runtime from the full development environment (.venv): the before
        pythons["onnx-in-full-env"] = (full_py, "onnx")
        # Serving is measured in interleaved rounds (one start and a share of the requests of every
        # environment per round, the order rotated), so load on this shared machine hits all alike.
        rounds: dict[str, list[dict]] = {key: [] for key in pythons}
        order = list(pythons)
        per_round = max(1, args.requests // args.starts)
        for r in range(args.starts):
            for key in order[r % len(order):] + order[:r % len(order)]:
                py, runtime = pythons[key]
                print(f"==> round {r + 1}/{args.starts}: {key}: one cold start and {per_round} requests")
                rounds[key].append(measure(py, runtime, model_dir, image, tmp / f"run-{key}", starts=1,
                                           requests=per_round, threads=args.threads))
        for key, parts in rounds.items():
            result["serving"][key] = _pool(parts)
            print(f"    {key}: {result['serving'][key]}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out = settings.outputs_dir / "benchmarks" / "envs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    write_section(REPO / "docs" / "benchmarks.md", "envs", render(result))
    print(f"wrote {out} and the 'envs' section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
