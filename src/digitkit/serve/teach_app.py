"""The ASGI app behind ``digitkit teach``: the Teach page and its JSON API.

- ``GET /api/teach`` — classes (with their drawings), the training state, the trained model;
- ``POST /api/teach/classes`` ``{"name": ...}`` — a new class (422 bad name, 409 a duplicate);
- ``POST /api/teach/classes/{name}/examples`` — a drawing (multipart ``file``) for a class;
  ``GET``/``DELETE /api/teach/classes/{name}/examples/{file}`` — see or remove one;
- ``POST /api/teach/train`` — start training (422 too few drawings, saying how many more; 409 one
  is running); ``POST /api/teach/cancel``; ``GET /api/teach/events`` — the state as it changes
  (server-sent events);
- ``POST /api/teach/predict`` — try the trained model (same answers as ``/api/predict``);
- ``GET /api/teach/download/{coreml|onnx|dataset}`` — the model (Core ML zipped) or the drawings
  (a folder-per-class zip); 409 before there is one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from digitkit.classifier import OnnxClassifier
from digitkit.data.normalize import NormalizeError, load_image
from digitkit.serve.app import STATIC, Prediction, _problem, app_skeleton, predict_image, read_upload
from digitkit.serve.teach import MIN_PER_CLASS, TeachError, Trainer, Workspace, zip_folder

EVENT_POLL_SECONDS = 0.2


def create_teach_app(workspace: Workspace, trainer: Trainer, allowed_hosts: set[str] | None = None) -> FastAPI:
    app, in_thread = app_skeleton("teach.html", allowed_hosts, title="digitkit teach",
                                  summary="Teach a model your own drawings, try it, download it.",
                                  description=__doc__)
    loaded: dict[str, OnnxClassifier] = {}

    def model() -> OnnxClassifier:
        onnx = trainer.snapshot()[1].get("onnx")
        if not onnx:
            raise TeachError("there is no trained model yet: press Train first", 409)
        if onnx not in loaded:
            loaded.clear()
            loaded[onnx] = OnnxClassifier(onnx, threads=1)
        return loaded[onnx]

    @app.exception_handler(TeachError)
    async def teach_error(request: Request, exc: TeachError):
        return _problem(exc.status, str(exc))

    def project() -> dict:
        version, state = trainer.snapshot()
        return {"classes": workspace.classes(), "state": state, "version": version,
                "min_per_class": MIN_PER_CLASS, "workspace": str(workspace.root)}

    @app.get("/api/teach")
    async def get_project() -> dict:
        return await in_thread(project)

    @app.post("/api/teach/classes", status_code=201)
    async def add_class(request: Request) -> dict:
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise TeachError('send JSON {"name": "..."}') from None
        if not isinstance(payload, dict):
            raise TeachError('send JSON {"name": "..."}')
        return await in_thread(workspace.add_class, payload.get("name"))

    @app.post("/api/teach/classes/{name}/examples", status_code=201)
    async def add_example(name: str, request: Request) -> dict:
        file = await in_thread(workspace.add_example, name, await read_upload(request, max_fields=4))
        return {"class": name, "file": file}

    @app.get("/api/teach/classes/{name}/examples/{file}", include_in_schema=False)
    async def example(name: str, file: str):
        return FileResponse(workspace.example_path(name, file), media_type="image/png")

    @app.delete("/api/teach/classes/{name}/examples/{file}", status_code=204)
    async def remove_example(name: str, file: str):
        await in_thread(workspace.remove_example, name, file)
        return Response(status_code=204)

    @app.post("/api/teach/train", status_code=202)
    async def train() -> dict:
        await in_thread(trainer.start)
        return {"status": "queued"}

    @app.post("/api/teach/cancel", status_code=202)
    async def cancel() -> dict:
        trainer.cancel()
        return {"status": "cancelling"}

    @app.get("/api/teach/events")
    async def events(request: Request):
        """The training state whenever it changes, as server-sent events (one JSON object each)."""
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
                elif (quiet := quiet + EVENT_POLL_SECONDS) >= 10:
                    quiet = 0.0
                    yield ": still here\n\n"  # keeps proxies from closing an idle stream

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/api/teach/predict", response_model=Prediction)
    async def try_model(request: Request):
        classifier = await in_thread(model)
        data = await read_upload(request, max_fields=4)
        try:
            image = await in_thread(load_image, data)
            return await in_thread(predict_image, classifier, image)
        except NormalizeError as err:
            return _problem(415, f"not a usable image: {err}")

    @app.get("/api/teach/download/{what}")
    async def download(what: str):
        state = trainer.snapshot()[1]
        if what == "dataset":
            blob = await in_thread(workspace.dataset_zip)
            return Response(blob, media_type="application/zip",
                            headers={"Content-Disposition": 'attachment; filename="dataset.zip"'})
        if what not in ("coreml", "onnx"):
            return _problem(404, "download coreml, onnx or dataset")
        path = state.get(what)
        if not path or not Path(path).exists():
            busy = state.get("status") in ("training", "exporting", "queued")
            raise TeachError("the model is still being written; try again in a moment" if busy else
                             "there is no trained model yet: press Train first", 409)
        if what == "onnx":
            return FileResponse(path, media_type="application/octet-stream", filename=Path(path).name)
        blob = await in_thread(zip_folder, Path(path))
        return Response(blob, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{Path(path).name}.zip"'})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

