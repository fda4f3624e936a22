"""Readers and writers between our on-disk layout and the formats people bring or need.

YOLO (our layout or any Ultralytics data set), COCO JSON, Pascal VOC XML and Azure ML
AutoML-for-Images JSONL + MLTable. Every importer checks its whole input first and raises
`DataValidationError` listing each problem with file, line/annotation id and fix; what it
writes passes `visionops.data.validation.validate`. Sources are only read, never changed.
"""

from visionops.data.formats.automl import export_automl, import_automl
from visionops.data.formats.coco import export_coco, import_coco
from visionops.data.formats.voc import export_voc, import_voc
from visionops.data.formats.yolo import import_yolo

__all__ = [
    "export_automl",
    "export_coco",
    "export_voc",
    "import_automl",
    "import_coco",
    "import_voc",
    "import_yolo",
]
