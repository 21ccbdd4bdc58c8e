"""Keras model (torch backend) → ``torch.export`` program over NCHW images in 0..1."""

from __future__ import annotations

import torch


class NCHWImageModel(torch.nn.Module):
    """Wraps a Keras model that takes (N, 28, 28, 1) so that it takes (N, 1, 28, 28), as Core ML
    images and ONNX image tensors are laid out. For one channel the permute is free."""

    def __init__(self, keras_model, output_name: str | None = None):
        super().__init__()
        self.keras_model = keras_model
        self.output_name = output_name  # outputs {name: probabilities}: how litert-torch names an output

    def forward(self, image: torch.Tensor):
        probabilities = self.keras_model(image.permute(0, 2, 3, 1), training=False)
        return probabilities if self.output_name is None else {self.output_name: probabilities}


def exported_program(keras_model) -> torch.export.ExportedProgram:
    """``torch.export`` of the model, decomposed to core ATen ops.

    Decomposing matters: Keras' batch norm calls ``Tensor.subtract``, which torch 2.13 exports as
    ``aten.subtract`` and coremltools 9.0 has no converter for; the core-ATen table lowers it to
    ``aten.sub`` (and other aliases to ops coremltools knows).
    """
    module = NCHWImageModel(keras_model).eval()
    example = torch.zeros(1, 1, 28, 28)
    with torch.no_grad():
        program = torch.export.export(module, (example,)).run_decompositions()
    # The program shares its tensors with the Keras model, and coremltools 9.0 edits some constants in
    # place (batch-norm statistics) through NumPy views: give it copies, or the Keras model changes.
    for table in (program.state_dict, program.constants):
        for name, tensor in list(table.items()):
            if isinstance(tensor, torch.Tensor):
                copy = tensor.detach().clone()
                table[name] = torch.nn.Parameter(copy, requires_grad=False) if isinstance(tensor, torch.nn.Parameter) else copy
    return program
