"""Gunicorn config for the local endpoint: loopback binding, parent-death watchdog, front door.

azmlinfsrv 1.4.1 runs gunicorn in its own process and hard-codes `-b 0.0.0.0:<port>` (its
DEFAULT_HOST; there is no --host option). Gunicorn still reads a config file named in
GUNICORN_CMD_ARGS (`--config <this file>`), and the command-line bind is applied before the
`on_starting` hook, so the hook below re-binds to VISIONOPS_SERVING_HOST (127.0.0.1 by default)
before any socket is opened. Nothing ever listens on a public interface.

Hooks:
- on_starting (master): loopback bind; start the watchdog when VISIONOPS_SERVING_WATCH_FD names
  the read end of a pipe whose write end only the parent holds. When the parent exits, however
  it dies (even SIGKILL), the pipe reaches EOF and the master shuts itself and its workers down.
- post_worker_init (each worker): wrap the app in `visionops.serving.auth.FrontDoor`.
"""

from __future__ import annotations

import os
import signal
import threading

HOST_ENV = "VISIONOPS_SERVING_HOST"
WATCH_FD_ENV = "VISIONOPS_SERVING_WATCH_FD"

graceful_timeout = 5  # seconds a worker gets to finish its request on shutdown
# gunicorn >= 25 opens a control socket in ~/.gunicorn (or $XDG_RUNTIME_DIR), one path shared by
# every server of this user; the local endpoint needs none, and writes nothing outside the project.
control_socket_disable = True


def _rebind(address: str, host: str) -> str:
    if address.startswith("unix:"):
        return address
    port = address.rsplit(":", 1)[-1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _watch_parent(fd: int) -> None:
    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)  # gunicorn: graceful shutdown of master and workers

    threading.Thread(target=watch, name="visionops-parent-watchdog", daemon=True).start()


def on_starting(server) -> None:
    host = os.environ.get(HOST_ENV, "127.0.0.1")
    binds = [_rebind(a, host) for a in server.cfg.bind]
    server.cfg.set("bind", binds)
    server.log.info("visionops: listening on %s only", ", ".join(binds))
    fd = os.environ.get(WATCH_FD_ENV)
    if fd:
        _watch_parent(int(fd))


def post_worker_init(worker) -> None:
    from visionops.serving.auth import KEY_ENV, FrontDoor
    from visionops.settings import get_settings

    key = os.environ.get(KEY_ENV)
    worker.wsgi = FrontDoor(worker.wsgi, key=key, max_payload_bytes=get_settings().max_payload_bytes)
    worker.log.info("visionops: key auth %s", "on" if key else "off")
