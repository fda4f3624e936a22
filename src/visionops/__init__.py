"""VisionOps: the object-detection lifecycle (data, training, evaluation, registry, serving,
pipelines) behind the notebooks, the CLI and the Azure ML pipeline steps."""

from visionops import offline as _offline
from visionops.settings import get_settings as _get_settings

__version__ = "0.1.0"

# Before anything imports ultralytics: offline switches and a project-local config dir.
_offline.apply_env(_get_settings().yolo_config_dir)
