"""The registered model's MLflow pyfunc wrapper (MLflow "models from code").

MLflow copies this file into every registered model, so `mlflow.pyfunc.load_model(
"models:/shapes-detector/3")` gives a detector without VisionOps installed: input a DataFrame
with a `path` column (image files) or an `image` column (base64), output one row per box.
It must stay importable on its own: no visionops imports.
"""

import base64
import io
import os

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

COLUMNS = ["image_index", "class_id", "label", "confidence", "x0", "y0", "x1", "y1"]


class YoloDetector(PythonModel):
    def load_context(self, context):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "0")
        from ultralytics import YOLO

        self.model = YOLO(context.artifacts["weights"], task="detect")

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
        rows = []
        results = self.model.predict(images, conf=float(params.get("conf", 0.25)), verbose=False)
        for i, r in enumerate(results):
            b = r.boxes
            for (x0, y0, x1, y1), c, p in zip(b.xyxy.tolist(), b.cls.tolist(), b.conf.tolist(), strict=True):
                rows.append([i, int(c), r.names[int(c)], float(p), x0, y0, x1, y1])
        return pd.DataFrame(rows, columns=COLUMNS)


mlflow.models.set_model(YoloDetector())
