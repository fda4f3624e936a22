"""Classification evaluation without a model: P/R/F1 and the confusion matrix from known
predictions, label mapping by folder name, the per-task tables of training and scoring, and
what notebook 03 shows for a classifier (visionops.reports)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from visionops import reports
from visionops.errors import ConfigError, DataValidationError, TrainingError
from visionops.evaluation import classify_metrics as cm
from visionops.evaluation.metrics import ClassScore, EvalResult, Misclassified

NAMES = ["cat", "dog", "fox", "owl"]
# 9 images of 3 classes; "owl" is neither present nor predicted
TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
PRED = [0, 0, 1, 1, 2, 2, 2, 2, 2]


# --- pure metrics -------------------------------------------------------------------------------
def test_confusion_matrix_rows_are_the_truth():
    m = cm.confusion_matrix(TRUE, PRED, 4)
    assert m.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 4, 0], [0, 0, 0, 0]]
    assert cm.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        cm.confusion_matrix([0, 1, 1], [0, 1], 2)
    with pytest.raises(ValueError, match=r"predicted class ids must lie in 0\.\.1, got \[0, 2\]"):
        cm.confusion_matrix([0, 1], [0, 2], 2)


def test_class_scores_from_known_predictions():
    scores = cm.class_scores(cm.confusion_matrix(TRUE, PRED, 4), NAMES)
    got = {s.name: (s.instances, s.precision, s.recall, s.f1) for s in scores}
    assert got["cat"] == pytest.approx((3, 1.0, 2 / 3, 0.8))  # 2 of 3 found, never wrongly claimed
    assert got["dog"] == pytest.approx((2, 0.5, 0.5, 0.5))
    assert got["fox"] == pytest.approx((4, 0.8, 1.0, 2 * 0.8 / 1.8))  # all found, one dog taken for a fox
    assert got["owl"] == (0, 0.0, 0.0, 0.0)  # no support, never predicted: zero, not NaN
    assert all(s.ap50 is None and s.ap50_95 is None for s in scores)
    with pytest.raises(ValueError, match="for 3 class names"):
        cm.class_scores(np.zeros((4, 4)), NAMES[:3])


def test_top_k_accuracy_and_summary():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    true = [0, 1, 2, 2]
    assert cm.top_k_accuracy(probs, true, 1) == 0.5  # images 0 and 2
    assert cm.top_k_accuracy(probs, true, 2) == 1.0
    assert cm.top_k_accuracy(probs, true, 5) == 1.0  # k capped at the 3 classes
    assert cm.top_k_accuracy(np.zeros((0, 3)), [], 1) == 0.0
    with pytest.raises(ValueError, match="for 3 true labels"):
        cm.top_k_accuracy(probs, [0, 1, 2], 1)
    scores = cm.class_scores(cm.confusion_matrix(true, probs.argmax(axis=1), 3), ["a", "b", "c"])
    summary = cm.summary_metrics(probs, true, scores)
    assert set(summary) == {"top1", "top5", "precision", "recall", "f1"}
    assert summary["top1"] == 0.5 and summary["top5"] == 1.0
    assert summary["recall"] == pytest.approx((1 + 0 + 0.5) / 3)  # macro: the unweighted class mean


def test_misclassified_lists_the_most_confident_mistakes_first():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55], [0.2, 0.8]])
    wrong = cm.misclassified([Path(f"{i}.jpg") for i in range(4)], probs, [0, 0, 0, 1], ["a", "b"])
    assert [(m.path.name, m.true, m.predicted) for m in wrong] == [("1.jpg", "a", "b"), ("2.jpg", "a", "b")]
    assert wrong[0].probability == pytest.approx(0.7) and wrong[0].true_probability == pytest.approx(0.3)
    assert cm.misclassified([], np.zeros((0, 2)), [], ["a", "b"]) == []


def test_labels_by_name_use_the_class_folder_not_an_index(tmp_path):
    root = tmp_path / "test"
    paths = [root / "fox" / "1.jpg", root / "cat" / "nested" / "2.jpg", root / "dog" / "3.jpg"]
    assert cm.labels_by_name(paths, root, NAMES) == [2, 0, 1]
    with pytest.raises(DataValidationError, match=r"class folders \['zebra'\] that the model does not predict"):
        cm.labels_by_name([root / "zebra" / "1.jpg", root / "cat" / "2.jpg"], root, NAMES)


def test_split_with_an_unknown_class_folder_is_refused(tmp_path):
    for folder in ("cat", "dog", ".hidden"):
        (tmp_path / "test" / folder).mkdir(parents=True)
    cm.check_split_classes(tmp_path / "test", NAMES)  # a subset is fine; hidden folders are ignored
    (tmp_path / "test" / "zebra").mkdir()
    with pytest.raises(DataValidationError, match=r"test has class folders \['zebra'\] that the model does not"):
        cm.check_split_classes(tmp_path / "test", NAMES)


def test_score_classifier_refuses_missing_weights_and_split(tmp_path, fresh_settings):
    from visionops.data.catalog import DatasetRef
    from visionops.errors import ModelNotFoundError

    ds = DatasetRef(name="pets", version="v1", path=str(tmp_path), created="now", counts={}, classes=NAMES,
                    task="classify")
    with pytest.raises(ModelNotFoundError, match="not found; train a model first"):
        cm.score_classifier(tmp_path / "missing.pt", ds, fresh_settings)
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"not read: the split is checked first")
    with pytest.raises(DataValidationError, match=r"test not found: a classification data set needs test/<class>"):
        cm.score_classifier(weights, ds, fresh_settings)


# --- per-task tables --------------------------------------------------------------------------
def test_training_table_per_task(tmp_path):
    from visionops.data.catalog import DatasetRef
    from visionops.training import CLASSIFY_CLEAN_NAMES, CLEAN_NAMES, clean_metrics, task_training

    assert task_training("detect").clean_names is CLEAN_NAMES
    raw = {"metrics/accuracy_top1": 0.75, "metrics/accuracy_top5": 1.0, "train/loss": 0.5, "val/loss": 0.6,
           "lr/pg0": 0.01, "fitness": float("nan")}
    got = clean_metrics(raw, task_training("classify").clean_names)
    assert {k: got[k] for k in CLASSIFY_CLEAN_NAMES.values()} == {"top1": 0.75, "top5": 1.0, "train_loss": 0.5,
                                                                "val_loss": 0.6}
    assert got["lr_pg0"] == 0.01 and "fitness" not in got and "map50_95" not in got
    with pytest.raises(ConfigError, match="unknown task 'segment'; choose one of detect, classify"):
        task_training("segment")

    def ref(task: str) -> DatasetRef:
        return DatasetRef(name="d", version="v1", path=str(tmp_path), created="now", counts={}, classes=NAMES,
                          task=task)

    with pytest.raises(TrainingError, match=r"train not found: a classification data set holds"):
        task_training("classify").data_argument(ref("classify"))
    with pytest.raises(TrainingError, match=r"data.yaml not found: register the data set first"):
        task_training("detect").data_argument(ref("detect"))
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text("names: [cat]\n")
    assert task_training("classify").data_argument(ref("classify")) == tmp_path  # the folder
    assert task_training("detect").data_argument(ref("detect")) == tmp_path / "data.yaml"


def test_scoring_table_per_task():
    from visionops.evaluation.metrics import score
    from visionops.evaluation.scoring import scoring_for

    assert scoring_for("detect").score is score and scoring_for("detect").per_class_metric == "ap50_95"
    assert scoring_for("classify").score is cm.score_classifier and scoring_for("classify").per_class_metric == "f1"
    assert all(f in ClassScore.model_fields for f in ("ap50_95", "f1"))
    with pytest.raises(ConfigError, match="unknown task 'pose'"):
        scoring_for("pose")


# --- what notebook 03 shows ----------------------------------------------------------------------
@pytest.fixture
def result(tmp_path) -> EvalResult:
    from PIL import Image

    confusion = cm.confusion_matrix(TRUE, PRED, 4)
    wrong = []
    for i, (true, pred, p) in enumerate([("cat", "dog", 0.8), ("dog", "fox", 0.6)]):
        path = tmp_path / true / f"{i}.jpg"
        path.parent.mkdir(parents=True)
        Image.new("RGB", (40, 30), (200, 40 * i, 10)).save(path)
        wrong.append(Misclassified(path=path, true=true, predicted=pred, probability=p, true_probability=0.1))
    scores = cm.class_scores(confusion, NAMES)
    return EvalResult(weights=tmp_path / "best.pt", dataset_name="pets", dataset_version="v1", split="test", imgsz=32,
                      metrics={"top1": 7 / 9, "top5": 1.0, "f1": 0.5}, per_class=scores, plots={},
                      save_dir=tmp_path, speed_ms={}, task="classify", classes=NAMES, confusion=confusion.tolist(),
                      misclassified=wrong)


def test_per_class_and_metrics_tables_for_a_classifier(result):
    t = reports.per_class_table(result)
    assert list(t.columns) == ["support", "precision", "recall", "f1"]  # no AP columns for a classifier
    assert t.loc["fox", "f1"] == 0.8889 and t.loc["cat", "support"] == 3 and t.loc["owl", "precision"] == 0
    m = reports.metrics_table(result)
    assert m.loc["top1", "value"] == 0.7778 and m.index.name == "pets:v1 test"
    detection = SimpleNamespace(per_class=[ClassScore(name="circle", instances=3, precision=1, recall=0.5,
                                                      ap50=0.7, ap50_95=0.5)])
    assert list(reports.per_class_table(detection).columns) == ["instances", "precision", "recall", "ap50", "ap50_95"]
    assert list(reports.per_class_table(SimpleNamespace(per_class=[])).columns) == [
        "instances", "precision", "recall", "ap50", "ap50_95"]


def test_confusion_matrix_plot_names_the_classes(result):
    fig = reports.plot_confusion_matrix(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES == [t.get_text() for t in ax.get_yticklabels()]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 16 and cells[:4] == ["2", "1", "0", "0"]  # row "cat": 2 right, 1 taken for a dog
    assert "top-1 0.778" in ax.get_title()
    normalized = [t.get_text() for t in reports.plot_confusion_matrix(result, normalize=True).axes[0].texts]
    assert normalized[:2] == ["0.67", "0.33"] and normalized[12:] == ["0.00"] * 4  # owl: no images, no NaN
    with pytest.raises(ValueError, match="has no confusion matrix"):
        reports.plot_confusion_matrix(result.model_copy(update={"confusion": None}))


def test_misclassified_grid(result):
    fig = reports.plot_misclassified(result, n=8)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["0.jpg\ntrue: cat\npredicted: dog (0.80)", "1.jpg\ntrue: dog\npredicted: fox (0.60)"]
    assert "2 of 2 shown" in fig.get_suptitle()
    assert "1 of 2 shown" in reports.plot_misclassified(result, n=1).get_suptitle()
    empty = reports.plot_misclassified(result.model_copy(update={"misclassified": []}))
    assert "no misclassified images" in [t.get_text() for t in empty.axes[0].texts]


def test_training_curves_show_classification_metrics():
    import pandas as pd

    history = pd.DataFrame({"train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "top1": [0.5, 0.7],
                            "top5": [1.0, 1.0]}, index=[1, 2])
    loss_ax, quality_ax = reports.plot_training_curves(history).axes
    assert [ln.get_label() for ln in loss_ax.lines] == ["train_loss", "val_loss"]
    assert [ln.get_label() for ln in quality_ax.lines] == ["top1", "top5"]


def test_detection_results_keep_their_shape():
    """An EvalResult built as detection always built it still validates, with empty classifier fields."""
    r = EvalResult(weights=Path("w.pt"), dataset_name="s", dataset_version="v", split="test", imgsz=64,
                   metrics={"map50_95": 0.5}, per_class=[ClassScore(name="circle", instances=1, precision=1,
                                                                     recall=1, ap50=1, ap50_95=0.5)],
                   plots={}, save_dir=Path("."), speed_ms={})
    assert r.task == "detect" and r.confusion is None and r.misclassified == [] and r.classes == []
    assert EvalResult.model_validate_json(r.model_dump_json()) == r
