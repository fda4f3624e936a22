"""The local endpoint: Azure ML's inference server (azmlinfsrv) on a loopback port.

`LocalEndpoint` runs `azmlinfsrv --entry_script score.py --model_dir <model>` as a child process
and is a context manager: start (wait until healthy), invoke, stop (no orphans). The same
score.py runs in an Azure online endpoint, so what passes here is what Azure will run.

Process hygiene, because a leaked server keeps a port and a GB of memory:
- the server gets its own session/process group; stop() signals the whole group (master and
  gunicorn workers), SIGTERM then SIGKILL after a grace period;
- stop() also runs at interpreter exit (atexit) and from __exit__;
- if the caller dies without either (SIGKILL, a crash), a watchdog in the server (see
  gunicorn_conf.py) sees the parent's pipe close and shuts the server down. Unlike
  prctl(PR_SET_PDEATHSIG) this follows the parent *process*, not the thread that started it.

`deploy_local` / `stop_local` are the background variant behind `visionops deploy --target
local`: the server outlives the command, and outputs/endpoints/<name>/ holds endpoint.json
(URL, model, pid), server.log and the key in a 0600 file.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from pydantic import BaseModel

from visionops.errors import ConfigError, VisionOpsError
from visionops.serving import gunicorn_conf
from visionops.serving.auth import KEY_ENV, generate_key
from visionops.serving.endpoint import EndpointClient, EndpointError, EndpointInfo
from visionops.settings import Settings

SCORE_PY = Path(__file__).with_name("score.py")
GUNICORN_CONF = Path(gunicorn_conf.__file__)
RECORD = "endpoint.json"
KEY_FILE = "key"
LOG_FILE = "server.log"
DEFAULT_NAME = "local"
_SECRET_ENV = ("VISIONOPS_ENDPOINT_KEY",)  # the web page's key for some endpoint: the server needs none


class EndpointStartError(VisionOpsError):
    """The server did not become healthy; the message carries the end of its log."""


def endpoints_dir(settings: Settings) -> Path:
    return settings.outputs_dir / "endpoints"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks; a rare race is retried by start())."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _server_command() -> list[str]:
    exe = Path(sys.executable).with_name("azmlinfsrv")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "azureml_inference_server_http"]


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def write_secret(path: Path, secret: str) -> Path:
    """Write a secret readable by this user only (0600), in a 0700 folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    os.chmod(path, 0o600)
    return path


class LocalEndpoint:
    """azmlinfsrv serving one model folder on loopback; use as a context manager."""

    def __init__(
        self,
        model_dir: Path | str,
        settings: Settings,
        *,
        name: str = DEFAULT_NAME,
        runtime: str | None = None,
        auth: bool = True,
        key: str | None = None,
        port: int | None = None,
        host: str | None = None,
        workers: int | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        detached: bool = False,
        inherit_output: bool = False,
    ):
        self.model_dir = Path(model_dir).resolve()
        self.settings = settings
        self.name = name
        self.runtime = runtime or settings.serving_runtime
        self.auth = auth
        self._key = (key or generate_key()) if auth else None
        self.port = port
        self.host = host or settings.serving_host
        self.workers = workers or settings.serving_workers
        self.model_name = model_name
        self.model_version = model_version
        self.workdir = endpoints_dir(settings) / name
        self.log_path = log_path or (None if inherit_output else self.workdir / LOG_FILE)
        self.extra_env = dict(env or {})
        self.detached = detached
        self.proc: subprocess.Popen[bytes] | None = None
        self._watch_w: int | None = None
        self._info: EndpointInfo | None = None

    def __repr__(self) -> str:
        state = f"pid {self.proc.pid}" if self.running else "stopped"
        return f"LocalEndpoint({self.name!r}, {self.model_dir}, {state}, auth={'on' if self.auth else 'off'})"

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def info(self) -> EndpointInfo:
        if self._info is None:
            raise EndpointError(f"endpoint {self.name!r} is not started; call start() or use `with LocalEndpoint(...)`")
        return self._info

    def client(self, timeout: float = 60.0) -> EndpointClient:
        return EndpointClient(self.info, timeout=timeout)

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self.client() as c:
            return c.score(payload)

    def _environment(self, port: int) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV and k != KEY_ENV}
        threads = s.threads or max(1, (os.cpu_count() or 1) // self.workers)
        env.update(
            {
                "VISIONOPS_ROOT": str(s.root),
                "VISIONOPS_OUTPUTS_DIR": str(s.outputs_dir),
                "VISIONOPS_SERVING_RUNTIME": self.runtime,
                "VISIONOPS_SERVING_HOST": self.host,
                "VISIONOPS_MAX_PAYLOAD_BYTES": str(s.max_payload_bytes),
                "VISIONOPS_MAX_IMAGE_PIXELS": str(s.max_image_pixels),
                "VISIONOPS_MAX_IMAGES_PER_REQUEST": str(s.max_images_per_request),
                "VISIONOPS_MIN_IMAGE_SIDE": str(s.min_image_side),
                "VISIONOPS_THREADS": str(threads),
                "VISIONOPS_DEVICE": s.device,
                # production data collection (visionops.monitoring.collect): the server writes where
                # these settings say, whatever the caller's environment holds
                "VISIONOPS_COLLECT": "true" if s.collect else "false",
                "VISIONOPS_COLLECT_DIR": str(s.production_dir),
                "VISIONOPS_COLLECT_SAMPLE_RATE": str(s.collect_sample_rate),
                "VISIONOPS_COLLECT_SAMPLE_MAX_BYTES": str(s.collect_sample_max_bytes),
                "VISIONOPS_COLLECT_MAX_FILE_BYTES": str(s.collect_max_file_bytes),
                "VISIONOPS_COLLECT_MAX_FILES": str(s.collect_max_files),
                # our own app root: azmlinfsrv reads config.json / logging.json from it, and the
                # project root may hold an Azure workspace config.json
                "AML_APP_ROOT": str(self.workdir / "app"),
                "GUNICORN_CMD_ARGS": f"--config {shlex.quote(str(GUNICORN_CONF))}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.model_name:
            env["VISIONOPS_SERVING_MODEL_NAME"] = self.model_name
        if self.model_version:
            env["VISIONOPS_SERVING_MODEL_VERSION"] = str(self.model_version)
        if self._key:
            env[KEY_ENV] = self._key
        env.update(self.extra_env)
        return env

    def _spawn(self, port: int) -> None:
        (self.workdir / "app").mkdir(parents=True, exist_ok=True)
        env = self._environment(port)
        cmd = [*_server_command(), "--entry_script", str(SCORE_PY), "--model_dir", str(self.model_dir),
               "--port", str(port), "--worker_count", str(self.workers)]
        pass_fds: tuple[int, ...] = ()
        if not self.detached:
            r, w = os.pipe()
            env[gunicorn_conf.WATCH_FD_ENV] = str(r)
            pass_fds = (r,)
            self._watch_w = w
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out: Any = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        else:
            out = None
        try:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=self.workdir / "app", stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=True, pass_fds=pass_fds, close_fds=True,
            )
        finally:
            if out is not None:
                out.close()
            for fd in pass_fds:
                os.close(fd)  # the child has its copy; ours would keep the pipe open
        if not self.detached:
            _LIVE.add(self)

    def start(self, timeout: float = 300.0) -> EndpointInfo:
        """Start the server and wait until GET / answers Healthy (model loaded); returns its info."""
        if self.running:
            return self.info
        attempts = 1 if self.port else 3
        for attempt in range(attempts):
            port = self.port or free_port(self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1")
            log_offset = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
            self._spawn(port)
            try:
                self._wait_healthy(port, timeout)
            except EndpointStartError:
                in_use = self.log_path is not None and "Address already in use" in self.log_path.read_text(
                    errors="replace")[log_offset:]
                self.stop()
                if in_use and attempt + 1 < attempts:
                    continue
                raise
            base = f"http://{_url_host(self.host)}:{port}"
            from visionops.serving.predictor import find_model

            bundle = find_model(self.model_dir, name=self.model_name, version=self.model_version)
            self.port = port
            self._info = EndpointInfo(
                name=self.name, scoring_uri=f"{base}/score", health_uri=f"{base}/", model_name=bundle.name,
                model_version=bundle.version, runtime=self._served_runtime(bundle), backend="local", auth=self.auth,
            ).with_key(self._key)
            return self._info
        raise EndpointStartError("unreachable")  # pragma: no cover

    def _served_runtime(self, bundle) -> str:
        from visionops.serving.predictor import resolve_runtime

        return resolve_runtime(bundle, self.runtime)

    def _wait_healthy(self, port: int, timeout: float) -> None:
        url = f"http://{_url_host(self.host)}:{port}/"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise EndpointStartError(
                    f"azmlinfsrv exited with code {code} before it was healthy; last lines of "
                    f"{self.log_path or 'its output'}:\n{_tail(self.log_path)}"
                )
            try:
                r = requests.get(url, timeout=5)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:80]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise EndpointStartError(
            f"azmlinfsrv not healthy at {url} after {timeout:.0f} s (last: {last}); last lines of "
            f"{self.log_path or 'its output'}:\n{_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Stop master and workers (SIGTERM to the group, SIGKILL after `timeout`); idempotent."""
        _LIVE.discard(self)
        if self._watch_w is not None:
            with contextlib.suppress(OSError):
                os.close(self._watch_w)
            self._watch_w = None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _terminate_group(proc.pid, lambda t: _wait_popen(proc, t), timeout)

    def __enter__(self) -> LocalEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_popen(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _terminate_group(pgid: int, wait, timeout: float) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    exited = wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)  # workers that outlived the master, or a master that hung
    if not exited:
        wait(5)


# Endpoints started (not detached) by this process; stopped at exit.
_LIVE: weakref.WeakSet[LocalEndpoint] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for ep in list(_LIVE):
        with contextlib.suppress(Exception):
            ep.stop(timeout=5)


# --- background deployments (visionops deploy --target local) ------------------------------------
class LocalDeployment(BaseModel):
    """What outputs/endpoints/<name>/endpoint.json records about a background local endpoint."""

    info: EndpointInfo
    pid: int
    create_time: float
    model_dir: str
    log: str
    key_file: str | None
    started: str

    def alive(self) -> bool:
        """The recorded process still runs (same pid *and* start time, so a reused pid never matches)."""
        import psutil

        try:
            p = psutil.Process(self.pid)
            return abs(p.create_time() - self.create_time) < 1.0 and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def _record_path(settings: Settings, name: str) -> Path:
    return endpoints_dir(settings) / name / RECORD


def load_deployment(settings: Settings, name: str = DEFAULT_NAME) -> LocalDeployment | None:
    """The recorded local deployment with its key, or None when there is none or it has died."""
    path = _record_path(settings, name)
    if not path.is_file():
        return None
    dep = LocalDeployment.model_validate_json(path.read_text())
    if not dep.alive():
        return None
    key = Path(dep.key_file).read_text().strip() if dep.key_file and Path(dep.key_file).is_file() else None
    dep.info = dep.info.with_key(key)
    return dep


def record_deployment(endpoint: LocalEndpoint) -> LocalDeployment:
    """Write endpoint.json (no key in it) and the 0600 key file for a started endpoint."""
    import psutil

    assert endpoint.proc is not None
    info = endpoint.info
    key_file = None
    if info.key is not None:
        key_file = str(write_secret(endpoint.workdir / KEY_FILE, info.key.get_secret_value()))
    dep = LocalDeployment(
        info=info, pid=endpoint.proc.pid, create_time=psutil.Process(endpoint.proc.pid).create_time(),
        model_dir=str(endpoint.model_dir), log=str(endpoint.log_path or ""), key_file=key_file,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    path = endpoint.workdir / RECORD
    path.write_text(json.dumps(dep.model_dump(mode="json"), indent=2))
    return dep


def forget_deployment(settings: Settings, name: str = DEFAULT_NAME) -> None:
    folder = endpoints_dir(settings) / name
    for f in (RECORD, KEY_FILE):
        with contextlib.suppress(FileNotFoundError):
            (folder / f).unlink()


def stop_local(settings: Settings, name: str = DEFAULT_NAME, timeout: float = 15.0) -> bool:
    """Stop a background local endpoint; True when one was running. Its record and key are removed."""
    path = _record_path(settings, name)
    if not path.is_file():
        return False
    dep = LocalDeployment.model_validate_json(path.read_text())
    was_alive = dep.alive()
    if was_alive:
        import psutil

        def wait(t: float) -> bool:
            try:
                psutil.Process(dep.pid).wait(t)
            except psutil.NoSuchProcess:
                return True
            except psutil.TimeoutExpired:
                return False
            return True

        _terminate_group(dep.pid, wait, timeout)
    forget_deployment(settings, name)
    return was_alive


def model_dir_for(settings: Settings, version: str | None = None):
    """(ModelVersionRef, local folder) of a registered version (default: the champion)."""
    from visionops import registry

    ref = registry.get_version(settings, version) if version else registry.require_champion(settings)
    return ref, registry.download(settings, ref)


def deploy_local(
    settings: Settings,
    *,
    model=None,
    version: str | None = None,
    name: str = DEFAULT_NAME,
    runtime: str | None = None,
    auth: bool = True,
    port: int | None = None,
    timeout: float = 300.0,
) -> EndpointInfo:
    """Serve a registered version (default: the champion) in the background; replaces a previous
    deployment of the same name. Returns the endpoint's info (with its key)."""
    if model is None:
        model, folder = model_dir_for(settings, version)
    else:
        from visionops import registry

        folder = registry.download(settings, model)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"endpoint name {name!r} must be letters, digits, '-' or '_'")
    stop_local(settings, name)
    ep = LocalEndpoint(
        folder, settings, name=name, runtime=runtime, auth=auth, port=port, model_name=model.name,
        model_version=model.version, detached=True,
    )
    ep.start(timeout=timeout)
    record_deployment(ep)
    return ep.info


def resolve_endpoint(settings: Settings, name: str = DEFAULT_NAME) -> EndpointInfo:
    """The endpoint to call (web page, smoke test): VISIONOPS_ENDPOINT_URL (+ _KEY) when set,
    else the running local deployment `name` with the key from its 0600 file."""
    if settings.endpoint_url:
        return EndpointInfo(
            name="configured", scoring_uri=settings.endpoint_url, health_uri=None, model_name="(from the endpoint)",
            model_version="?", runtime="?", backend=settings.backend, auth=bool(settings.endpoint_key),
        ).with_key(settings.endpoint_key)
    dep = load_deployment(settings, name)
    if dep is None:
        raise ConfigError(
            f"no endpoint to call: no running local deployment {name!r} under {endpoints_dir(settings)} and "
            "VISIONOPS_ENDPOINT_URL is not set; run `visionops deploy --target local` first "
            "(or set VISIONOPS_ENDPOINT_URL and VISIONOPS_ENDPOINT_KEY)"
        )
    return dep.info
