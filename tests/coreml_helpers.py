"""Build one-op ML Programs with coremltools' MIL builder, for testing the interpreter op by op."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitkit.deps import coremltools
from digitkit.coreml.mlprogram import MLProgram

ct = coremltools()
from coremltools.converters.mil import Builder as mb  # noqa: E402


def run_mil(build, *inputs: np.ndarray, fp16: bool = False):
    """Convert ``build(x[, y])`` to an ML Program (no graph passes: the op stays as written) and run
    it with digitkit's interpreter. With ``fp16`` the op runs on fp16 tensors, cast from fp32."""
    names = ["x", "y"][: len(inputs)]
    specs = [mb.TensorSpec(shape=a.shape) for a in inputs]

    def body(*xs):
        if fp16:
            xs = [mb.cast(x=x, dtype="fp16") for x in xs]
        out = build(*xs)
        return mb.cast(x=out, dtype="fp32") if fp16 else out

    if len(inputs) == 1:
        prog = mb.program(input_specs=specs, opset_version=ct.target.iOS16)(lambda x: body(x))
    else:
        prog = mb.program(input_specs=specs, opset_version=ct.target.iOS16)(lambda x, y: body(x, y))
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32, skip_model_load=True,
                       pass_pipeline=ct.PassPipeline.EMPTY)
    spec = model.get_spec()
    program = MLProgram(spec, Path(model.weights_dir))
    ops = [op.type for op in program.block.operations]
    outputs = program.run(dict(zip(names, inputs)))
    return next(iter(outputs.values())), ops
