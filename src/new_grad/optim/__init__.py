"""Optimisers that update parameters in place, with PyTorch's update rules."""

from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD"]
