"""End to end: the course's MLP in new_grad and in PyTorch follow the same loss trajectory (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng


class CourseMLP:
    """The course's MLP: Linear → ReLU → Linear → Tanh → Linear, all recording on one engine."""

    def __init__(self, engine, sizes=(8, 16, 12, 4)):
        self.layers = [
            ng.nn.Linear(sizes[0], sizes[1], engine),
            ng.nn.ReLU(engine),
            ng.nn.Linear(sizes[1], sizes[2], engine),
            ng.nn.Tanh(engine),
            ng.nn.Linear(sizes[2], sizes[3], engine),
        ]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def torch_twin(model):
    linears = [layer for layer in model.layers if isinstance(layer, ng.nn.Linear)]
    mods = []
    for i, lin in enumerate(linears):
        t = torch.nn.Linear(lin.in_features, lin.out_features).double()
        with torch.no_grad():
            t.weight.copy_(torch.tensor(lin.W))
            t.bias.copy_(torch.tensor(lin.b))
        mods.append(t)
        if i == 0:
            mods.append(torch.nn.ReLU())
        elif i == 1:
            mods.append(torch.nn.Tanh())
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize(
    "opt_kwargs",
    [dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), dict(lr=0.2)],
    ids=["momentum", "nesterov-wd", "plain"],
)
def test_mlp_trajectory_matches_pytorch(opt_kwargs):
    np.random.seed(0)
    engine = ng.Autograd()
    model = CourseMLP(engine)
    tmodel = torch_twin(model)
    loss_fn = ng.nn.SoftmaxCrossEntropy(engine)
    opt = ng.optim.SGD(model, **opt_kwargs)  # a course-style model: a list of layers with W/dW, b/db
    topt = torch.optim.SGD(tmodel.parameters(), **opt_kwargs)
    rng = np.random.default_rng(1)
    data = rng.standard_normal((64, 8))
    labels = np.eye(4)[np.argmax(data @ rng.standard_normal((8, 4)), axis=1)]  # a learnable rule
    ours, theirs = [], []
    for step in range(40):
        x, y = data[16 * (step % 4) : 16 * (step % 4 + 1)], labels[16 * (step % 4) : 16 * (step % 4 + 1)]
        opt.zero_grad()
        engine.zero_grad()
        loss = loss_fn(y, model.forward(ng.constant(x)))
        loss_fn.backward()
        opt.step()
        ours.append(float(loss[0]))

        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        theirs.append(tloss.item())
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    assert np.mean(ours[-4:]) < np.mean(ours[:4])
