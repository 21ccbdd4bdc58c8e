"""Stage 5: export. A trained Keras model → Core ML (ML Program or NeuralNetwork) and ONNX.

Every exported file has the same contract: one 28×28 grayscale image, white digit on black, centred
by centre of mass as MNIST (see docs/preprocessing.md); ten class probabilities out.
"""

from digitkit.export.core import (
    FORMATS,
    ExportSource,
    default_output,
    export,
    export_all,
)

__all__ = ["FORMATS", "ExportSource", "default_output", "export", "export_all"]
