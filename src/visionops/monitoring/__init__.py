"""The production loop: what the endpoint saw (collection), whether it drifted from what the model
was tested on (drift), and which images go back to labeling. `records` is the shared contract."""
