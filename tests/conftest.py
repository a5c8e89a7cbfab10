"""Shared test settings.

The suite compares lamina with real Keras on the CPU, also on a machine with a GPU: both are
pinned there unless LAMINA_DEVICE / KERAS_TORCH_DEVICE say otherwise. tests/test_gpu.py puts
lamina on CUDA itself; there cuDNN stays off TF32 so results match the CPU's float32.
"""
import os

import pytest
import torch

os.environ.setdefault("LAMINA_DEVICE", "cpu")
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")
torch.backends.cudnn.allow_tf32 = False

from lamina.utils import set_random_seed  # noqa: E402  (after the device settings)


@pytest.fixture(autouse=True)
def _same_random_state():
    """Every test starts from one random state (Python, numpy, torch), so a failure repeats."""
    set_random_seed(0)
