"""The ONNX Runtime backend: the backend object of the plan table and its runner
(`backend.py`), the on-disk cache of exported graphs (`cache.py`). The graph is the one
`img2img export --format onnx` writes, without the padding (the Translator pads)."""
