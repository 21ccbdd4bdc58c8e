"""Stage 5: export. A trained Keras model → Core ML (ML Program or NeuralNetwork), ONNX and LiteRT.

Every exported file has the same contract: one 28×28 grayscale image, white ink on black, centred
by centre of mass as MNIST (see docs/preprocessing.md); the probability of each class out.
"""

from digitkit.export.core import COMPRESSIONS, FORMATS, PRECISIONS, default_output, export, model_file_stem

__all__ = ["COMPRESSIONS", "FORMATS", "PRECISIONS", "default_output", "export", "model_file_stem"]
