# SPDX-License-Identifier: MIT
"""flowpic_model: the Python side of the flowpic int8 CNN.

modelfile: the .fpcnn model file (writer and checking reader, the bytes
core/model_file.c reads). int8ref: the integer arithmetic of the C engine in
numpy, bit for bit, plus quantize_multiplier() and a post-training quantizer
for float weights. docs/model-format.md defines both.
"""
from . import int8ref, modelfile
from .modelfile import Builder, Layer, Model, ModelFileError

__all__ = ["int8ref", "modelfile", "Builder", "Layer", "Model", "ModelFileError"]
