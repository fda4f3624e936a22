"""VisionOps: the object-detection lifecycle (data, training, evaluation, registry, serving,
pipelines) behind the notebooks, the CLI and the Azure ML pipeline steps."""

__version__ = "0.1.0"

# Importing visionops has no side effect: no settings or .env are read and no environment is
# changed until a function needs them (`visionops.offline` says where the offline switches apply).
