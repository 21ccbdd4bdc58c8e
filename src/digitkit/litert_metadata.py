"""digitkit's metadata in a LiteRT (``.tflite``) file: labels, dataset, run, test accuracy, as JSON
in the flatbuffer's own ``metadata`` table under the name "digitkit". Written by export.litert and
read by classifier.LiteRTClassifier, both through this module."""

from __future__ import annotations

import json

NAME = "digitkit"  # the name of digitkit's JSON entry in the file's metadata table


def with_metadata(model_bytes: bytes, meta: dict) -> bytes:
    """The flatbuffer with ``meta`` as JSON in its metadata table (the schema's place for it)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(meta).encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != NAME] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(content: bytes) -> dict:
    """digitkit's metadata in a ``.tflite`` file, or ``{}`` when it has none."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode() == NAME:
            try:
                meta = json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode())
            except (AttributeError, TypeError, ValueError, UnicodeDecodeError):
                return {}
            return meta if isinstance(meta, dict) else {}
    return {}
