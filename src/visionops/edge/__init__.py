"""Azure IoT Edge deployment of a registered model (`visionops edge manifest`).

`manifest` builds and checks the IoT Edge 1.5 deployment manifest as plain data (pure functions,
validated offline against the schemas the Azure CLI itself uses, vendored under `schemas/`);
`bundle` reads the model from the registry and writes the deployment folder (deployment.json, the
module's Dockerfile with the ONNX model baked in, a README). Core only: no CLI imports.
"""
