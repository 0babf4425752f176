"""User mistakes raise new_grad's own errors, which are also the matching builtin exceptions."""

from __future__ import annotations

import numpy as np
import pytest

import new_grad as ng
import new_grad.nn as nn
from new_grad import errors
from new_grad.data.dataset import Dataset

CASES = [
    ("loss reduction", lambda: nn.L1Loss(reduction="avg"), errors.ArgumentError, ValueError, "reduction='avg'"),
    ("op reduction", lambda: ng.mse_loss(np.ones(2), np.ones(2), "avg"), errors.ArgumentError, ValueError, "mse_loss"),
    ("rnn nonlinearity", lambda: nn.RNN(2, 3, nonlinearity="gelu"), errors.ArgumentError, ValueError, "RNN"),
    ("dropout p", lambda: nn.Dropout(1.5), errors.ArgumentError, ValueError, "Dropout"),
    ("conv padding_mode", lambda: nn.Conv2d(2, 2, 3, padding_mode="reflect"), errors.UnsupportedError,
     NotImplementedError, "padding_mode='reflect'"),
    ("pool indices", lambda: ng.max_pool2d(np.ones((1, 1, 4, 4)), 2, return_indices=True), errors.UnsupportedError,
     NotImplementedError, "return_indices"),
    ("embedding max_norm", lambda: nn.Embedding(3, 2, max_norm=1.0), errors.UnsupportedError, NotImplementedError,
     "max_norm"),
    ("no forward", lambda: nn.Module()(np.ones(2)), errors.UnsupportedError, NotImplementedError, "forward"),
    ("not a module", lambda: nn.Module().add_module("a", 3), errors.ArgumentTypeError, TypeError, "not a Module"),
    ("dataset len", lambda: len(Dataset()), errors.UnsupportedError, NotImplementedError, "__len__"),
    ("init mode", lambda: nn.init.kaiming_uniform_(np.ones((2, 2)), mode="fan"), errors.ArgumentError, ValueError,
     "mode"),
]


@pytest.mark.parametrize(("what", "call", "kind", "builtin", "text"), CASES, ids=[c[0] for c in CASES])
def test_user_mistakes_raise_new_grad_errors(what, call, kind, builtin, text):
    with pytest.raises(kind, match=text) as info:
        call()
    assert isinstance(info.value, errors.NewGradError) and isinstance(info.value, builtin)
