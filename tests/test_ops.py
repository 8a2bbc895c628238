"""Public products (`matmul`, `@`, `sddmm`): shapes, batching, views, out/alpha/beta, errors.

CPU tests check the numpy path against float64 dense products; GPU tests (marker `gpu`) check
that the cupy path of the same calls agrees with the CPU. The cupy-only argument checks run on
the CPU too, with a stand-in for `cupy.ndarray` (they raise before any GPU work).
"""

import sys
import types

import numpy as np
import pytest

import cupy_bsparse as cb
from cupy_bsparse import reference
from cupy_bsparse._arrays import to_host as host
from cupy_bsparse._arrays import to_module

# Inputs, float64 oracle and tolerances are those of the contract tests; rng is their fixture.
from test_reference import BF16, BLOCKS, DTYPE_IDS, DTYPES, assert_close, f64, randn
from test_reference import make_weight as make_parts
from test_reference import rng  # noqa: F401


def make_weight(rng, nbr, nbc, bs, density=0.4, dtype=np.float32):
    """(W, dense float64 W) with an empty block-row and block-column when 0 < density < 1."""
    data, layout, dense = make_parts(rng, nbr, nbc, bs, density, dtype)
    return cb.BlockSparseMatrix.from_layout(layout, data), dense


def block_mask(w):
    """Element mask (R, C) of a matrix's stored blocks."""
    bs = w.blocksize[0]
    return np.kron(w.layout.toarray(), np.ones((bs, bs), bool))


# ---------------------------------------------------------------------------------------------
# matmul: x @ W


@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("bs", BLOCKS)
def test_x_times_w(rng, bs, dtype, density, view):
    w, dense = make_weight(rng, 5, 3, bs, density, dtype)
    if view:
        w, dense = w.T, dense.T
    x = randn(rng, (7, dense.shape[0]), dtype)
    x_copy, data_copy = x.copy(), w._data.copy()
    y = cb.matmul(x, w)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, f64(x) @ dense, dtype)
    np.testing.assert_array_equal(x @ w, y)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w._data, data_copy)


@pytest.mark.parametrize(
    "lead", [(), (1,), (2, 3), (4, 1, 5), (0,), (2, 0)],
    ids=lambda s: "x".join(map(str, s)) or "1d",
)
@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
def test_x_times_w_batched(rng, lead, view):
    w, dense = make_weight(rng, 4, 6, 8)
    if view:
        w, dense = w.T, dense.T
    x = randn(rng, lead + (dense.shape[0],))
    y = x @ w
    assert y.shape == lead + (dense.shape[1],)
    assert_close(y, f64(x) @ dense, np.float32)


def test_x_times_w_noncontiguous_x(rng):
    w, dense = make_weight(rng, 4, 3, 8)
    big = randn(rng, (3, 6, 50))
    for x in (big[:, ::2, 5:37], big[..., 5:37][:, ::-1], randn(rng, (32, 9)).T,
              randn(rng, (64, 5))[::2].T[::-1]):
        x_copy = x.copy()
        assert_close(x @ w, f64(x) @ dense, np.float32)
        np.testing.assert_array_equal(x, x_copy)


# ---------------------------------------------------------------------------------------------
# matmul: W @ x


@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("bs", BLOCKS)
def test_w_times_x(rng, bs, dtype, density, view):
    w, dense = make_weight(rng, 3, 5, bs, density, dtype)
    if view:
        w, dense = w.T, dense.T
    x = randn(rng, (dense.shape[1], 9), dtype)
    x_copy, data_copy = x.copy(), w._data.copy()
    y = cb.matmul(w, x)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, dense @ f64(x), dtype)
    np.testing.assert_array_equal(w @ x, y)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w._data, data_copy)


@pytest.mark.parametrize("side", ["xW", "Wx"])
def test_empty_layout_scales_out(rng, side):
    """A pattern with no stored block: out = beta * out (alpha * 0 added), both sides."""
    w, dense = make_weight(rng, 3, 4, 8, 0.0)
    assert w.nnzb == 0
    x = randn(rng, (5, 24) if side == "xW" else (32, 5))
    y0 = randn(rng, (5, 32) if side == "xW" else (24, 5))
    out = y0.copy()
    args = (x, w) if side == "xW" else (w, x)
    assert cb.matmul(*args, out=out, alpha=2.0, beta=0.5) is out
    np.testing.assert_array_equal(out, 0.5 * y0)
    out[...] = np.nan
    cb.matmul(*args, out=out)
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize(
    "xshape",
    [(None,), (None, 1), (None, 6), (2, None, 6), (3, 1, None, 2), (None, 0), (0, None, 3)],
    ids=lambda s: "x".join("K" if d is None else str(d) for d in s),
)
@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
def test_w_times_x_shapes(rng, xshape, view):
    w, dense = make_weight(rng, 6, 4, 8)
    if view:
        w, dense = w.T, dense.T
    x = randn(rng, tuple(dense.shape[1] if d is None else d for d in xshape))
    y = w @ x
    ref = np.matmul(dense, f64(x))
    assert y.shape == ref.shape and y.flags.c_contiguous
    assert_close(y, ref, np.float32)


def test_w_times_x_noncontiguous_x(rng):
    w, dense = make_weight(rng, 3, 4, 8)
    for x in (randn(rng, (5, 32)).T, randn(rng, (32, 12))[:, ::3],
              randn(rng, (2, 5, 32)).swapaxes(1, 2), randn(rng, (64,))[::2]):
        x_copy = x.copy()
        assert_close(w @ x, np.matmul(dense, f64(x)), np.float32)
        np.testing.assert_array_equal(x, x_copy)


# ---------------------------------------------------------------------------------------------
# matmul: out, alpha, beta


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
def test_x_times_w_out(rng, view, dtype):
    w, dense = make_weight(rng, 4, 5, 16, 0.4, dtype)
    if view:
        w, dense = w.T, dense.T
    x = randn(rng, (2, 3, dense.shape[0]), dtype)
    x_copy, data_copy = x.copy(), w._data.copy()
    out = np.full((2, 3, dense.shape[1]), np.nan, dtype)  # beta == 0: never read
    assert cb.matmul(x, w, out=out, alpha=2.5) is out
    assert_close(out, 2.5 * (f64(x) @ dense), dtype)
    y0 = out.copy()
    assert cb.matmul(x, w, out=out, alpha=-1.0, beta=0.5) is out
    assert_close(out, -(f64(x) @ dense) + 0.5 * f64(y0), dtype)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w._data, data_copy)


@pytest.mark.parametrize("order", ["C", "F", "strided", "reversed"])
@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
def test_w_times_x_out(rng, view, order):
    # F order puts out's transpose in row-major order, so the product is written in place;
    # C order goes through a temporary (on the GPU; the CPU reference writes any strides).
    w, dense = make_weight(rng, 5, 3, 8)
    if view:
        w, dense = w.T, dense.T
    x = randn(rng, (dense.shape[1], 6))
    if order == "strided":
        whole = np.full((dense.shape[0], 12), 7.0, np.float32)
        out = whole[:, ::2]
        out[...] = np.nan
    elif order == "reversed":   # negative strides in out and x
        out = np.full((dense.shape[0], 6), np.nan, np.float32)[::-1, ::-1]
        x = randn(rng, (dense.shape[1], 6))[::-1]
    else:
        out = np.full((dense.shape[0], 6), np.nan, np.float32, order=order)
    x_copy, data_copy = x.copy(), w._data.copy()
    assert cb.matmul(w, x, out=out, alpha=0.5) is out
    assert_close(out, 0.5 * (dense @ f64(x)), np.float32)
    y0 = out.copy()
    assert cb.matmul(w, x, out=out, beta=3.0) is out
    assert_close(out, dense @ f64(x) + 3.0 * f64(y0), np.float32)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w._data, data_copy)
    if order == "strided":
        assert np.all(whole[:, 1::2] == 7.0)   # the elements between out's are untouched


def test_w_times_x_out_batched_and_1d(rng):
    w, dense = make_weight(rng, 4, 4, 8)
    x = randn(rng, (3, 32, 5))
    y0 = randn(rng, (3, 32, 5))
    out = y0.copy()
    assert cb.matmul(w, x, out=out, beta=1.0) is out
    assert_close(out, np.matmul(dense, f64(x)) + f64(y0), np.float32)
    v = randn(rng, (32,))
    out = np.full(32, np.nan, np.float32)
    assert cb.matmul(w, v, out=out) is out
    assert_close(out, dense @ f64(v), np.float32)


def test_empty_batch_with_out(rng):
    w, _ = make_weight(rng, 2, 3, 8)
    out = np.empty((0, 24), np.float32)
    assert cb.matmul(np.empty((0, 16), np.float32), w, out=out, beta=1.0) is out


# ---------------------------------------------------------------------------------------------
# sddmm


def sampled(w, product):
    return np.where(block_mask(w), product, 0.0)


@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("bs", BLOCKS)
def test_sddmm(rng, bs, dtype, density):
    w, _ = make_weight(rng, 3, 4, bs, density, dtype)
    x = randn(rng, (11, w.shape[0]), dtype)
    dy = randn(rng, (11, w.shape[1]), dtype)
    x_copy, dy_copy = x.copy(), dy.copy()
    g = cb.sddmm(x.T, dy, w)
    assert isinstance(g, cb.BlockSparseMatrix) and g.dtype == dtype and not g.transposed
    assert g.layout is w.layout
    assert_close(g.toarray(), sampled(w, f64(x).T @ f64(dy)), dtype)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)


@pytest.mark.parametrize("pattern", ["layout", "matrix", "view"])
def test_sddmm_pattern_argument(rng, pattern):
    w, _ = make_weight(rng, 4, 6, 8)
    target = {"layout": w.layout, "matrix": w, "view": w.T}[pattern]
    rows, cols = target.shape
    a = randn(rng, (rows, 10))
    b = randn(rng, (10, cols))
    g = cb.sddmm(a, b, target, alpha=3.0)
    assert g.shape == (rows, cols)
    assert g.transposed == (pattern == "view")
    mask = block_mask(w.T if pattern == "view" else w)
    assert_close(g.toarray(), np.where(mask, 3.0 * (f64(a) @ f64(b)), 0.0), np.float32)


def test_sddmm_passes_x_without_copy(rng, monkeypatch):
    """a = x.T reaches the contract as x itself (no copy of the activations)."""
    w, _ = make_weight(rng, 4, 3, 8)
    x = randn(rng, (20, 32))
    dy = randn(rng, (20, 24))
    seen = {}

    def spy(x_arg, dy_arg, layout, out_data, alpha, beta, allow_tf32=False):
        seen.update(x=x_arg, dy=dy_arg)
        return out_data

    monkeypatch.setattr(reference, "sddmm", spy)
    cb.sddmm(x.T, dy, w)
    assert np.shares_memory(seen["x"], x) and seen["x"].shape == x.shape
    assert seen["dy"] is dy


@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sddmm_out_accumulates(rng, dtype, view):
    w, _ = make_weight(rng, 5, 4, 8, 0.5, dtype)
    grad = cb.BlockSparseMatrix.from_layout(w.layout, randn(rng, (w.nnzb, 8, 8), dtype))
    if view:
        w, grad = w.T, grad.T
    before = f64(grad.toarray())
    storage = grad._data
    x = randn(rng, (13, w.shape[0]), dtype)
    dy = randn(rng, (13, w.shape[1]), dtype)
    x_copy, dy_copy, w_copy = x.copy(), dy.copy(), w._data.copy()
    assert cb.sddmm(x.T, dy, w, out=grad, beta=1.0) is grad
    assert grad._data is storage
    assert_close(grad.toarray(), sampled(w, f64(x).T @ f64(dy)) + before, dtype)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)
    np.testing.assert_array_equal(w._data, w_copy)


def test_sddmm_out_orientation_from_out(rng):
    """A non-view out with the pattern of W.T takes W.T's product in its own orientation."""
    w, _ = make_weight(rng, 3, 5, 8)
    t_layout = cb.BlockLayout(w.layout.T.indptr.copy(), w.layout.T.indices.copy(), (40, 24), 8)
    out = cb.BlockSparseMatrix.from_layout(t_layout, np.full((w.nnzb, 8, 8), np.nan, np.float32))
    a = randn(rng, (40, 7))
    b = randn(rng, (7, 24))
    assert cb.sddmm(a, b, w.T, out=out) is out and not out.transposed
    assert_close(out.toarray(), sampled(w.T, f64(a) @ f64(b)), np.float32)


def test_sddmm_poisoned_out_and_empty_reduction(rng):
    w, _ = make_weight(rng, 3, 3, 16, 1.0)
    out = cb.BlockSparseMatrix.from_layout(w.layout, np.full((w.nnzb, 16, 16), np.nan, np.float32))
    x = randn(rng, (5, 48))
    cb.sddmm(x.T, x, w, out=out)
    assert_close(out.toarray(), sampled(w, f64(x).T @ f64(x)), np.float32)
    before = out.toarray().copy()
    empty = np.empty((0, 48), np.float32)
    cb.sddmm(empty.T, empty, w, out=out, beta=0.5)
    np.testing.assert_array_equal(out.toarray(), 0.5 * before)
    assert not cb.sddmm(empty.T, empty, w).toarray().any()


# ---------------------------------------------------------------------------------------------
# errors


def test_matmul_operand_kind_errors(rng):
    w, _ = make_weight(rng, 2, 2, 8)
    x = randn(rng, (3, 16))
    with pytest.raises(TypeError, match="exactly one of a, b"):
        cb.matmul(x, x.T)
    with pytest.raises(TypeError, match="exactly one of a, b"):
        cb.matmul(w, w)
    with pytest.raises(TypeError, match="a must be a numpy or cupy array"):
        cb.matmul(x.tolist(), w)
    with pytest.raises(TypeError, match="b must be a numpy or cupy array"):
        cb.matmul(w, 2.0)
    with pytest.raises(ValueError, match="at least one dimension"):
        cb.matmul(np.ones((), np.float32), w)


def test_matmul_dtype_and_shape_errors(rng):
    w, _ = make_weight(rng, 2, 3, 8)  # (16, 24)
    with pytest.raises(TypeError, match="float64.*float32"):
        cb.matmul(randn(rng, (3, 16), np.float64), w)
    with pytest.raises(TypeError, match="b has dtype float16 but a has dtype float32"):
        w @ randn(rng, (24, 2), np.float16)
    with pytest.raises(ValueError, match=r"a has shape \(3, 24\).*b.shape\[0\] = 16"):
        cb.matmul(randn(rng, (3, 24)), w)
    with pytest.raises(ValueError, match=r"axis 0 must match a.shape\[1\] = 24"):
        w @ randn(rng, (16,))
    with pytest.raises(ValueError, match=r"axis 1 must match a.shape\[1\] = 24"):
        w @ randn(rng, (2, 16, 24))


def test_matmul_out_errors(rng):
    w, _ = make_weight(rng, 2, 3, 8)  # (16, 24)
    x = randn(rng, (4, 16))
    with pytest.raises(TypeError, match="out must be a numpy or cupy array"):
        cb.matmul(x, w, out=[0.0] * 96)
    with pytest.raises(TypeError, match="out has dtype float64"):
        cb.matmul(x, w, out=np.empty((4, 24)))
    with pytest.raises(ValueError, match=r"out has shape \(24, 4\)"):
        cb.matmul(x, w, out=np.empty((24, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        cb.matmul(x, w, out=np.empty((24, 4), np.float32).T)
    with pytest.raises(ValueError, match="out shares memory with a"):
        sq, _ = make_weight(rng, 2, 2, 8)
        cb.matmul(x, sq, out=x)
    with pytest.raises(ValueError, match="out shares memory with b"):
        sq, _ = make_weight(rng, 2, 2, 8)
        v = randn(rng, (16,))
        cb.matmul(sq, v, out=v)
    with pytest.raises(ValueError, match="beta = 1.0 needs out="):
        cb.matmul(x, w, beta=1.0)
    # out over W's stored blocks (b or a is the sparse operand)
    with pytest.raises(ValueError, match="out shares memory with b"):
        cb.matmul(x[:2], w, out=w._data.reshape(-1)[:48].reshape(2, 24))
    with pytest.raises(ValueError, match="out shares memory with a"):
        cb.matmul(w, randn(rng, (24, 2)), out=w._data.reshape(-1)[:32].reshape(16, 2))


@pytest.mark.parametrize("name", ["alpha", "beta"])
@pytest.mark.parametrize("value", [1j, "1", True, np.ones(1), None])
def test_scalar_errors(rng, name, value):
    w, _ = make_weight(rng, 2, 2, 8)
    x = randn(rng, (3, 16))
    with pytest.raises(TypeError, match=f"matmul: {name} must be a real number"):
        cb.matmul(x, w, **{name: value})
    with pytest.raises(TypeError, match=f"sddmm: {name} must be a real number"):
        cb.sddmm(x.T, x, w, **{name: value})


def test_allow_tf32_error(rng):
    w, _ = make_weight(rng, 2, 2, 8)
    with pytest.raises(TypeError, match="allow_tf32 must be a bool"):
        cb.matmul(randn(rng, (3, 16)), w, allow_tf32=1)
    x = randn(rng, (3, 16))
    with pytest.raises(TypeError, match="sddmm: allow_tf32 must be a bool"):
        cb.sddmm(x.T, x, w, allow_tf32="yes")
    # accepted (and without effect) on the CPU
    np.testing.assert_array_equal(cb.sddmm(x.T, x, w, allow_tf32=True).data,
                                  cb.sddmm(x.T, x, w).data)


def test_sddmm_errors(rng):
    w, _ = make_weight(rng, 2, 3, 8, 1.0)  # (16, 24)
    a, b = randn(rng, (16, 5)), randn(rng, (5, 24))
    with pytest.raises(TypeError, match="sddmm: a must be a numpy or cupy array"):
        cb.sddmm(a.tolist(), b, w)
    with pytest.raises(TypeError, match="sddmm: b must be a numpy or cupy array"):
        cb.sddmm(a, None, w)
    with pytest.raises(TypeError, match="layout must be a BlockLayout or a BlockSparseMatrix"):
        cb.sddmm(a, b, w.layout.toarray())
    with pytest.raises(TypeError, match="out must be a BlockSparseMatrix"):
        cb.sddmm(a, b, w, out=w._data)
    with pytest.raises(TypeError, match="a has dtype float32 but b has dtype float16"):
        cb.sddmm(a, b.astype(np.float16), w)
    with pytest.raises(TypeError, match="out has dtype float64"):
        cb.sddmm(a, b, w, out=w.astype(np.float64))
    with pytest.raises(ValueError, match="must be 2-D"):
        cb.sddmm(a[:, 0], b, w)
    with pytest.raises(ValueError, match=r"a.shape\[1\] must equal b.shape\[0\]"):
        cb.sddmm(a, b[:4], w)
    with pytest.raises(ValueError, match=r"layout has shape \(16, 24\)"):
        cb.sddmm(randn(rng, (24, 5)), randn(rng, (5, 16)), w)
    other, _ = make_weight(rng, 2, 3, 8, 0.3)
    with pytest.raises(ValueError, match="out's block pattern differs"):
        cb.sddmm(a, b, w, out=other)
    with pytest.raises(ValueError, match="beta = 0.5 needs out="):
        cb.sddmm(a, b, w, beta=0.5)
    out = w.copy()
    with pytest.raises(ValueError, match="out shares memory with a"):
        cb.sddmm(out._data.reshape(16, 24), randn(rng, (24, 24)), w, out=out)
    with pytest.raises(ValueError, match="out shares memory with b"):
        cb.sddmm(randn(rng, (16, 16)), out._data.reshape(16, 24), w, out=out)
    out._data.flags.writeable = False
    with pytest.raises(ValueError, match="sddmm: out's data is read-only"):
        cb.sddmm(a, b, w, out=out)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.complex64, bool, ">f4"])
def test_sddmm_rejects_unsupported_dtypes(rng, dtype):
    # a and b are both dense: nothing else fixes their dtype (matmul's W does)
    w, _ = make_weight(rng, 2, 3, 8, 0.5)
    a, b = np.ones((16, 3), dtype), np.ones((3, 24), dtype)
    with pytest.raises(TypeError, match=r"sddmm: a.dtype must be one of float16, bfloat16"):
        cb.sddmm(a, b, w)
    empty = cb.BlockSparseMatrix.from_layout(
        cb.BlockLayout.from_mask(np.zeros((2, 3), bool), 8), np.zeros((0, 8, 8), np.float32))
    with pytest.raises(TypeError, match=r"sddmm: a.dtype must be one of"):
        cb.sddmm(a, b, empty)
    with pytest.raises(TypeError, match=r"sddmm: a.dtype must be one of"):
        cb.sddmm(a[:, :0], b[:0], w)


def test_matmul_rejects_read_only_out(rng):
    w, _ = make_weight(rng, 2, 3, 8, 0.5)
    x = randn(rng, (5, 16))
    out = np.zeros((5, 24), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="matmul: out is read-only"):
        cb.matmul(x, w, out=out)
    out = np.zeros((16, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="matmul: out is read-only"):
        cb.matmul(w, randn(rng, (24, 5)), out=out)


class FakeGpuArray:
    """Stand-in for cupy.ndarray: enough for the checks that run before any GPU work."""

    def __init__(self, a):
        self.dtype, self.shape, self.ndim = a.dtype, a.shape, a.ndim


@pytest.fixture
def fake_cupy(monkeypatch):
    module = types.ModuleType("cupy")
    module.ndarray = FakeGpuArray
    monkeypatch.setitem(sys.modules, "cupy", module)


def on_fake_gpu(w):
    return cb.BlockSparseMatrix._from_parts(FakeGpuArray(w._data), w._base_layout, w._transposed)


def test_mixed_devices(rng, fake_cupy):
    w, _ = make_weight(rng, 2, 2, 8)
    x = randn(rng, (3, 16))
    with pytest.raises(TypeError, match="a on the GPU.*b on the CPU"):
        cb.matmul(FakeGpuArray(x), w)
    with pytest.raises(TypeError, match="b on the GPU.*a on the CPU"):
        cb.matmul(x, on_fake_gpu(w))
    with pytest.raises(TypeError, match="out on the GPU"):
        cb.matmul(x, w, out=FakeGpuArray(randn(rng, (3, 16))))
    with pytest.raises(TypeError, match="b on the GPU.*a on the CPU"):
        cb.sddmm(x.T, FakeGpuArray(x), w)
    with pytest.raises(TypeError, match="out on the GPU"):
        cb.sddmm(x.T, x, w, out=on_fake_gpu(w))


def test_gpu_dtype_and_blocksize_errors(rng, fake_cupy):
    w64, _ = make_weight(rng, 2, 2, 8, dtype=np.float64)
    x64 = FakeGpuArray(randn(rng, (3, 16), np.float64))
    with pytest.raises(TypeError, match="matmul: a and b have dtype float64; the GPU kernels"):
        cb.matmul(x64, on_fake_gpu(w64))
    with pytest.raises(TypeError, match="sddmm: a and b have dtype float64; the GPU kernels"):
        cb.sddmm(x64, x64, w64)
    w3, _ = make_weight(rng, 2, 2, 3)
    x = FakeGpuArray(randn(rng, (3, 6)))
    with pytest.raises(ValueError, match="matmul: b has blocksize 3; the GPU kernels support"):
        cb.matmul(x, on_fake_gpu(w3))
    with pytest.raises(ValueError, match="matmul: a has blocksize 3; the GPU kernels support"):
        cb.matmul(on_fake_gpu(w3), x)
    with pytest.raises(ValueError, match="sddmm: layout has blocksize 3; the GPU kernels"):
        cb.sddmm(x, x, w3.layout)


# ---------------------------------------------------------------------------------------------
# GPU: the cupy path of the same calls agrees with the CPU


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16, np.dtype(np.float32)],
                         ids=["f16", "bf16", "f32"])
@pytest.mark.parametrize("view", [False, True], ids=["W", "WT"])
@pytest.mark.parametrize("bs", [8, 32])
@pytest.mark.gpu
def test_gpu_matches_cpu(rng, bs, view, dtype):
    import cupy

    w, dense = make_weight(rng, 4, 3, bs, 0.5, dtype)
    if view:
        w, dense = w.T, dense.T
    wg = w.to_gpu()
    assert wg.shape == w.shape and wg.transposed == view
    r, c = dense.shape

    def gpu(a):
        return to_module(a, cupy)

    # x @ W, batched and non-contiguous, with and without a poisoned out
    x = randn(rng, (2, 5, r + 3), dtype)
    assert_close(host(gpu(x)[..., 3:] @ wg), f64(x[..., 3:]) @ dense, dtype)
    out = gpu(np.full((2, 5, c), np.nan, dtype))
    assert cb.matmul(gpu(x)[..., 3:], wg, out=out) is out
    assert_close(host(out), f64(x[..., 3:]) @ dense, dtype)
    # W @ x with a C-order out (through a temporary) and beta
    x = randn(rng, (2, c, 6), dtype)
    y0 = randn(rng, (2, r, 6), dtype)
    out = gpu(y0)
    assert cb.matmul(wg, gpu(x), out=out, beta=1.0) is out
    assert_close(host(out), np.matmul(dense, f64(x)) + f64(y0), dtype)
    # W @ x into an out whose transpose is C-contiguous (written in place)
    x = randn(rng, (c, 6), dtype)
    out = gpu(np.full((6, r), np.nan, dtype)).T
    assert cb.matmul(wg, gpu(x), out=out, alpha=2.0) is out
    assert_close(host(out), 2.0 * (dense @ f64(x)), dtype)
    # W @ x, 1-D
    v = randn(rng, (c,), dtype)
    assert_close(host(wg @ gpu(v)), dense @ f64(v), dtype)
    # sddmm on the matrix's pattern (a transposed view for W.T), accumulating into out
    m = 17
    a = randn(rng, (m, r), dtype)
    b = randn(rng, (m, c), dtype)
    g = cb.sddmm(gpu(a).T, gpu(b), wg)
    assert g.transposed == view and g.device == "gpu"
    ref = sampled(w, f64(a).T @ f64(b))
    assert_close(host(g.toarray()), ref, dtype)
    cb.sddmm(gpu(a).T, gpu(b), wg, out=g, beta=1.0)
    assert_close(host(g.toarray()), 2.0 * ref, dtype)
