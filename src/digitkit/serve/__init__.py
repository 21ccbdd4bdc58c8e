"""Stage 8: serve. A drawing web app and an HTTP API (FastAPI), predicting with onnxruntime."""

from digitkit.serve.app import MAX_BODY_BYTES, OnnxClassifier, create_app

__all__ = ["MAX_BODY_BYTES", "OnnxClassifier", "create_app"]
