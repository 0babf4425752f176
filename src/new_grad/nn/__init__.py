"""Neural-network layers, activations and losses built on new_grad's ops."""

from . import functional
from .activation import Activation, Identity, ReLU, Sigmoid, Tanh
from .linear import Linear
from .loss import MSELoss, SoftmaxCrossEntropy
from .module import Module

__all__ = [
    "functional",
    "Module",
    "Linear",
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "MSELoss",
    "SoftmaxCrossEntropy",
]
