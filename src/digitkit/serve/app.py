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

import json
from pathlib import Path
from typing import Annotated, Literal

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field

import digitkit
from digitkit.classifier import NOT_A_CLASS_BELOW, SURE_ABOVE, Classifier
from digitkit.predict import Answer, NormalizeError, load_image, read_images
from digitkit.predict.numbers import read_number
from digitkit.serve.access import TokenGate, document_security
from digitkit.serve.guards import MAX_BODY_BYTES, BodyLimit, BodyRefused, HostCheck, OriginCheck, problem

MAX_PHOTO_BYTES = 12 * 1024 * 1024  # POST /api/read takes a phone's photo as it comes (3-8 MB)
CPU_WORKERS = 2  # threads doing normalisation and inference; the event loop never does CPU work
STATIC = Path(__file__).with_name("static")
INPUT_CONTRACT = {
    "image": "PNG/JPEG upload in multipart field 'file', or JSON {'pixels': 28x28 grey levels 0..255}",
    "normalisation": "crop to the ink, fit 20x20, centre of mass at (14, 14), white on black (docs/preprocessing.md)",
    "model_input": "float32 [batch, 1, 28, 28], pixel/255",
}


# The request body of every endpoint that takes an image file (OpenAPI).
IMAGE_UPLOAD = {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"}}, "required": ["file"], "additionalProperties": False}}}


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


class DigitInNumber(BaseModel):
    label: str = Field(description="the digit, or \".\" for a decimal point")
    confidence: float
    verdict: Literal["sure", "not sure", "not a class", "point"]
    box: list[int] = Field(min_length=4, max_length=4, description="[x, y, width, height] in the image's pixels")


class NumberRead(BaseModel):
    number: str = Field(description="the digits (and decimal points) left to right; empty when none were found")
    verdict: Literal["sure", "not sure", "no digits found"] = Field(
        description="sure only when every digit is sure")
    unsure: list[int] = Field(description="positions in number (from 0) of the digits that are not sure")
    digits: list[DigitInNumber]
    message: str | None = None
    width: int = Field(description="the image's width, which the boxes are in")
    height: int

    @classmethod
    def of(cls, answer) -> "NumberRead":
        return cls(number=answer.number, verdict=answer.verdict, unsure=answer.unsure, message=answer.message,
                   digits=[DigitInNumber(label=d.label, confidence=d.confidence, verdict=d.verdict, box=list(d.box))
                           for d in answer.digits], width=answer.size[0], height=answer.size[1])


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


def predict_image(classifier: Classifier, image: Image.Image) -> Prediction:
    """Read one image (CPU work: called in a worker thread)."""
    return Prediction.of(read_images(classifier, [image])[0])


class UploadError(Exception):
    """A multipart upload without its one image file: answered 422 with the message."""


async def read_upload(request: Request, max_fields: int = 8) -> bytes:
    """The bytes of the file in multipart field ``file``, the form's only field (IMAGE_UPLOAD);
    :class:`UploadError` says what is wrong."""
    try:
        async with request.form(max_files=1, max_fields=max_fields) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise UploadError("multipart form needs an image file in field 'file'")
            others = sorted({key for key in form.keys() if key != "file"})
            if others:
                raise UploadError(f"unexpected form field(s) {', '.join(map(repr, others))}: send one image file in "
                                  "field 'file' and nothing else")
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
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, larger={"/api/read": MAX_PHOTO_BYTES})
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

    _read_route(app, classifier, in_thread)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _read_route(app: FastAPI, classifier: Classifier, in_thread) -> None:
    @app.post("/api/read", response_model=NumberRead,
              responses={code: {"model": Problem} for code in (400, 403, 408, 413, 415, 422)},
              openapi_extra={"requestBody": {"content": IMAGE_UPLOAD, "required": True}})
    async def read(request: Request):
        """Read a whole number (one line of digits) in an uploaded drawing, scan or photo of paper
        (multipart field ``file``; PNG, JPEG, … up to 12 MiB and 16 megapixels)."""
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
            return problem(415, "send multipart/form-data with an image in field 'file'")
        try:
            image = await in_thread(load_image, await read_upload(request))
            return NumberRead.of(await in_thread(read_number, classifier, image))
        except NormalizeError as err:
            return problem(415 if "candidate digits" not in str(err) else 422, f"not a usable image: {err}")
