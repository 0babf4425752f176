"""Neural-network layers, activations and losses built on new_grad's ops."""

from . import functional
from .activation import Activation, Identity, ReLU, Sigmoid, Tanh
from .linear import Linear
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    CTCLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    SoftmaxCrossEntropy,
)
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
    "CrossEntropyLoss",
    "NLLLoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
    "CTCLoss",
]
