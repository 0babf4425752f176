"""grad, value_and_grad, vjp, jacobian, hessian, hvp: values against PyTorch, and their rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import new_grad as ng
from new_grad.errors import DtypeError, ShapeError


def close(a, b, rtol=1e-7, atol=1e-10):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def f_ng(x, w):
    return ng.sum(ng.tanh(ng.matmul(x, w)))


def f_t(x, w):
    return torch.tanh(x @ w).sum()


@pytest.fixture
def xw():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 2))


def torch_grads(fn, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    return torch.autograd.grad(fn(*ts), ts)


def test_grad_and_argnums(xw):
    x, w = xw
    gx_t, gw_t = torch_grads(f_t, x, w)
    close(ng.grad(f_ng)(x, w), gx_t)
    close(ng.grad(f_ng, argnums=1)(x, w), gw_t)
    gx, gw = ng.grad(f_ng, argnums=(0, 1))(x, w)
    close(gx, gx_t)
    close(gw, gw_t)


def test_value_and_grad_and_aux(xw):
    x, w = xw
    value, g = ng.value_and_grad(f_ng)(x, w)
    close(value, f_t(torch.tensor(x), torch.tensor(w)))
    (value2, aux), g2 = ng.value_and_grad(lambda x, w: (f_ng(x, w), "aux"), has_aux=True)(x, w)
    assert aux == "aux" and float(value2) == float(value)
    close(g2, g)
    g3, aux3 = ng.grad(lambda x, w: (f_ng(x, w), {"n": 1}), has_aux=True)(x, w)
    assert aux3 == {"n": 1}
    close(g3, g)


def test_output_not_last_op_and_output_is_input():
    x = np.array([0.5, -1.0])

    def f(x):
        y = ng.sum(ng.exp(x))
        ng.sin(x)  # recorded after the output: must not become the seed
        return y

    close(ng.grad(f)(x), np.exp(x))
    assert float(ng.grad(lambda x: x)(2.0)) == 1.0


def test_jacobian_and_hessian_match_torch(xw):
    x, w = xw
    J = ng.jacobian(lambda x: ng.tanh(ng.matmul(x, w)))(x)
    J_t = torch.autograd.functional.jacobian(lambda t: torch.tanh(t @ torch.tensor(w)), torch.tensor(x))
    assert J.shape == (3, 2, 3, 4)
    close(J, J_t)
    H = ng.hessian(f_ng)(x, w)
    H_t = torch.autograd.functional.hessian(lambda t: f_t(t, torch.tensor(w)), torch.tensor(x))
    assert H.shape == (3, 4, 3, 4)
    close(H, H_t)
    Jx, Jw = ng.jacobian(lambda x, w: ng.matmul(x, w), argnums=(0, 1))(x, w)
    assert Jx.shape == (3, 2, 3, 4) and Jw.shape == (3, 2, 4, 2)


def test_jacobian_of_gradient_nested_in_grad():
    """A Jacobian assembled inside a transform is itself recorded (a third derivative)."""
    x = np.array([0.3, -0.7, 1.1])

    def trace_hessian(z):
        H = ng.jacobian(ng.grad(lambda y: ng.sum(ng.power(ng.sin(y), 3))))(z)
        return ng.sum(ng.multiply(H, np.eye(3)))

    t = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad((torch.sin(t) ** 3).sum(), t, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), t, create_graph=True)  # diagonal Hessian: its trace is h.sum()
    (d3,) = torch.autograd.grad(h.sum(), t)
    close(ng.grad(trace_hessian)(x), d3)


def test_vjp_and_hvp(xw):
    x, w = xw
    out, pullback = ng.vjp(lambda x, w: ng.tanh(ng.matmul(x, w)), x, w)
    v = np.random.default_rng(1).standard_normal(out.shape)
    gx, gw = pullback(v)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    gx_t, gw_t = torch.autograd.grad(torch.tanh(tx @ tw), (tx, tw), torch.tensor(v))
    close(gx, gx_t)
    close(gw, gw_t)
    gx2, _ = pullback(2 * v)  # a pullback can be called again
    close(gx2, 2 * gx_t)
    u = np.random.default_rng(2).standard_normal(x.shape)
    H_t = torch.autograd.functional.hessian(lambda t: f_t(t, torch.tensor(w)), torch.tensor(x))
    close(ng.hvp(f_ng, x, u, w), np.tensordot(H_t.numpy(), u, axes=2))


def test_integer_inputs_are_dtype_errors():
    f = lambda x: ng.sum(ng.multiply(x, x))  # noqa: E731
    with pytest.raises(DtypeError, match="argument 0.*int"):
        ng.grad(f)(np.arange(3))
    with pytest.raises(DtypeError, match="integer 3"):
        ng.grad(f)(3)
    with pytest.raises(DtypeError):
        ng.grad(f)(np.array([True, False]))
    with pytest.raises(DtypeError):
        ng.jacobian(f)(np.arange(3))
    with pytest.raises(DtypeError):
        ng.grad(ng.grad(f))(np.arange(3))


def test_non_scalar_output_is_a_shape_error():
    with pytest.raises(ShapeError, match="scalar.*jacobian"):
        ng.grad(ng.tanh)(np.ones(3))


def test_unused_input_raises_unless_allowed_and_arrays_the_user_owns():
    x = np.ones(3)
    with pytest.raises(ng.errors.GradientError, match="not computed from argument 0"):
        ng.grad(lambda x, y: ng.sum(ng.tanh(y)), argnums=(0, 1))(x, np.ones(2))
    g = ng.grad(lambda x, y: ng.sum(ng.tanh(y)), argnums=(0, 1), allow_unused=True)(x, np.ones(2))
    close(g[0], np.zeros(3))
    gs = ng.grad(lambda x: ng.sum(x))(x)
    gs += 1  # a broadcast view inside the engine; the user gets a writeable array
    close(gs, 2 * np.ones(3))


def test_same_array_at_two_argnums():
    x = np.array([1.0, 2.0])
    ga, gb = ng.grad(lambda a, b: ng.sum(ng.multiply(ng.multiply(a, a), b)), argnums=(0, 1))(x, x)
    close(ga, 2 * x * x)
    close(gb, x * x)


def test_float32_stays_float32():
    x = np.linspace(-1, 1, 4).astype(np.float32)
    assert ng.grad(lambda x: ng.sum(ng.tanh(x)))(x).dtype == np.float32
    assert ng.hessian(lambda x: ng.sum(ng.tanh(x)))(x).dtype == np.float32


def test_transforms_leave_user_engines_and_modules_alone():
    model = ng.nn.Linear(3, 2)
    x = np.random.default_rng(5).standard_normal((4, 3))
    engine = ng.Autograd()
    with ng.no_grad():  # works under no_grad; records nothing outside
        g = ng.grad(lambda W: ng.sum(ng.tanh(ng.linear(x, W, model.b))))(model.W)
    assert g.shape == model.W.shape and np.abs(g).sum() > 0
    g2 = ng.grad(lambda x: ng.sum(model(x)))(x)
    close(g2, np.ones((4, 2)) @ model.W)
    assert not model.dW.any() and not model.db.any()  # never accumulated into a module's gradients
    assert not engine.operation_list


def test_constant_input_still_differentiated():
    x = ng.constant(np.array([0.2, 0.4]))
    close(ng.grad(lambda x: ng.sum(ng.exp(x)))(x), np.exp(x))
    engine = ng.Autograd()
    with engine:  # nested: a constant for the outer engine, a variable for the transform
        g = ng.grad(lambda x: ng.sum(ng.exp(x)))(x)
    close(g, np.exp(x))


def test_argnums_out_of_range():
    with pytest.raises(ShapeError, match="argnums"):
        ng.grad(lambda x: ng.sum(x), argnums=2)(np.ones(2))


def test_argnums_naming_one_argument_twice_is_refused():
    """Two leaves for one argument: the first would look unused (zeros with allow_unused=True)."""
    x, y = np.ones(2), np.full(2, 3.0)
    for argnums in ((0, 0), (0, -2)):
        with pytest.raises(ShapeError, match="argument 0 twice"):
            ng.grad(lambda a, b: ng.sum(a * a * b), argnums=argnums, allow_unused=True)(x, y)
    with pytest.raises(ShapeError, match="argument 1 twice"):
        ng.jacobian(lambda a, b: a * b, argnums=(1, -1))(x, y)


def test_an_unused_argument_is_named_by_its_position_in_the_call():
    x = np.ones(2)
    with pytest.raises(ng.errors.GradientError, match="argument 2,"):
        ng.grad(lambda a, b, c: ng.sum(a * b), argnums=(1, 2))(x, x, x)
    with pytest.raises(ng.errors.GradientError, match="argument 0,"):
        ng.grad(lambda a, b: ng.sum(b * b), argnums=(-1, 0))(x, x)


def _cuda() -> bool:
    from new_grad.backends import cuda_available

    return cuda_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs CuPy and a CUDA GPU")
def test_transforms_on_gpu_match_cpu(xw):
    import cupy as cp

    x, w = xw
    xg, wg = cp.asarray(x), cp.asarray(w)
    v = np.random.default_rng(6).standard_normal(x.shape)
    pairs = [
        (ng.grad(f_ng)(x, w), ng.grad(f_ng)(xg, wg)),
        (ng.hessian(f_ng)(x, w), ng.hessian(f_ng)(xg, wg)),
        (ng.hvp(f_ng, x, v, w), ng.hvp(f_ng, xg, cp.asarray(v), wg)),
        (ng.jacobian(lambda x: ng.tanh(ng.matmul(x, w)))(x), ng.jacobian(lambda x: ng.tanh(ng.matmul(x, wg)))(xg)),
    ]
    for cpu, gpu in pairs:
        assert isinstance(gpu, cp.ndarray)
        close(cp.asnumpy(gpu), cpu, rtol=1e-6)


def test_jvp_matches_torch(xw):
    x, w = xw
    rng = np.random.default_rng(7)
    tx, tw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    out, jv = ng.jvp(lambda x, w: ng.tanh(ng.matmul(x, w)), (x, w), (tx, tw))
    o_t, jv_t = torch.autograd.functional.jvp(
        lambda a, b: torch.tanh(a @ b), (torch.tensor(x), torch.tensor(w)), (torch.tensor(tx), torch.tensor(tw))
    )
    close(out, o_t)
    close(jv, jv_t)
    # J·t of a scalar function is the directional derivative ⟨∇f, t⟩
    _, d = ng.jvp(lambda x: f_ng(x, w), (x,), (tx,))
    close(d, np.sum(ng.grad(f_ng)(x, w) * tx))
    with pytest.raises(ShapeError, match="tangent 0"):
        ng.jvp(ng.tanh, (x,), (np.ones(3),))


def _mlp_loss(params, X, Y):
    h = ng.tanh(ng.linear(X, params["W1"], params["b1"]))
    return ng.softmax_cross_entropy(ng.linear(h, params["W2"], params["b2"]), Y)


def test_containers_of_arrays_as_arguments():
    """Lists, tuples, namedtuples and dicts of arrays are differentiated leaf by leaf (JAX's pytrees)."""
    from collections import namedtuple

    rng = np.random.default_rng(8)
    params = {"W1": rng.standard_normal((5, 4)), "b1": np.zeros(5), "W2": rng.standard_normal((3, 5)), "b2": np.zeros(3)}
    X, Y = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    value, g = ng.value_and_grad(_mlp_loss)(params, X, Y)
    assert set(g) == set(params)
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    z = torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(Xt, ts["W1"], ts["b1"])), ts["W2"], ts["b2"])
    loss_t = -(Yt * torch.log_softmax(z, -1)).sum() / 6
    grads_t = dict(zip(ts, torch.autograd.grad(loss_t, list(ts.values()))))
    close(value, loss_t)
    for k in params:
        close(g[k], grads_t[k])

    Pair = namedtuple("Pair", "a b")
    gl, gt = ng.grad(lambda lst, pr: ng.add(ng.sum(ng.multiply(lst[0], lst[1])), ng.sum(ng.exp(pr.b))),
                     argnums=(0, 1), allow_unused=True)([np.ones(2), np.full(2, 3.0)], Pair(np.ones(1), np.zeros(2)))
    assert isinstance(gl, list) and isinstance(gt, Pair)
    close(gl[0], np.full(2, 3.0))
    close(gt.b, np.ones(2))
    close(gt.a, np.zeros(1))

    J = ng.jacobian(lambda p: ng.multiply(p["x"], p["y"]))({"x": np.ones(2), "y": np.arange(2.0)})
    close(J["x"], np.diag(np.arange(2.0)))
    _, jv = ng.jvp(lambda p: ng.multiply(p[0], p[1]), ([np.ones(2), np.arange(2.0)],), ([np.ones(2), np.ones(2)],))
    close(jv, np.arange(2.0) + 1)
