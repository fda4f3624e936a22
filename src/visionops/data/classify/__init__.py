"""The image-classification data path: folder-per-class layout, validation, synthetic data, importers.

A classification data set is `<root>/{train,val,test}/<class>/<image>` plus `manifest.json`;
Ultralytics trains on it with `data=<root>` and takes the classes as the sorted folder names of
`train/`. `visionops.data.kinds.ClassifyData` plugs it into the shared catalog, CLI and stats.
"""
