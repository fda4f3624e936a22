"""Serving: score.py for the Azure ML inference server, ONNX export, local endpoint, client."""
