"""The local sweep on a classification data set: the task's default space (metric top1, no
mosaic), each trial's per-epoch top1 reported to Optuna, the best trial through the top1 gate as
`<dataset>-classifier`; a detection space on classification data is refused before any trial."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow
optuna = pytest.importorskip("optuna", reason="optuna comes with the full extra")


def test_a_classification_sweep_uses_the_classify_space_and_gate(tmp_path):
    import mlflow

    from visionops.errors import ConfigError
    from visionops.runner import Runner
    from visionops.settings import get_settings
    from visionops.sweep.local import run_sweep
    from visionops.sweep.space import load_space

    settings = get_settings(root=tmp_path)
    dataset = Runner(settings, "smoke", task="classify").dataset()
    result = run_sweep(settings, 2, profile="smoke", dataset=f"{dataset.name}:{dataset.version}",
                       knobs={"epochs": 1})
    assert result.metric == "top1" and result.dataset.task == "classify"
    assert len(result.trials) == 2 and "mosaic" not in result.best.params
    assert result.evaluation["metric"] == "top1" and result.evaluation["model_name"] == "shapes-cls-classifier"
    client = mlflow.MlflowClient(settings.tracking_uri)
    for trial in result.trials:
        assert [m.step for m in client.get_metric_history(trial.run_id, "top1")] == [1]
    with pytest.raises(ConfigError, match="search space is for task 'detect'.*'classify' data set"):
        run_sweep(settings, 1, profile="smoke", dataset=f"{dataset.name}:{dataset.version}",
                  space=load_space(task="detect"))
