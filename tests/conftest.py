"""Shared test settings.

Layers are compared with real Keras at float32 precision, so on a GPU cuDNN stays off TF32.
"""
import torch

torch.backends.cudnn.allow_tf32 = False
