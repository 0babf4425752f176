"""Bad input to ops: a new_grad error that names the op and the shapes; NumPy's message kept, not swallowed."""

from __future__ import annotations

import numpy as np
import pytest

import new_grad as ng
from new_grad.errors import DtypeError, GradientError, IndexingError, ShapeError

CASES = [
    ("sum", lambda: ng.sum(np.ones((2, 3)), axis=2), ShapeError, r"sum\(\(2, 3\) float64, axis=2\): axis 2 is out of bounds"),
    ("mean", lambda: ng.mean(np.ones(3), axis=(0, 1)), ShapeError, r"mean\(\(3,\) float64"),
    ("softmax", lambda: ng.softmax(np.ones(3), axis=3), ShapeError, r"softmax\(\(3,\) float64, axis=3\)"),
    ("add", lambda: ng.add(np.ones((2, 3)), np.ones((3, 2))), ShapeError, r"add\(\(2, 3\) float64, \(3, 2\) float64\)"),
    ("matmul", lambda: ng.matmul(np.ones((2, 3)), np.ones((4, 5))), ShapeError, r"matmul\(\(2, 3\) float64, \(4, 5\) float64\)"),
    ("reshape", lambda: ng.reshape(np.ones(6), (4,)), ShapeError, r"reshape\(\(6,\) float64.*cannot reshape"),
    ("concatenate", lambda: ng.concatenate([np.ones((2, 3)), np.ones((2, 4))], axis=0), ShapeError, r"concatenate\(\(2, 3\) float64, \(2, 4\) float64"),
    ("einsum", lambda: ng.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((4, 5))), ShapeError, r"einsum\('ij,jk->ik', \(2, 3\) float64, \(4, 5\) float64\)"),
    ("inv", lambda: ng.linalg.inv(np.ones((2, 3))), ShapeError, r"linalg.inv\(\(2, 3\) float64\)"),
    ("getitem", lambda: ng.getitem(np.ones((2, 3)), (5,)), IndexingError, r"getitem: index \[5\] does not fit array \(2, 3\)"),
    ("getitem-array", lambda: ng.getitem(np.ones((2, 3)), np.array([0, 7])), IndexingError, r"index 7 is out of bounds"),
    ("take_along_axis", lambda: ng.take_along_axis(np.ones((2, 3)), np.array([[5]]), axis=1), IndexingError, r"take_along_axis"),
    ("linear", lambda: ng.linear(np.ones((4, 3)), np.ones((2, 5))), ShapeError, r"linear: input \(4, 3\) has 3 features but W \(2, 5\)"),
]


@pytest.mark.parametrize("name,call,error,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_op_and_shapes(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_custom_backward_wrong_count_names_the_op():
    eng = ng.Autograd()
    x = np.ones(3)

    def bad_backward(g, a, b, out, needs):
        return (g,)

    with eng:
        out = ng.ops.record("my_op", bad_backward, (x, x), x * 2)
        ng.sum(out)
    with pytest.raises(GradientError, match=r"my_op: backward returned 1 gradients for 2 inputs"):
        eng.backward(1)


def test_integer_input_where_a_gradient_is_asked_for():
    with pytest.raises(DtypeError):
        ng.grad(lambda x: ng.sum(ng.multiply(x, x)))(np.arange(3))
