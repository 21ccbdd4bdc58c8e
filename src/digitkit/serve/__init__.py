"""Stage 8: serve. A drawing web app and an HTTP API (FastAPI), predicting with onnxruntime."""

from digitkit.serve.app import MAX_BODY_BYTES, create_app, load_onnx, resolve_onnx

__all__ = ["MAX_BODY_BYTES", "create_app", "load_onnx", "resolve_onnx"]
