"""visionops.reports: the tables and figures the notebooks show."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from matplotlib.figure import Figure

from visionops import reports
from visionops.data.layout import read_labels
from visionops.data.synthetic import SyntheticSpec, generate


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return generate(SyntheticSpec(n_train=4, n_val=2, n_test=3, image_size=80, seed=3),
                    tmp_path_factory.mktemp("reports") / "shapes")


# --- training curves -------------------------------------------------------------------------------
def test_metric_history_and_training_curves(fresh_settings):
    import mlflow

    from visionops.tracking import configure_mlflow

    configure_mlflow(fresh_settings)
    with mlflow.start_run() as run:
        for step in (1, 2, 3):
            mlflow.log_metrics({"train_box_loss": 3.0 - step, "val_box_loss": 3.5 - step, "map50_95": 0.1 * step,
                                "recall": 0.2 * step}, step=step)
    history = reports.metric_history(fresh_settings, run.info.run_id)
    assert list(history.index) == [1, 2, 3] and history.index.name == "epoch"
    assert set(history.columns) == {"train_box_loss", "val_box_loss", "map50_95", "recall"}  # unlogged left out
    assert history.loc[3, "map50_95"] == pytest.approx(0.3)
    fig = reports.plot_training_curves(history, title="t")
    assert isinstance(fig, Figure)
    loss_ax, quality_ax = fig.axes
    assert {ln.get_label() for ln in loss_ax.lines} == {"train_box_loss", "val_box_loss"}
    assert {ln.get_label() for ln in quality_ax.lines} == {"map50_95", "recall"}
    assert [ln.get_linestyle() for ln in loss_ax.lines] == ["-", "--"]  # validation dashed


def test_training_curves_without_metrics_say_so():
    fig = reports.plot_training_curves(pd.DataFrame())
    assert all("no metrics logged" in [t.get_text() for t in ax.texts] for ax in fig.axes)


def test_mlflow_ui(fresh_settings):
    ui = reports.mlflow_ui(fresh_settings, "3", "abc")
    assert ui["url"] == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert fresh_settings.tracking_uri in ui["command"]
    assert reports.mlflow_ui(fresh_settings)["url"] == "http://127.0.0.1:5000"
    assert reports.mlflow_ui(fresh_settings, "3", port=5001)["url"].endswith(":5001/#/experiments/3")
    assert "Azure ML studio" in reports.mlflow_ui(fresh_settings.with_overrides(backend="azure"))["command"]


# --- predictions ---------------------------------------------------------------------------------
def test_ground_truth_in_pixels(shapes):
    images = reports.sample_images(shapes, "test", 2)
    assert [p.name for p in images] == ["test_00000.jpg", "test_00001.jpg"]
    assert len(reports.sample_images(shapes, "test", 99)) == 3
    truths = reports.ground_truths(shapes, images)
    for image, truth in zip(images, truths, strict=True):
        labels = read_labels(shapes / "labels" / "test" / f"{image.stem}.txt")
        assert (truth["width"], truth["height"]) == (80, 80)
        assert len(truth["boxes"]) == len(truth["labels"]) == len(labels) > 0
        for box, label in zip(truth["boxes"], labels, strict=True):
            x0, y0, x1, y1 = box
            assert x0 == pytest.approx(label.corners()[0] * 80) and y1 == pytest.approx(label.corners()[3] * 80)
            assert -1e-6 <= x0 < x1 <= 80 + 1e-6 and -1e-6 <= y0 < y1 <= 80 + 1e-6
        assert set(truth["labels"]) <= {"circle", "rectangle", "triangle", "cross"}


def test_plot_detections(shapes):
    images = reports.sample_images(shapes, "test", 2)
    truths = reports.ground_truths(shapes, images)
    preds = [{"boxes": [[1, 2, 30, 40]], "labels": ["circle"], "confidences": [0.8]}, {"boxes": [], "labels": []}]
    fig = reports.plot_detections(images, preds, truths)
    assert len(fig.axes) == 4  # 2 images x (truth, prediction)
    assert len(fig.axes[0].patches) == len(truths[0]["boxes"])
    assert len(fig.axes[1].patches) == 1 and fig.axes[1].texts[0].get_text() == "circle 0.80"
    assert len(fig.axes[3].patches) == 0
    assert "predicted (1)" in fig.axes[1].get_title()
    only = reports.plot_detections(images, preds)
    assert len(only.axes) == 2
    with pytest.raises(ValueError, match="2 images but 1 predictions"):
        reports.plot_detections(images, preds[:1])
    from PIL import Image

    assert len(reports.plot_detections([Image.new("RGB", (20, 20))], [preds[0]]).axes) == 1


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory) -> Path:
    """A YOLO11n with random weights for the shapes' 4 classes (no download, about a second)."""
    from visionops import offline
    from visionops.settings import get_settings

    root = tmp_path_factory.mktemp("weights")
    offline.configure(get_settings(root=root).yolo_config_dir, 1)
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    model.model.names = {0: "circle", 1: "rectangle", 2: "triangle", 3: "cross"}
    path = root / "untrained.pt"
    model.save(str(path))
    return path


def test_predict_returns_the_endpoint_shape(shapes, untrained_weights, fresh_settings):
    images = reports.sample_images(shapes, "test", 2)
    preds = reports.predict(untrained_weights, images, fresh_settings, imgsz=64, conf=0.0)
    assert len(preds) == 2
    for p in preds:
        assert (p["width"], p["height"]) == (80, 80)
        n = len(p["boxes"])
        assert len(p["labels"]) == len(p["confidences"]) == len(p["class_ids"]) == n
        assert all(len(b) == 4 for b in p["boxes"])
        assert set(p["labels"]) <= {"circle", "rectangle", "triangle", "cross"}


# --- latency -------------------------------------------------------------------------------------
def test_latency_summary_and_plot():
    s = reports.latency_summary([10, 20, 30, 40, 1000])
    assert s == {"requests": 5, "mean_ms": 220.0, "p50_ms": 30.0, "p95_ms": 808.0, "max_ms": 1000.0}
    assert reports.latency_summary([]) == {"requests": 0}
    fig = reports.plot_latency([10, 20, 30])
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert labels == ["round trip", "p50 20.0 ms", "p95 29.0 ms"]
    assert len(reports.plot_latency([]).axes[0].lines) == 1


# --- tables ------------------------------------------------------------------------------------
def test_profiles_table():
    from visionops.profiles import PROFILES

    t = reports.profiles_table()
    assert list(t.index) == list(PROFILES)
    assert t.loc["smoke", "epochs"] == PROFILES["smoke"].train.epochs
    assert t.loc["quick", "train/val/test images"] == "128/32/64"


def test_environments_table(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "constraints.txt").write_text("# pins\ntorch==2.0\nPyYAML==6.0 ; python>3\nnumpy==1\n")
    conda = tmp_path / "environments" / "conda"
    conda.mkdir(parents=True)
    (conda / "training.yml").write_text(
        "# Training environment: what the steps need\nname: vo-train\ndependencies:\n  - python=3.11\n  - pip\n"
        "  - pip:\n      - torch==2.0\n      - pyyaml==6.0\n      - numpy==2\n"
    )
    (conda / "dev.yml").write_text("name: vo-dev\ndependencies:\n  - python=3.11\n  - pip:\n      - -e ../..[dev]\n")
    t = reports.environments_table(tmp_path)
    assert list(t.index) == ["vo-dev", "vo-train"]
    assert t.loc["vo-train", "same pin as constraints.txt"] == "2/3"  # numpy differs
    assert t.loc["vo-train", "purpose"] == "what the steps need" and t.loc["vo-train", "python"] == "3.11"
    assert bool(t.loc["vo-dev", "installs the repo (-e)"]) and not bool(t.loc["vo-train", "installs the repo (-e)"])
    assert reports.read_constraints(tmp_path / "nope.txt") == {}
    assert reports.environments_table(tmp_path / "empty").empty
    assert reports.checkout_root() == Path(__file__).resolve().parents[2]
    assert len(reports.environments_table()) == len(list((reports.checkout_root() / "environments" / "conda")
                                                           .glob("*.yml")))


def test_datasets_and_versions_tables(fresh_settings):
    ref = SimpleNamespace(name="shapes", version="v1", counts={"train": {"images": 4}, "test": {"images": 2}},
                          created="now", path="/p")
    t = reports.datasets_table([ref])
    assert t.iloc[0].to_dict() == {"name": "shapes", "version": "v1", "train": 4, "val": 0, "test": 2,
                                   "created": "now", "path": "/p"}
    assert reports.versions_table(fresh_settings).empty


def test_decision_and_per_class_tables():
    from visionops.evaluation.decision import DecisionRule, decide
    from visionops.evaluation.metrics import ClassScore

    challenger = SimpleNamespace(metrics={"map50_95": 0.61234, "map50": 0.8},
                                 per_class=[ClassScore(name="circle", instances=3, precision=1, recall=0.5,
                                                       ap50=0.7, ap50_95=0.55555)])
    champion = SimpleNamespace(metrics={"map50_95": 0.5, "map50": 0.7})
    decision = decide(challenger.metrics, champion.metrics, DecisionRule())
    outcome = SimpleNamespace(challenger=challenger, champion=champion, champion_version="2", decision=decision)
    t = reports.decision_table(outcome)
    assert list(t.columns) == ["challenger", "champion v2"]
    assert t.loc["map50_95 (decides)", "challenger"] == 0.6123 and t.loc["map50", "champion v2"] == 0.7
    alone = reports.decision_table(SimpleNamespace(challenger=challenger, champion=None, champion_version=None,
                                                   decision=decision))
    assert list(alone.columns) == ["challenger"]
    pc = reports.per_class_table(challenger)
    assert pc.loc["circle", "ap50_95"] == 0.5556 and pc.loc["circle", "instances"] == 3


# --- endpoint calls -------------------------------------------------------------------------------
def test_request_payload(shapes):
    import base64

    images = reports.sample_images(shapes, "test", 2)
    payload = reports.request_payload(images, conf=0.3, iou=None)
    assert set(payload) == {"images", "conf"} and payload["conf"] == 0.3
    assert base64.b64decode(payload["images"][0]) == images[0].read_bytes()


def test_measure_latency():
    class FakeWorkspace:
        calls = 0

        def invoke_endpoint(self, endpoint, payload):
            FakeWorkspace.calls += 1
            assert endpoint == "ep" and payload == {"images": []}
            return {"inference_ms": 2.5, "decode_ms": 0.5}

    frame = reports.measure_latency(FakeWorkspace(), "ep", {"images": []}, 3)
    assert FakeWorkspace.calls == 3 and list(frame.index) == [1, 2, 3]
    assert (frame["inference_ms"] == 2.5).all() and (frame["round_trip_ms"] >= 0).all()
    fig = reports.plot_latency(frame["round_trip_ms"], frame["inference_ms"])
    assert [ln.get_label() for ln in fig.axes[0].lines][:2] == ["round trip", "server inference"]


# --- pipeline -------------------------------------------------------------------------------------
def test_pipeline_graph_and_picture():
    from visionops.pipeline.components import GRAPH

    g = reports.pipeline_graph()
    assert list(g.index) == [n.name for n in GRAPH] == ["validate", "train", "evaluate", "register"]
    assert "validation <- validate.report" in g.loc["train", "inputs"]
    assert all("visionops.cli.steps" in c for c in g["command"])
    fig = reports.plot_pipeline()
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"validate", "train", "evaluate", "register"} <= texts


def test_pipeline_tables():
    plan = SimpleNamespace(nodes=[SimpleNamespace(name="train", component="visionops_train", command="python -m x")])
    assert reports.pipeline_steps_table(plan).loc["train", "command"] == "python -m x"
    job = SimpleNamespace(jobs={"train": SimpleNamespace(component=SimpleNamespace(name="visionops_train"),
                                                         inputs={"data": 1, "profile": 2})})
    t = reports.pipeline_steps_table(job)
    assert t.loc["train", "component"] == "visionops_train" and t.loc["train", "command"] == "data, profile"
    run = SimpleNamespace(steps=[SimpleNamespace(name="train", status="Completed", duration_s=3.0, log="/l")])
    assert reports.pipeline_run_table(run).loc["train"].to_dict() == {"status": "Completed", "duration_s": 3.0,
                                                                      "log": "/l"}
