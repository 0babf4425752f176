"""Cases for the elementwise ops (ops/elementwise.py) beyond the core set."""

from __future__ import annotations

import numpy as np
import torch

import new_grad as ng

from ..opcheck import OpCase


def _where_shapes(data):
    from hypothesis.extra import numpy as hnp

    return list(data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4)).input_shapes)


CASES = [
    # the condition is drawn as a float array and compared inside, so it stays non-differentiable
    OpCase("where", lambda c, x, y: torch.where(c > 0, x, y), 3, ng_fn=lambda c, x, y: ng.where(c > 0, x, y),
           shapes=_where_shapes, nondiff=(0,)),
    OpCase("erf", torch.erf),
]

_ = np
