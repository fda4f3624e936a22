"""Make torch, torchvision and ultralytics unimportable in this process and its children, as in the
ONNX inference environment (pyproject's `onnx` extra, environments/conda/deployment.yml): proof that
the ONNX serving path needs neither, without building that environment in a test.

Put this folder first on PYTHONPATH (Python imports only the first `sitecustomize` it finds). With
NOTORCH_LOG set to a file, each process writes one `armed <pid>` line (proof the blocker was active
there) and one `blocked <module> <pid>` line per import attempt, so a test can tell "never tried"
from "tried and caught the error". When NETBLOCK_LOG is set too, the network block of
tests/support/netblock is armed as well, as tests/support/noazure does.
"""

import importlib.abc
import os
import sys

BLOCKED = ("torch", "torchvision", "ultralytics")
_LOG = os.environ.get("NOTORCH_LOG")


def _record(line: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            _record(f"blocked {fullname} {os.getpid()}")
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked by tests/support/notorch)",
                                      name=fullname)
        return None


sys.meta_path.insert(0, _NoTorch())
_record(f"armed {os.getpid()}")

if os.environ.get("NETBLOCK_LOG"):
    import importlib.util

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netblock", "sitecustomize.py")
    _spec = importlib.util.spec_from_file_location("_visionops_netblock", _path)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
