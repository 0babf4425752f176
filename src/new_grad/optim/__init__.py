"""Optimisers that update parameters in place, with PyTorch's update rules; schedulers; clipping."""

from ..nn.utils import clip_grad_norm_, clip_grad_value_
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "lr_scheduler",
    "clip_grad_norm_",
    "clip_grad_value_",
]
