"""The FastAPI app behind ``digitkit serve``: the drawing page and the JSON API.

Contract of ``POST /api/predict`` (also in the OpenAPI docs at ``/docs``):

- multipart form with an image file in field ``file`` (PNG, JPEG, … any Pillow format), or JSON
  ``{"pixels": [[...28 numbers...] × 28]}`` with grey levels 0..255 (or 0..1), either polarity;
- every image goes through the same normalisation as ``digitkit predict`` (docs/preprocessing.md);
- 200 → ``{label, confidence, probabilities, normalized}``; a blank image is a 200 too, with
  ``label: null`` and ``message: "no digit found: ..."``;
- 413 body over ``MAX_BODY_BYTES``; 415 not an image or an unsupported content type; 422 malformed
  JSON or pixels of the wrong shape or range, with a message saying what is expected.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field

from digitkit import DigitkitError
from digitkit.predict.preprocessing import NormalizeError, load_image, normalize
from digitkit.verify import OnnxModel

MAX_BODY_BYTES = 2 * 1024 * 1024
STATIC = Path(__file__).with_name("static")
INPUT_CONTRACT = {
    "image": "PNG/JPEG upload in multipart field 'file', or JSON {'pixels': 28x28 grey levels 0..255}",
    "normalisation": "crop to the ink, fit 20x20, centre of mass at (14, 14), white on black (docs/preprocessing.md)",
    "model_input": "float32 [batch, 1, 28, 28], pixel/255",
}


class Prediction(BaseModel):
    label: str | None = Field(description="most likely class; null when no digit was found")
    confidence: float = Field(description="probability of the label (0 when no digit was found)")
    probabilities: dict[str, float] | None = Field(description="probability of each class")
    normalized: list[list[int]] | None = Field(description="the 28x28 image the model saw (0..255)")
    message: str | None = Field(default=None, description="why there is no label, when there is none")


class ModelInfo(BaseModel):
    name: str
    format: str
    labels: list[str]
    test_accuracy: float | None
    input: dict[str, str]


class Problem(BaseModel):
    detail: str


def resolve_onnx(model: str | Path) -> Path:
    """The ONNX file to serve: the given .onnx, or a run folder / .keras exported on the fly
    (a run's own up-to-date MNISTClassifier.onnx is reused)."""
    model = Path(model)
    if model.suffix == ".onnx":
        if not model.is_file():
            raise DigitkitError(f"{model}: model file not found")
        return model
    from digitkit.export import export

    existing = model / "MNISTClassifier.onnx"
    if model.is_dir() and existing.is_file() and existing.stat().st_mtime >= (model / "model.keras").stat().st_mtime:
        return existing
    return export(model, "onnx", Path(tempfile.mkdtemp(prefix="digitkit-serve-")) / "model.onnx")


def load_onnx(path: str | Path) -> OnnxModel:
    """The served model; one thread per worker, since each request is one small image."""
    return OnnxModel(path, threads=1)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _pixels_image(payload) -> Image.Image:
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise ValueError('expected a JSON object {"pixels": [[28 numbers] x 28 rows]}')
    try:
        pixels = np.asarray(payload["pixels"], dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError("'pixels' must be a 28x28 array of numbers") from None
    if pixels.shape != (28, 28):
        raise ValueError(f"'pixels' must be 28 rows of 28 numbers; got shape {list(pixels.shape)}")
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("'pixels' values must be grey levels from 0 to 255 (or 0 to 1)")
    if pixels.max() <= 1.0:
        pixels = pixels * 255
    return Image.fromarray(pixels.round().astype(np.uint8), "L")


class BodyLimit:
    """Refuse a declared body over ``limit`` bytes with 413 before reading it. A plain ASGI middleware:
    Starlette's ``@app.middleware("http")`` wrapper costs more per request than the prediction."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                response = _problem(413, f"request body over {self.limit // 1024} KiB; send a smaller image")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


MODEL_ENV = "DIGITKIT_SERVE_MODEL"


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: the ONNX path comes from $DIGITKIT_SERVE_MODEL."""
    return create_app(load_onnx(os.environ[MODEL_ENV]))


def run_server(onnx_path: Path, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted. Several workers on Linux each listen on the port with SO_REUSEPORT,
    so the kernel spreads connections over them; uvicorn's own ``workers`` share one socket, and
    asyncio accepts new connections in bursts, so one worker can end up with nearly all of them."""
    import uvicorn

    if workers == 1:
        uvicorn.run(create_app(load_onnx(onnx_path)), host=host, port=port, log_level="warning")
        return
    if not sys.platform.startswith("linux"):
        os.environ[MODEL_ENV] = str(Path(onnx_path).resolve())
        uvicorn.run("digitkit.serve.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="warning")
        return
    _listening_socket(host, port).close()  # fail here, clearly, if the port is taken
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_reuseport_worker, args=(str(onnx_path), host, port), daemon=True)
                 for _ in range(workers)]
    for process in processes:
        process.start()
    # Stop the workers whether the server is stopped with Ctrl-C or with SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DigitkitError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None
    return sock


def _reuseport_worker(onnx_path: str, host: str, port: int) -> None:
    import ctypes
    import uvicorn

    # Die with the parent even if it is killed outright (PR_SET_PDEATHSIG = 1).
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)

    sock = _listening_socket(host, port)
    sock.listen(2048)
    config = uvicorn.Config(create_app(load_onnx(onnx_path)), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def create_app(classifier: OnnxModel) -> FastAPI:
    app = FastAPI(
        title="digitkit",
        summary="Draw a digit, or send an image, and see what the model reads.",
        description=__doc__,
        version=__import__("digitkit").__version__,
    )

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # never a traceback to the client
        return _problem(500, f"internal error ({type(exc).__name__})")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model")
    async def model_info() -> ModelInfo:
        return ModelInfo(name=classifier.name, format="onnx", labels=classifier.labels,
                         test_accuracy=classifier.test_accuracy, input=INPUT_CONTRACT)

    @app.post("/api/predict", response_model=Prediction,
              responses={413: {"model": Problem}, 415: {"model": Problem}, 422: {"model": Problem}},
              openapi_extra={"requestBody": {"content": {
                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                      "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
                  "application/json": {"schema": {"type": "object", "properties": {
                      "pixels": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}},
                      "required": ["pixels"]}}}, "required": True}})
    async def predict(request: Request):
        """Predict the digit in an uploaded image or a 28x28 pixel array."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:  # chunked uploads carry no content-length
            return _problem(413, f"request body over {MAX_BODY_BYTES // 1024} KiB; send a smaller image")
        try:
            if content_type == "application/json":
                try:
                    image = _pixels_image(json.loads(body))
                except json.JSONDecodeError as err:
                    return _problem(422, f"malformed JSON ({err.msg} at position {err.pos})")
                except ValueError as err:
                    return _problem(422, str(err))
            elif content_type == "multipart/form-data":
                form = await request.form()
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    return _problem(422, "multipart form needs an image file in field 'file'")
                image = load_image(await upload.read())
            else:
                return _problem(415, "send multipart/form-data with an image in field 'file', "
                                     "or application/json with {\"pixels\": 28x28}")
            normalized = normalize(image).image
        except NormalizeError as err:
            if "no digit found" in str(err):
                return Prediction(label=None, confidence=0.0, probabilities=None, normalized=None,
                                  message=str(err))
            return _problem(415, f"not a usable image: {err}")
        probs = classifier.predict(normalized)
        top = int(probs.argmax())
        return Prediction(label=classifier.labels[top], confidence=float(probs[top]),
                          probabilities={label: float(p) for label, p in zip(classifier.labels, probs)},
                          normalized=normalized.tolist())

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
