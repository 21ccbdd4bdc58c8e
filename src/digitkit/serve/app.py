"""The ASGI app behind ``digitkit serve``: the drawing page and the JSON API (FastAPI).

Contract of ``POST /api/predict`` (also in the OpenAPI docs at ``/docs``):

- multipart form with an image file in field ``file`` (PNG, JPEG, … any Pillow format), or JSON
  ``{"pixels": [[...28 numbers...] × 28]}`` with grey levels 0..255 (or 0..1), either polarity;
- every image goes through the same normalisation as ``digitkit predict`` (docs/preprocessing.md);
- 200 → ``{label, confidence, sure, top, probabilities, normalized}``; a blank image is a 200 too,
  with ``label: null`` and ``message: "no digit found: ..."``; ``sure`` is false when the top class
  has less than ``SURE_ABOVE`` probability (the page then shows the two best candidates); ``verdict``
  is "not a class" below ``NOT_A_CLASS_BELOW`` (a drawing that is no digit: the page says so);
- 400 Host header not allowed; 408 body not sent in time; 413 body over ``MAX_BODY_BYTES``;
  415 not an image or an unsupported content type; 422 malformed JSON or pixels that are not 28×28
  numbers from 0 to 255; each with a ``detail`` saying what is expected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Literal

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field

import digitkit
from digitkit.classifier import NOT_A_CLASS_BELOW, SURE_ABOVE, Classifier
from digitkit.predict import Answer, NormalizeError, load_image, read_images
from digitkit.serve.access import TokenGate, document_security

MAX_BODY_BYTES = 2 * 1024 * 1024
BODY_SECONDS = 10.0  # a request body must arrive within this (half-sent requests are dropped)
DRAIN_BYTES = 16 * MAX_BODY_BYTES  # an oversized body is read and dropped up to this, so the client sees the 413
CPU_WORKERS = 2  # threads doing normalisation and inference; the event loop never does CPU work
STATIC = Path(__file__).with_name("static")
INPUT_CONTRACT = {
    "image": "PNG/JPEG upload in multipart field 'file', or JSON {'pixels': 28x28 grey levels 0..255}",
    "normalisation": "crop to the ink, fit 20x20, centre of mass at (14, 14), white on black (docs/preprocessing.md)",
    "model_input": "float32 [batch, 1, 28, 28], pixel/255",
}


# The request body of every endpoint that takes an image file (OpenAPI).
IMAGE_UPLOAD = {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"}}, "required": ["file"]}}}


class Prediction(BaseModel):
    label: str | None = Field(description="most likely class; null when no digit was found")
    confidence: float = Field(description="probability of the label (0 when no digit was found)")
    sure: bool = Field(default=False, description=f"confidence is at least {SURE_ABOVE}")
    verdict: Literal["sure", "not sure", "not a class"] | None = Field(default=None, description=(
        f"sure (confidence ≥ {SURE_ABOVE}), not sure, or not a class (confidence < {NOT_A_CLASS_BELOW}: "
        "the drawing looks like none of the classes, e.g. not a digit); null when no digit was found"))
    # Pairs as 2-item arrays: [label, probability] (a JSON Schema tuple's prefixItems trip up some tools).
    top: list[Annotated[list[str | float], Field(min_length=2, max_length=2)]] | None = Field(
        default=None, description="the two most likely classes, each [label, probability]")
    probabilities: dict[str, float] | None = Field(description="probability of each class")
    normalized: list[list[int]] | None = Field(description="the 28x28 image the model saw (0..255)")
    message: str | None = Field(default=None, description="why there is no label, or that the drawing is not a class")

    @classmethod
    def of(cls, answer: Answer) -> "Prediction":
        return cls(label=answer.label, confidence=answer.confidence, sure=answer.sure, verdict=answer.verdict,
                   top=answer.top or None, probabilities=answer.probabilities,
                   normalized=None if answer.input is None else answer.input.tolist(), message=answer.message)


class ModelInfo(BaseModel):
    name: str
    format: str
    labels: list[str]
    test_accuracy: float | None
    sure_above: float
    not_a_class_below: float
    input: dict[str, str]


class Problem(BaseModel):
    detail: str


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def pixels_image(payload) -> Image.Image:
    """``{"pixels": 28 rows of 28 numbers}`` → an 8-bit grey image; ValueError says what is wrong."""
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise ValueError('expected a JSON object {"pixels": [[28 numbers] x 28 rows]}')
    rows = payload["pixels"]
    if not isinstance(rows, list) or len(rows) != 28 or not all(isinstance(r, list) and len(r) == 28 for r in rows):
        shape = [len(rows)] if isinstance(rows, list) else []
        if isinstance(rows, list) and rows and all(isinstance(r, list) for r in rows):
            shape.append(sorted({len(r) for r in rows})[0] if len({len(r) for r in rows}) == 1 else "ragged")
        raise ValueError(f"'pixels' must be 28 rows of 28 numbers; got shape {shape}")
    # Numbers only: booleans and number-strings are not grey levels.
    if not all(type(v) in (int, float) for row in rows for v in row):
        raise ValueError("'pixels' must be a 28x28 array of numbers (no strings, booleans or nulls)")
    pixels = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("'pixels' values must be grey levels from 0 to 255 (or 0 to 1)")
    if pixels.max() <= 1.0:
        pixels = pixels * 255
    return Image.fromarray(pixels.round().astype(np.uint8), "L")


def _parse_json(body: bytes):
    # Big integers become floats (then fail the range check) instead of costing seconds to parse;
    # NaN and Infinity are not JSON.
    def constant(name):
        raise ValueError(f"{name} is not a number JSON allows")

    return json.loads(body, parse_int=float, parse_constant=constant)


class BodyLimit:
    """Plain ASGI middleware: refuse a body over ``limit`` with 413 (a declared length at once; a
    chunked body as soon as it passes the limit, never holding more than the limit in memory), and a
    body that does not arrive within ``BODY_SECONDS`` with 408. An oversized body is read and
    dropped before answering (up to ``DRAIN_BYTES``), so a client still sending sees the 413 rather
    than a reset connection. Starlette's ``@app.middleware("http")`` costs more per request than
    the prediction."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, receive, send, 413, self._too_big())
            return
        received = 0
        deadline = asyncio.get_running_loop().time() + BODY_SECONDS
        refused = None
        body_done = scope["method"] in ("GET", "HEAD")

        async def limited_receive():
            nonlocal received, refused, body_done
            if body_done:  # after the body only the disconnect is left to hear: no deadline (streams)
                return await receive()
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(timeout, 0.001))
            except TimeoutError:
                refused = "slow"
                raise BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = "large"
                    raise BodyRefused
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        try:
            await self.app(scope, limited_receive, send)
        except Exception:  # whatever the app made of the refusal, answer for it
            if refused == "large":
                await self._refuse(scope, receive, send, 413, self._too_big())
            elif refused == "slow":
                await problem(408, f"the request body did not arrive within {BODY_SECONDS:.0f} s")(
                    scope, receive, send)
            else:
                raise

    def _too_big(self) -> str:
        return f"request body over {self.limit // 1024} KiB; send a smaller image"

    async def _refuse(self, scope, receive, send, status: int, detail: str) -> None:
        drained, more = 0, True
        try:
            with anyio.fail_after(BODY_SECONDS):
                while more and drained <= DRAIN_BYTES:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    drained += len(message.get("body", b""))
                    more = message.get("more_body", False)
        except TimeoutError:
            pass
        await problem(status, detail)(scope, receive, send)


class BodyRefused(Exception):
    """Raised into the app when its body is too large or too slow; BodyLimit answers for it."""


class HostCheck:
    """Refuse requests whose Host is a domain name not on the allowed list: a web page from another
    site that rebinds its domain to this machine (DNS rebinding) would otherwise reach the API.
    IP-address hosts (what a phone on the LAN uses) and localhost are always allowed."""

    def __init__(self, app, allowed_hosts: set[str]):
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts} | {"localhost", "testserver"}

    def allows(self, host: str) -> bool:
        host = host.strip().lower()
        if host.startswith("["):  # [::1]:8000
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.rsplit(":", 1)[0]
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return host in self.allowed or host.rstrip(".") in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not host or not self.allows(host):
                response = problem(400, f"Host {host!r} is not allowed; open the server by its IP address or "
                                         "localhost, or start it with --allow-host NAME")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class OriginCheck:
    """Refuse state-changing requests (anything but GET, HEAD, OPTIONS) that a page of another site
    sends: their ``Origin`` (or, without one, ``Referer``) must be this server's own, as the Host
    header names it. Browsers send these cross-site without a preflight for forms, multipart uploads
    and text/plain bodies, so without this check any page the user visits could write into the
    workspace. Clients that send neither header (curl, scripts) are not browsers and pass."""

    SAFE = {"GET", "HEAD", "OPTIONS"}

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1").lower()
            source = headers.get(b"origin") or headers.get(b"referer")
            if source is not None and not self.same_origin(source.decode("latin-1"), host):
                response = problem(403, "cross-origin request refused: only this server's own pages may change "
                                         "its state")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)

    @staticmethod
    def same_origin(source: str, host: str) -> bool:
        parsed = urlsplit(source.strip())
        return parsed.scheme in ("http", "https") and bool(host) and parsed.netloc.lower() == host


def predict_image(classifier: Classifier, image: Image.Image) -> Prediction:
    """Read one image (CPU work: called in a worker thread)."""
    return Prediction.of(read_images(classifier, [image])[0])


class UploadError(Exception):
    """A multipart upload without its one image file: answered 422 with the message."""


async def read_upload(request: Request, max_fields: int = 8) -> bytes:
    """The bytes of the file in multipart field ``file``; :class:`UploadError` says what is wrong."""
    try:
        async with request.form(max_files=1, max_fields=max_fields) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise UploadError("multipart form needs an image file in field 'file'")
            return await upload.read()
    except (UploadError, BodyRefused):
        raise
    except Exception as err:  # python-multipart's parse errors, Starlette's limits
        raise UploadError(f"malformed multipart form ({type(err).__name__}: {err})") from None


def app_skeleton(page: str, allowed_hosts: set[str] | None, token: str | None = None, port: int = 0, **openapi):
    """What both servers share: body limit, Origin, token and Host checks (serve.access), no
    tracebacks to clients, the page at ``/``, ``/healthz``; and ``in_thread``, which runs CPU work on
    a bounded pool of worker threads."""
    app = FastAPI(version=digitkit.__version__, **openapi)
    cpu = anyio.CapacityLimiter(CPU_WORKERS)

    async def in_thread(fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=cpu)

    # Outermost last: Host, then token, then Origin, then the body's size and pace.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(OriginCheck)
    app.add_middleware(TokenGate, token=token, port=port)
    app.add_middleware(HostCheck, allowed_hosts=allowed_hosts or set())
    document_security(app, token is not None, port)

    @app.exception_handler(UploadError)
    async def bad_upload(request: Request, exc: UploadError):
        return problem(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError):
        # The same {"detail": "..."} as every other 4xx here, saying which part of the request is wrong.
        return problem(422, "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # never a traceback to the client
        return problem(500, f"internal error ({type(exc).__name__})")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / page)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, in_thread


def create_app(classifier: Classifier, allowed_hosts: set[str] | None = None, token: str | None = None,
               port: int = 0) -> FastAPI:
    app, in_thread = app_skeleton("index.html", allowed_hosts, token, port, title="digitkit",
                                  summary="Draw a digit, or send an image, and see what the model reads.",
                                  description=__doc__)

    @app.get("/api/model")
    async def model_info() -> ModelInfo:
        return ModelInfo(name=classifier.name, format=classifier.format, labels=classifier.labels,
                         test_accuracy=classifier.test_accuracy, sure_above=SURE_ABOVE,
                         not_a_class_below=NOT_A_CLASS_BELOW, input=INPUT_CONTRACT)

    @app.post("/api/predict", response_model=Prediction,
              responses={400: {"model": Problem}, 403: {"model": Problem}, 408: {"model": Problem}, 413: {"model": Problem},
                         415: {"model": Problem}, 422: {"model": Problem}},
              openapi_extra={"requestBody": {"content": {
                  **IMAGE_UPLOAD,
                  "application/json": {"schema": {"type": "object", "properties": {"pixels": {
                      "type": "array", "minItems": 28, "maxItems": 28, "description": "28 rows of 28 grey levels",
                      "items": {"type": "array", "minItems": 28, "maxItems": 28,
                                "items": {"type": "number", "minimum": 0, "maximum": 255}}}},
                      "required": ["pixels"]}}}, "required": True}})
    async def predict(request: Request):
        """Predict the digit in an uploaded image or a 28x28 pixel array."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "application/json":
                body = await request.body()
                try:
                    image = pixels_image(_parse_json(body))
                except json.JSONDecodeError as err:
                    return problem(422, f"malformed JSON ({err.msg} at position {err.pos})")
                except RecursionError:
                    return problem(422, "malformed JSON (nested too deeply)")
                except (ValueError, UnicodeDecodeError) as err:
                    return problem(422, str(err))
            elif content_type == "multipart/form-data":
                image = await in_thread(load_image, await read_upload(request))
            else:
                return problem(415, "send multipart/form-data with an image in field 'file', "
                                     "or application/json with {\"pixels\": 28x28}")
            return await in_thread(predict_image, classifier, image)
        except NormalizeError as err:
            return problem(415, f"not a usable image: {err}")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
