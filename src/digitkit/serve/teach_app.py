"""The ASGI app behind ``digitkit teach``: the Teach page and its JSON API.

- ``GET /api/teach`` — classes (with their drawings), the training state, the trained model;
- ``POST /api/teach/classes`` ``{"name": ...}`` — a new class (422 bad name, 409 a duplicate);
- ``POST /api/teach/classes/{name}/examples`` — a drawing (multipart ``file``) for a class;
  ``DELETE /api/teach/classes/{name}/examples/{file}`` — remove one; ``GET
  /api/teach/drawings/{name}/{file}`` — see one (PNG);
- ``POST /api/teach/train`` — start training (409 too few drawings, saying how many more, or one is
  running); ``POST /api/teach/cancel``; ``GET /api/teach/events`` — the state as it changes
  (server-sent events);
- ``POST /api/teach/predict`` — try the trained model (same answers as ``/api/predict``);
- ``GET /api/teach/download/{coreml|onnx|dataset}`` — the model (Core ML zipped) or the drawings
  (a folder-per-class zip); 409 before there is one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from digitkit.classifier import OnnxClassifier
from digitkit.data.folders import LABEL_REGEX
from digitkit.predict import NormalizeError, load_image
from digitkit.serve.app import IMAGE_UPLOAD, STATIC, Prediction, Problem, app_skeleton, predict_image, problem, read_upload
from digitkit.teach import MIN_PER_CLASS, TeachError, Trainer, Workspace, zip_folder
from digitkit.verify import reference_path

EVENT_POLL_SECONDS = 0.2
KEEP_ALIVE_SECONDS = 10.0  # a comment on an idle event stream, so proxies and browsers keep it open


class ClassInfo(BaseModel):
    name: str
    count: int = Field(description="drawings of the class")
    examples: list[str] = Field(description="file names of the drawings this page saved")
    needs: int = Field(description="drawings still needed before training")


class NewClass(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=LABEL_REGEX,
                      description="the class name: up to 64 characters, no commas, slashes or control characters, "
                                  "not starting with a dot or with or ending in a space; one that differs only in "
                                  "case from another is refused (409)")


class ExampleAdded(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_name: str = Field(alias="class", description="the class the drawing was added to")
    file: str = Field(description="the drawing's file name")


class Accepted(BaseModel):
    status: str


def problems(*codes: int) -> dict:
    """OpenAPI answers: the given 4xx/5xx, plus what every state-changing request can meet."""
    return {code: {"model": Problem} for code in sorted({*codes, 400, 403, 413})}


def create_teach_app(workspace: Workspace, trainer: Trainer, allowed_hosts: set[str] | None = None,
                     token: str | None = None, port: int = 0) -> FastAPI:
    app, in_thread = app_skeleton("teach.html", allowed_hosts, token, port, title="digitkit teach",
                                  summary="Teach a model your own drawings, try it, download it.",
                                  description=__doc__)

    @app.exception_handler(TeachError)
    async def teach_error(request: Request, exc: TeachError):
        return problem(exc.status, str(exc))

    _project_routes(app, workspace, trainer, in_thread)
    _class_routes(app, workspace, in_thread)
    _training_routes(app, trainer, in_thread)
    _model_routes(app, workspace, trainer, in_thread)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _project_routes(app: FastAPI, workspace: Workspace, trainer: Trainer, in_thread) -> None:
    """The workspace and the training state, at once and as they change."""
    def project() -> dict:
        version, state = trainer.snapshot()
        return {"classes": workspace.classes(), "state": state, "version": version,
                "min_per_class": MIN_PER_CLASS, "workspace": str(workspace.root)}

    @app.get("/api/teach")
    async def get_project() -> dict:
        return await in_thread(project)



def _class_routes(app: FastAPI, workspace: Workspace, in_thread) -> None:
    """Classes and their drawings."""
    @app.post("/api/teach/classes", status_code=201, response_model=ClassInfo, responses=problems(408, 409, 415, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": NewClass.model_json_schema()}}}})
    async def add_class(request: Request):
        """Add a class (JSON {"name": ...} only: a form or text body is refused, as pages of other
        sites could send those)."""
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return problem(415, 'send JSON {"name": "..."} with Content-Type: application/json')
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise TeachError('send JSON {"name": "..."}') from None
        if not isinstance(payload, dict):
            raise TeachError('send JSON {"name": "..."}')
        return await in_thread(workspace.add_class, payload.get("name"))

    @app.post("/api/teach/classes/{name}/examples", status_code=201, response_model=ExampleAdded,
              response_model_by_alias=True, responses=problems(404, 408, 415, 422),
              openapi_extra={"requestBody": {"required": True, "content": IMAGE_UPLOAD}})
    async def add_example(name: str, request: Request):
        """Add a drawing (multipart field ``file``, a PNG) to a class."""
        file = await in_thread(workspace.add_example, name, await read_upload(request, max_fields=4))
        return ExampleAdded(class_name=name, file=file)

    @app.get("/api/teach/drawings/{name}/{file}", response_class=FileResponse, responses={
        200: {"description": "the drawing", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        404: {"model": Problem}})
    async def drawing(name: str, file: str):
        """One drawing of a class, as the page saved it (PNG). (On a path of its own: the same path
        as DELETE would make a 405 there list the wrong methods.)"""
        return FileResponse(workspace.example_path(name, file), media_type="image/png")

    @app.delete("/api/teach/classes/{name}/examples/{file}", status_code=204, response_class=Response,
                responses=problems(404))
    async def remove_example(name: str, file: str):
        await in_thread(workspace.remove_example, name, file)
        return Response(status_code=204)



def _training_routes(app: FastAPI, trainer: Trainer, in_thread) -> None:
    """Start and cancel a training (in the trainer's worker process)."""
    @app.post("/api/teach/train", status_code=202, response_model=Accepted, responses=problems(409, 503))
    async def train():
        """Start training on the drawings (in a worker process)."""
        await in_thread(trainer.start)
        return Accepted(status="queued")

    @app.post("/api/teach/cancel", status_code=202, response_model=Accepted, responses=problems(409))
    async def cancel():
        """Cancel the training; it stops within a second."""
        trainer.cancel()
        return Accepted(status="cancelling")

    @app.get("/api/teach/events", response_class=StreamingResponse, responses={200: {
        "description": "server-sent events: one JSON state object per change, and a comment line every "
                       f"{KEEP_ALIVE_SECONDS:.0f} s while nothing changes",
        # Each event as a reader of the stream sees it: its data line holds the state as JSON.
        "content": {"text/event-stream": {"schema": {"type": "object", "required": ["data"], "properties": {
            "data": {"type": "string", "contentMediaType": "application/json", "description": "the training state"},
            "event": {"type": "string"}}}}}}})
    async def events(request: Request):
        """The training state whenever it changes, as server-sent events (one JSON object each). The
        stream stays open as long as the page does."""
        async def stream():
            version, state = trainer.snapshot()
            yield f"data: {json.dumps(state)}\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                await asyncio.sleep(EVENT_POLL_SECONDS)  # a cheap check; no thread held per listener
                new_version, state = trainer.snapshot()
                if new_version != version:
                    version, quiet = new_version, 0.0
                    yield f"data: {json.dumps(state)}\n\n"
                elif (quiet := quiet + EVENT_POLL_SECONDS) >= KEEP_ALIVE_SECONDS:
                    quiet = 0.0
                    yield ": still here\n\n"  # keeps proxies from closing an idle stream

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})



def _model_routes(app: FastAPI, workspace: Workspace, trainer: Trainer, in_thread) -> None:
    """Try the trained model, and download it (or the drawings)."""
    loaded: dict[str, OnnxClassifier] = {}

    def model() -> OnnxClassifier:
        onnx = trainer.snapshot()[1].get("onnx")
        if not onnx:
            raise TeachError("there is no trained model yet: press Train first", 409)
        if onnx not in loaded:
            loaded.clear()
            loaded[onnx] = OnnxClassifier(onnx, threads=1)
        return loaded[onnx]

    @app.post("/api/teach/predict", response_model=Prediction, responses=problems(408, 409, 415, 422),
              openapi_extra={"requestBody": {"required": True, "content": IMAGE_UPLOAD}})
    async def try_model(request: Request):
        """Try the trained model on a drawing (multipart field ``file``)."""
        classifier = await in_thread(model)
        data = await read_upload(request, max_fields=4)
        try:
            image = await in_thread(load_image, data)
            return await in_thread(predict_image, classifier, image)
        except NormalizeError as err:
            return problem(415, f"not a usable image: {err}")

    @app.get("/api/teach/download/{what}", response_class=Response, responses={
        200: {"description": "the Core ML package with its test drawings (zip), the ONNX file, or the drawings (zip)",
              "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}},
                          "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        409: {"model": Problem}, 422: {"model": Problem}})
    async def download(what: Literal["coreml", "onnx", "dataset"]):
        """The model: Core ML (zipped, with the test drawings and the trained model's answers on them,
        so ``digitkit verify X.mlpackage`` checks it) or ONNX; or the drawings (a folder per class)."""
        state = trainer.snapshot()[1]
        if what == "dataset":
            blob = await in_thread(workspace.dataset_zip)
            return Response(blob, media_type="application/zip",
                            headers={"Content-Disposition": 'attachment; filename="dataset.zip"'})
        path = state.get(what)
        if not path or not Path(path).exists():
            busy = state.get("status") in ("training", "exporting", "queued")
            raise TeachError("the model is still being written; try again in a moment" if busy else
                             "there is no trained model yet: press Train first", 409)
        if what == "onnx":
            return FileResponse(path, media_type="application/octet-stream", filename=Path(path).name)
        reference = reference_path(path)
        blob = await in_thread(zip_folder, Path(path), [reference] if reference.is_file() else [])
        return Response(blob, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{Path(path).name}.zip"'})

