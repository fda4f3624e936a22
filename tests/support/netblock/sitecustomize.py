"""Block and record every non-loopback network attempt of this process and its children.

Put this folder on PYTHONPATH and set NETBLOCK_LOG to a file. Python imports `sitecustomize`
at start-up, so the audit hook is armed before any library loads; child processes inherit
PYTHONPATH and arm it too. Each process writes one `armed <pid>` line (proof the hook was
active) and one `blocked ...` line per attempt, which then fails with PermissionError.
"""

import os
import sys
import traceback

_LOG = os.environ.get("NETBLOCK_LOG")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="ignore")
    if host in _LOCAL_HOSTS:
        return True
    host = str(host)
    return host.startswith("127.") or host.startswith("/") or host == os.uname().nodename


def _record(line: str) -> None:
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _hook(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event in ("socket.connect", "socket.connect_ex", "socket.sendto"):
        address = args[1]
        if not isinstance(address, tuple):  # AF_UNIX paths are local by definition
            return
        host = address[0]
    elif event in ("socket.gethostbyname", "socket.gethostbyaddr"):
        host = args[0]
    else:
        return
    if _is_local(host):
        return
    stack = " < ".join(
        f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(traceback.extract_stack()[:-1][-8:])
    )
    _record(f"blocked {os.getpid()} {event} {host!r} | {stack}")
    raise PermissionError(f"network blocked by tests/support/netblock: {event} {host!r}")


if _LOG:
    _record(f"armed {os.getpid()} {sys.argv[:2]}")
    sys.addaudithook(_hook)
