"""Execute a Core ML ML Program (MIL protobuf + weight blobs) with the NumPy kernels of ops.py."""

from __future__ import annotations

import math

from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.coreml.blob import BlobFile
from digitkit.coreml.package import inside
from digitkit.coreml.ops import KERNELS, classify

# MIL.proto DataType numbers → numpy types (the ones MIL programs of image classifiers carry).
PROTO_DTYPES = {1: np.bool_, 2: object, 10: np.float16, 11: np.float32, 12: np.float64, 21: np.int8,
                22: np.int16, 23: np.int32, 24: np.int64, 31: np.uint8, 32: np.uint16, 33: np.uint32,
                34: np.uint64}


def _tensor_dtype(value_type):
    kind = value_type.WhichOneof("type")
    if kind != "tensorType":
        return None
    return PROTO_DTYPES.get(value_type.tensorType.dataType)


def _shape(value_type) -> list[int]:
    dims = value_type.tensorType.dimensions
    return [int(d.constant.size) for d in dims]


class MLProgram:
    """One function ("main") of an ML Program, ready to run on batches."""

    def __init__(self, spec, weights_dir: Path | None, package_root: Path | None = None):
        program = spec.mlProgram
        if "main" not in program.functions:
            raise DigitkitError("ML Program has no 'main' function")
        function = program.functions["main"]
        self.opset = function.opset
        self.block = function.block_specializations[function.opset]
        self.inputs = [(i.name, _shape(i.type)) for i in function.inputs]
        self.weights_dir = weights_dir
        self.package_root = package_root if package_root is not None else (weights_dir.parent if weights_dir else None)
        self._blobs: dict[str, BlobFile] = {}
        self.constants: dict[str, object] = {}
        # Constants (and the constexpr ops built from them) do not depend on the input: fold once.
        for op in self.block.operations:
            if op.type == "const" or op.type.startswith("constexpr_"):
                self._run(op, self.constants, batch=1)

    # -- values -------------------------------------------------------------------------------
    def _blob(self, file_name: str) -> BlobFile:
        if file_name not in self._blobs:
            if self.weights_dir is None:
                raise DigitkitError(f"model refers to weight file {file_name} but has no weights folder")
            # "@model_path/" is the folder of the model file. Weight files live in the package; a path
            # that leaves it is refused, not followed.
            model_dir = self.weights_dir.parent.relative_to(self.package_root)
            relative = str(model_dir / file_name.removeprefix("@model_path/"))
            self._blobs[file_name] = BlobFile(inside(self.package_root, relative, "weight file"))
        return self._blobs[file_name]

    def _value(self, value):
        dtype = _tensor_dtype(value.type)
        shape = _shape(value.type) if value.type.WhichOneof("type") == "tensorType" else []
        kind = value.WhichOneof("value")
        if kind == "blobFileValue":
            flat = self._blob(value.blobFileValue.fileName).read(value.blobFileValue.offset)
            return _shaped(flat, shape, f"weight blob at offset {value.blobFileValue.offset}")
        if kind != "immediateValue":
            raise DigitkitError(f"unsupported MIL value kind {kind!r}")
        if value.immediateValue.WhichOneof("value") == "list":
            return np.array([self._value(item).reshape(()) for item in value.immediateValue.list.values])
        tensor = value.immediateValue.tensor
        which = tensor.WhichOneof("value")
        if which == "strings":
            data = np.array(list(tensor.strings.values), dtype=object)
        elif which == "bytes":
            data = np.frombuffer(tensor.bytes.values, dtype=dtype)
        elif which is None:
            data = np.zeros(0, dtype)
        else:
            data = np.array(list(getattr(tensor, which).values), dtype=dtype)
        if len(shape) == 0:
            return data.reshape(()) if data.size == 1 else data
        return _shaped(data, shape, "constant")

    # -- execution ------------------------------------------------------------------------------
    def _run(self, op, env: dict, batch: int) -> None:
        if op.type == "const":
            env[op.outputs[0].name] = self._value(op.attributes["val"])
            return
        kernel = KERNELS.get(op.type)
        if kernel is None and op.type != "classify":
            raise DigitkitError(
                f"digitkit's Core ML interpreter does not implement the MIL op '{op.type}' "
                f"(in {self.opset}); supported: {', '.join(sorted(KERNELS))}, classify"
            )
        args = {}
        for name, argument in op.inputs.items():
            values = []
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "name":
                    ref = binding.name
                    if ref in env:
                        values.append(env[ref])
                    elif ref in self.constants:
                        values.append(self.constants[ref])
                    else:
                        raise DigitkitError(f"op {op.type} reads '{ref}', which is not defined before it")
                else:
                    values.append(self._value(binding.value))
            args[name] = values if op.type == "concat" and name == "values" else values[0]
        # iOS16 constexpr ops carry their parameters as attributes rather than inputs.
        args |= {name: self._value(v) for name, v in op.attributes.items() if name != "name"}
        if op.type == "reshape" and batch > 1:
            # Programs are converted for one image; let the leading (batch) dimension follow the input.
            shape = [int(s) for s in np.asarray(args["shape"]).reshape(-1)]
            if shape and shape[0] == 1:
                args["shape"] = [batch] + shape[1:]
        if op.type == "classify":  # two outputs: the label and the probabilities dictionary
            labels, dicts = classify(args["probabilities"], args["classes"])
            env[op.outputs[0].name], env[op.outputs[1].name] = labels, dicts
            return
        try:
            result = kernel(**args)
        except TypeError as err:
            raise DigitkitError(f"MIL op '{op.type}' has inputs this interpreter does not handle: {err}") from None
        out_dtype = _tensor_dtype(op.outputs[0].type)
        result = np.asarray(result)
        if out_dtype is not None and out_dtype is not object:
            # fp16 emulation: every tensor the program declares fp16 is rounded to fp16 here.
            result = result.astype(out_dtype)
        env[op.outputs[0].name] = result

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, object]:
        env = dict(feeds)
        batch = next(iter(feeds.values())).shape[0]
        for op in self.block.operations:
            if op.type == "const" or op.type.startswith("constexpr_"):
                continue
            self._run(op, env, batch)
        return {name: env[name] for name in self.block.outputs}


def _shaped(data: np.ndarray, shape, what: str) -> np.ndarray:
    """``data`` in its declared shape; a file whose data does not fill the shape is corrupt."""
    need = math.prod(int(d) for d in shape)
    if data.size != need:
        raise DigitkitError(f"corrupt model: a {what} holds {data.size} values but its declared shape "
                            f"{list(shape)} needs {need}; export the model again")
    return data.reshape(shape)
