"""Stage 9: serve. The drawing page, the Teach page and their HTTP APIs (FastAPI), reading with
onnxruntime (or LiteRT): ``app`` and ``teach_app`` route, ``guards`` and ``access`` check each
request, ``server`` runs them (uvicorn, connection limits, worker processes)."""

from digitkit.serve.app import MAX_BODY_BYTES, SURE_ABOVE, create_app
from digitkit.predict import served_model_path
from digitkit.serve.server import load_served_model, run_server

__all__ = ["MAX_BODY_BYTES", "SURE_ABOVE", "create_app", "load_served_model", "served_model_path", "run_server"]
