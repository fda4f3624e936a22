"""The registered model's MLflow pyfunc wrapper (MLflow "models from code").

MLflow copies this file into every registered model, so `mlflow.pyfunc.load_model(
"models:/shapes-detector/3")` gives a working model without VisionOps installed: input a DataFrame
with a `path` column (image files) or an `image` column (base64). The output depends on the
model's task, which Ultralytics reads from the weights:

- a detector: one row per box, `image_index, class_id, label, confidence, x0, y0, x1, y1` (pixels);
  params `conf` (0.25);
- a classifier: one row per image and rank, `image_index, rank, class_id, label, probability`
  (the top_k most probable classes, best first, rank 1 = top-1); params `top_k` (5).

It must stay importable on its own: no visionops imports.
"""

import base64
import io
import os

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

COLUMNS = ["image_index", "class_id", "label", "confidence", "x0", "y0", "x1", "y1"]
CLASSIFY_COLUMNS = ["image_index", "rank", "class_id", "label", "probability"]


class YoloModel(PythonModel):
    def load_context(self, context):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "0")
        from ultralytics import YOLO

        self.model = YOLO(context.artifacts["weights"])  # the task comes from the checkpoint

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from PIL import Image

        params = params or {}
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "path" in frame:
            images = [Image.open(p).convert("RGB") for p in frame["path"]]
        elif "image" in frame:
            images = [Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB") for b in frame["image"]]
        else:
            raise ValueError("input needs a 'path' column (image files) or an 'image' column (base64)")
        if self.model.task == "classify":
            return self._classify(images, int(params.get("top_k", 5)))
        rows = []
        results = self.model.predict(images, conf=float(params.get("conf", 0.25)), verbose=False)
        for i, r in enumerate(results):
            b = r.boxes
            for (x0, y0, x1, y1), c, p in zip(b.xyxy.tolist(), b.cls.tolist(), b.conf.tolist(), strict=True):
                rows.append([i, int(c), r.names[int(c)], float(p), x0, y0, x1, y1])
        return pd.DataFrame(rows, columns=COLUMNS)

    def _classify(self, images: list, top_k: int) -> pd.DataFrame:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        rows = []
        for i, r in enumerate(self.model.predict(images, verbose=False)):
            probs = r.probs.data.float().cpu()
            k = min(top_k, len(probs))
            values, ids = probs.topk(k)
            for rank, (c, p) in enumerate(zip(ids.tolist(), values.tolist(), strict=True), 1):
                rows.append([i, rank, int(c), r.names[int(c)], float(p)])
        return pd.DataFrame(rows, columns=CLASSIFY_COLUMNS)


mlflow.models.set_model(YoloModel())
