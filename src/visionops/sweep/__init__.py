"""Hyperparameter sweeps over one search space: Optuna on this machine, an Azure ML sweep job in
the cloud, and the best trial taken through the same champion/challenger gate as any training.

`space` (the YAML search space, checked) imports nothing heavy; `local` needs optuna (the `full`
extra) and `azure_sweep` needs azure-ai-ml (the `azure` extra), so each is imported only by
the code path that uses it.
"""
