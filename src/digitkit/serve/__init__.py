"""Stage 8: serve. A drawing web app and an HTTP API (FastAPI), predicting with onnxruntime:
``app`` is the ASGI app, ``server`` runs it (uvicorn, connection limits, worker processes)."""

from digitkit.serve.app import MAX_BODY_BYTES, SURE_ABOVE, create_app
from digitkit.predict import served_model_path
from digitkit.serve.server import load_served_model, run_server

__all__ = ["MAX_BODY_BYTES", "SURE_ABOVE", "create_app", "load_served_model", "served_model_path", "run_server"]
