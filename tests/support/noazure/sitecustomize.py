"""Make `azure` and `azureml` unimportable in this process and its children, as if the azure extra
were not installed: proof that local mode needs no azure-* package.

Put this folder on PYTHONPATH. When NETBLOCK_LOG is set too, the network block of
tests/support/netblock is armed as well (only one sitecustomize module is ever imported).
"""

import importlib.abc
import os
import sys

BLOCKED = ("azure", "azureml")


class _NoAzure(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked by tests/support/noazure)",
                                      name=fullname)
        return None


sys.meta_path.insert(0, _NoAzure())

if os.environ.get("NETBLOCK_LOG"):
    import importlib.util

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netblock", "sitecustomize.py")
    _spec = importlib.util.spec_from_file_location("_visionops_netblock", _path)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
