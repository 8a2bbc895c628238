"""The numpy kernel contract (`reference.dsd`, `reference.sddmm`) against float64 dense products.

Oracles are built from the mask and the rounded inputs in float64, independently of the code
under test. Tolerances are relative Frobenius errors: float32 accumulation plus one final
rounding to the dtype (unit roundoff 2**-11 for float16, 2**-8 for bfloat16). test_ops.py
checks the public products with the same inputs, oracle and tolerances (imported from here).
"""

import zlib

import ml_dtypes
import numpy as np
import pytest

from cupy_bsparse import reference
from cupy_bsparse.block_layout import BlockLayout

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
DTYPE_IDS = ["f16", "bf16", "f32", "f64"]
TOL = {np.dtype(np.float16): 1e-3, BF16: 8e-3, np.dtype(np.float32): 1e-5,
       np.dtype(np.float64): 1e-12}
BLOCKS = [1, 3, 8, 16, 32, 64]


@pytest.fixture
def rng(request):
    # Fresh inputs per test, reproducible from the test id.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def make_mask(rng, nbr, nbc, density):
    mask = rng.random((nbr, nbc)) < density
    if 0 < density < 1:
        mask[nbr // 2, :] = False  # an empty block-row
        mask[:, nbc // 2] = False  # an empty block-column
    return mask


def make_weight(rng, nbr, nbc, bs, density, dtype):
    """(data, layout, dense float64 W) for a random mask."""
    mask = make_mask(rng, nbr, nbc, density)
    layout = BlockLayout.from_mask(mask, bs)
    data = rng.standard_normal((layout.nnzb, bs, bs)).astype(dtype)
    grid = np.zeros((nbr, nbc, bs, bs))
    grid[np.nonzero(mask)] = data.astype(np.float64)
    return data, layout, grid.transpose(0, 2, 1, 3).reshape(nbr * bs, nbc * bs)


def sample_blocks(dense, layout):
    """(nnzb, bs, bs) blocks of a dense (R, C) array at the layout's positions."""
    bs = layout.blocksize
    nbr, nbc = layout.block_shape
    grid = dense.reshape(nbr, bs, nbc, bs).transpose(0, 2, 1, 3)
    return grid[np.nonzero(layout.toarray())]


def randn(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def f64(a):
    return np.asarray(a).astype(np.float64)


def assert_close(got, ref, dtype):
    got = f64(got)
    assert got.shape == ref.shape
    assert not np.isnan(got).any()
    norm = np.linalg.norm(ref)
    if norm == 0:
        assert not got.any(), "expected exact zeros"
        return
    err = np.linalg.norm(got - ref) / norm
    assert err <= TOL[np.dtype(dtype)], f"relative error {err:.3g}"


@pytest.mark.parametrize("trans_w", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("bs", BLOCKS)
def test_dsd(rng, bs, dtype, density, trans_w):
    data, layout, w = make_weight(rng, 5, 4, bs, density, dtype)
    op = w.T if trans_w else w
    m = 7
    x = randn(rng, (m, op.shape[0]), dtype)
    x_copy, data_copy = x.copy(), data.copy()
    out = np.full((m, op.shape[1]), np.nan, dtype)  # beta == 0: never read
    res = reference.dsd(x, data, layout, trans_w, out, 1.0, 0.0)
    assert res is out and res.dtype == dtype
    assert_close(out, f64(x) @ op, dtype)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(data, data_copy)


@pytest.mark.parametrize("trans_w", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("m", [1, 2, 33])
def test_dsd_alpha_beta(rng, m, dtype, trans_w):
    data, layout, w = make_weight(rng, 4, 6, 8, 0.3, dtype)
    op = w.T if trans_w else w
    x = randn(rng, (m, op.shape[0]), dtype)
    y0 = randn(rng, (m, op.shape[1]), dtype)
    out = y0.copy()
    reference.dsd(x, data, layout, trans_w, out, -0.5, 2.0)
    assert_close(out, -0.5 * (f64(x) @ op) + 2.0 * f64(y0), dtype)


def test_dsd_empty_layout_scales_out(rng):
    data, layout, _ = make_weight(rng, 3, 2, 16, 0.0, np.float32)
    assert layout.nnzb == 0
    x = randn(rng, (5, 48), np.float32)
    y0 = randn(rng, (5, 32), np.float32)
    out = y0.copy()
    reference.dsd(x, data, layout, False, out, 1.0, 0.5)
    np.testing.assert_array_equal(out, 0.5 * y0)
    out[...] = np.nan
    reference.dsd(x, data, layout, False, out, 1.0, 0.0)
    np.testing.assert_array_equal(out, 0.0)


def test_dsd_no_rows(rng):
    data, layout, _ = make_weight(rng, 3, 2, 8, 1.0, np.float32)
    out = np.empty((0, 16), np.float32)
    assert reference.dsd(np.empty((0, 24), np.float32), data, layout, False, out, 1.0, 0.0) is out


def test_dsd_strided_rows(rng):
    """x with unit stride in its last axis but a row pitch larger than its width."""
    data, layout, w = make_weight(rng, 4, 3, 8, 0.5, np.float32)
    big = randn(rng, (9, 50), np.float32)
    x = big[::2, 5:37]
    out = np.empty((5, 24), np.float32)
    reference.dsd(x, data, layout, False, out, 1.0, 0.0)
    assert_close(out, f64(x) @ w, np.float32)


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16], ids=["f16", "bf16"])
def test_dsd_rounds_once(rng, dtype):
    """Half results are the float64 product rounded once (float32 accumulation), not a chain
    of half-precision roundings: all but rare ties equal the correctly rounded value."""
    data, layout, w = make_weight(rng, 8, 8, 16, 0.5, dtype)
    x = randn(rng, (64, 128), dtype)
    out = np.empty((64, 128), dtype)
    reference.dsd(x, data, layout, False, out, 1.0, 0.0)
    exact = (f64(x) @ w).astype(dtype)
    assert np.mean(out == exact) > 0.99


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16], ids=["f16", "bf16"])
def test_sddmm_rounds_once(rng, dtype):
    """alpha * (x.T @ dy) + beta * out is rounded to the dtype once, at the end: rounding the
    product (or alpha times it) first would miss the correctly rounded value far more often."""
    g0, layout, _ = make_weight(rng, 4, 4, 16, 0.5, dtype)
    x = randn(rng, (256, 64), dtype)
    dy = randn(rng, (256, 64), dtype)
    out = g0.copy()
    reference.sddmm(x, dy, layout, out, 0.3, 0.7)
    exact = (0.3 * sample_blocks(f64(x).T @ f64(dy), layout) + 0.7 * f64(g0)).astype(dtype)
    assert np.mean(out == exact) > 0.99


@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("bs", BLOCKS)
def test_sddmm(rng, bs, dtype, density):
    data, layout, _ = make_weight(rng, 4, 5, bs, density, dtype)
    m = 9
    x = randn(rng, (m, layout.shape[0]), dtype)
    dy = randn(rng, (m, layout.shape[1]), dtype)
    x_copy, dy_copy = x.copy(), dy.copy()
    out = np.full_like(data, np.nan)  # beta == 0: never read
    res = reference.sddmm(x, dy, layout, out, 1.0, 0.0)
    assert res is out
    assert_close(out, sample_blocks(f64(x).T @ f64(dy), layout), dtype)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("m", [0, 1, 2, 31])
def test_sddmm_alpha_beta(rng, m, dtype):
    g0, layout, _ = make_weight(rng, 6, 3, 8, 0.3, dtype)
    x = randn(rng, (m, 48), dtype)
    dy = randn(rng, (m, 24), dtype)
    out = g0.copy()
    reference.sddmm(x, dy, layout, out, 0.25, -1.0)
    ref = 0.25 * sample_blocks(f64(x).T @ f64(dy), layout) - f64(g0)
    assert_close(out, ref, dtype)


def test_sddmm_chunks(rng, monkeypatch):
    """Several chunks of blocks, the last one partial, give the same blocks."""
    data, layout, _ = make_weight(rng, 5, 7, 4, 1.0, np.float64)
    x = randn(rng, (10, 20), np.float64)
    dy = randn(rng, (10, 28), np.float64)
    whole = reference.sddmm(x, dy, layout, np.empty_like(data), 1.0, 0.0)
    monkeypatch.setattr(reference, "_SDDMM_CHUNK_ELEMENTS", 3 * 4 * 10)  # 3 blocks a chunk
    assert layout.nnzb % 3
    chunked = reference.sddmm(x, dy, layout, np.empty_like(data), 1.0, 0.0)
    np.testing.assert_array_equal(chunked, whole)
    assert_close(chunked, sample_blocks(x.T @ dy, layout), np.float64)


def test_sddmm_strided_operands(rng):
    _, layout, _ = make_weight(rng, 3, 4, 8, 0.5, np.float32)
    x = randn(rng, (40, 7), np.float32).T[:, 3:27]  # (7, 24), column stride != 1
    dy = randn(rng, (7, 70), np.float32)[:, 2:34]
    out = np.empty((layout.nnzb, 8, 8), np.float32)
    reference.sddmm(x, dy, layout, out, 1.0, 0.0)
    assert_close(out, sample_blocks(f64(x).T @ f64(dy), layout), np.float32)
