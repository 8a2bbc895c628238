"""The numpy kernel contract (`reference.dsd`, `reference.sddmm`) against float64 dense products.

Oracles are built from the mask and the rounded inputs in float64, independently of the code
under test. Tolerances are relative Frobenius errors: float32 accumulation plus one final
rounding to the dtype (unit roundoff 2**-11 for float16, 2**-8 for bfloat16). test_ops.py
checks the public products with the same inputs, oracle and tolerances (imported from here).
"""

import os
import threading
import time
import warnings
import zlib

import ml_dtypes
import numpy as np
import pytest

from cupy_bsparse import _cpu_pool, reference
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
    """(nbr, nbc) random bool mask; for 0 < density < 1 with an empty block-row and an empty
    block-column (where there is more than one) and at least one stored block."""
    mask = rng.random((nbr, nbc)) < density
    if 0 < density < 1:
        r, c = nbr // 2, nbc // 2
        if nbr > 1:
            mask[r, :] = False     # an empty block-row
        if nbc > 1:
            mask[:, c] = False     # an empty block-column
        if not mask.any():         # a test on a partial pattern needs a block to check
            mask[(r + 1) % nbr, (c + 1) % nbc] = True
    return mask


def make_weight(rng, nbr, nbc, bs, density, dtype):
    """(data, layout, dense float64 W) for a random mask."""
    mask = make_mask(rng, nbr, nbc, density)
    layout = BlockLayout.from_mask(mask, bs)
    data = rng.standard_normal((layout.nnzb, bs, bs)).astype(dtype)
    return data, layout, dense_of(data, layout)


def dense_of(data, layout):
    """The dense float64 (R, C) matrix of blocks ``data`` on ``layout``."""
    bs = layout.blocksize
    nbr, nbc = layout.block_shape
    grid = np.zeros((nbr, nbc, bs, bs))
    grid[np.nonzero(layout.toarray())] = data.astype(np.float64)
    return grid.transpose(0, 2, 1, 3).reshape(nbr * bs, nbc * bs)


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
    # with alpha and beta: alpha * (x @ W) + beta * y, rounded once at the end
    y0 = randn(rng, (64, 128), dtype)
    out = y0.copy()
    reference.dsd(x, data, layout, False, out, 0.3, 0.7)
    exact = (0.3 * (f64(x) @ w) + 0.7 * f64(y0)).astype(dtype)
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


@pytest.mark.parametrize("pool", [False, True], ids=["serial", "pool"])
@pytest.mark.parametrize("trans_w", [False, True])
@pytest.mark.parametrize("bs", [3, 8])
def test_pieces_and_threads(rng, monkeypatch, bs, trans_w, pool):
    """Work cut into many pieces (dsd: a few rows of one column; sddmm: one block), run in
    order or on the thread pool (threadpoolctl installed), gives the products of the float64
    oracle. The layout has a full block-row, a full block-column, an empty one of each and
    column lengths in several buckets. The pool leaves BLAS's thread count as it was."""
    if pool:
        threadpoolctl = pytest.importorskip("threadpoolctl")
        if _cpu_pool.cores() < 2:
            pytest.skip("one core: the products run in order")
        blas_threads = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    else:
        monkeypatch.setattr(_cpu_pool, "_blas", False)
    mask = rng.random((9, 11)) < 0.3
    mask[2, :], mask[:, 3] = True, True
    mask[5, :], mask[:, 7] = False, False
    layout = BlockLayout.from_mask(mask, bs)
    data = randn(rng, (layout.nnzb, bs, bs), np.float64)
    w = dense_of(data, layout)
    m = 13
    x = randn(rng, (m, layout.shape[1 if trans_w else 0]), np.float64)
    n = layout.shape[0 if trans_w else 1]
    whole = reference.dsd(x, data, layout, trans_w, np.empty((m, n)), 1.0, 0.0)
    dy = randn(rng, (m, layout.shape[1]), np.float64)
    xs = randn(rng, (m, layout.shape[0]), np.float64)
    g_whole = reference.sddmm(xs, dy, layout, np.empty_like(data), 1.0, 0.0)
    calls, threads = [], set()
    monkeypatch.setattr(reference, "_PIECE_BYTES", 2 * bs * bs * 8)   # a piece: 2 blocks' bytes
    monkeypatch.setattr(_cpu_pool, "MIN_WORK", 0)
    monkeypatch.setattr(_cpu_pool, "cores", lambda: 2)   # 10 columns: no cut along x's rows
    run = _cpu_pool.run

    def traced(tasks, macs):
        calls.append(len(tasks))
        run([lambda t=t: (threads.add(threading.current_thread().name), t()) for t in tasks], macs)
    monkeypatch.setattr(_cpu_pool, "run", traced)
    products = []
    matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a: (products.append(1), matmul(*a))[1])
    y = reference.dsd(x, data, layout, trans_w, np.full((m, whole.shape[1]), np.nan), 1.0, 0.0)
    monkeypatch.setattr(np, "matmul", matmul)
    n_cols = np.count_nonzero(mask.any(axis=1 if trans_w else 0))
    assert max(calls) == n_cols           # a piece per output block-column
    assert len(products) > 2 * n_cols     # each in several panels of x's rows
    calls.clear()
    g = reference.sddmm(xs, dy, layout, np.full_like(data, np.nan), 1.0, 0.0)
    assert max(calls) == layout.nnzb   # a piece per block
    assert_close(y, f64(x) @ (w.T if trans_w else w), np.float64)
    assert_close(g, sample_blocks(f64(xs).T @ f64(dy), layout), np.float64)
    np.testing.assert_allclose(y, whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, g_whole, rtol=1e-12, atol=1e-12)
    if pool:
        assert any(name.startswith("cupy_bsparse_cpu") for name in threads)
        assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()] == blas_threads
    else:
        assert threads == {threading.current_thread().name}


def test_sddmm_strided_operands(rng):
    _, layout, _ = make_weight(rng, 3, 4, 8, 0.5, np.float32)
    x = randn(rng, (40, 7), np.float32).T[:, 3:27]  # (7, 24), column stride != 1
    dy = randn(rng, (7, 70), np.float32)[:, 2:34]
    out = np.empty((layout.nnzb, 8, 8), np.float32)
    reference.sddmm(x, dy, layout, out, 1.0, 0.0)
    assert_close(out, sample_blocks(f64(x).T @ f64(dy), layout), np.float32)


def fork():
    """os.fork(), without Python 3.12+'s warning about forking a process with threads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def child_exit_code(pid, timeout=60):
    """The exit code of child ``pid``; the test fails (and the child is killed) if it has not
    exited within ``timeout`` seconds: a hang in the child."""
    for _ in range(int(timeout * 10)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung for {timeout} s")


def blockwise_dsd(x, data, layout, trans_w):
    """float64 x @ op(W) as a sum over the stored blocks only (as the kernels compute it: an
    Inf in x meets only stored blocks, never the zeros between them)."""
    bs = layout.blocksize
    rows, cols = np.nonzero(layout.toarray())
    n = layout.shape[0 if trans_w else 1]
    y = np.zeros((x.shape[0], n))
    for b, (r, c) in enumerate(zip(rows, cols)):
        src, dst = (c, r) if trans_w else (r, c)
        blk = f64(data[b]).T if trans_w else f64(data[b])
        y[:, dst * bs:(dst + 1) * bs] += f64(x[:, src * bs:(src + 1) * bs]) @ blk
    return y


@pytest.mark.parametrize("trans_w", [False, True])
def test_dsd_inf_nan_meet_only_stored_blocks(rng, trans_w):
    """Columns of unequal length are padded; the padding must not carry an Inf or NaN of x
    (or of a stored block) into a column that does not use it."""
    mask = np.zeros((6, 5), bool)
    # column lengths 1, 2, 2, 1, 2 and block-row lengths 4, 2, 1, 1, 0, 0: one bucket each way,
    # so the short ones are padded
    for r, c in [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 3), (0, 4), (3, 4)]:
        mask[r, c] = True
    layout = BlockLayout.from_mask(mask, 4)
    assert any(v is not None for *_, v in reference._dsd_plan(layout, trans_w))
    data = randn(rng, (layout.nnzb, 4, 4), np.float32)
    kin = layout.shape[1 if trans_w else 0]
    x = randn(rng, (3, kin), np.float32)
    x[0, 1] = np.inf                  # slab 0, used by every column
    x[1, 1 * 4 + 2] = np.nan          # slab 1, used by two columns
    data[0, 0, 0] = np.inf            # a stored block: its Inf reaches only its own outputs
    with np.errstate(invalid="ignore"):
        out = reference.dsd(x, data, layout, trans_w,
                            np.full((3, layout.shape[0 if trans_w else 1]), -1.0, np.float32),
                            1.0, 0.0)
        ref = blockwise_dsd(x, data, layout, trans_w)
    assert np.isinf(ref).any() and np.isnan(ref).any() and np.isfinite(ref).any()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    fin = np.isfinite(ref)
    assert_close(out[fin], ref[fin], np.float32)


@pytest.mark.parametrize("trans_w", [False, True])
def test_transposes_across_tiles(rng, trans_w):
    """Operands larger than a transpose tile (64 rows x 1024 columns) both ways, strided, with
    alpha and beta: every tile is written once, with the right values."""
    mask = rng.random((260, 3)) < 0.4
    if trans_w:
        mask = mask.T
    layout = BlockLayout.from_mask(mask, 4)
    data = randn(rng, (layout.nnzb, 4, 4), np.float64)
    w = dense_of(data, layout)
    kin, n = (w.shape[1], w.shape[0]) if trans_w else w.shape
    x = randn(rng, (2 * kin, 70), np.float64)[::2].T      # (70, kin), both strides odd
    whole = randn(rng, (70, 2 * n), np.float64)
    out = whole[:, ::2]
    y0 = out.copy()
    reference.dsd(x, data, layout, trans_w, out, 0.5, 2.0)
    assert_close(out, 0.5 * (x @ (w.T if trans_w else w)) + 2.0 * y0, np.float64)
    xs = randn(rng, (70, layout.shape[0]), np.float64)
    dy = randn(rng, (70, layout.shape[1]), np.float64)
    g = reference.sddmm(xs, dy, layout, np.full_like(data, np.nan), 1.0, 0.0)
    assert_close(g, sample_blocks(xs.T @ dy, layout), np.float64)


def test_pool_concurrent_calls_and_fork(rng, monkeypatch):
    """Pooled calls from several threads at once give the right products and leave BLAS's
    thread count as it was; a child forked afterwards gets a working pool of its own."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if _cpu_pool.cores() < 2 or not hasattr(os, "fork"):
        pytest.skip("needs two cores and fork")
    monkeypatch.setattr(_cpu_pool, "MIN_WORK", 0)
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    data, layout, w = make_weight(rng, 12, 10, 8, 0.5, np.float32)
    x = randn(rng, (40, layout.shape[0]), np.float32)
    ref = f64(x) @ w
    errors = []

    def work():
        for _ in range(10):
            y = reference.dsd(x, data, layout, False, np.empty((40, layout.shape[1]), np.float32),
                              1.0, 0.0)
            if np.linalg.norm(y - ref) > 1e-5 * np.linalg.norm(ref):
                errors.append(y)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()] == before
    pid = fork()
    if pid == 0:   # the child: exit 0 only if a pooled call is right
        ok = False
        try:
            y = reference.dsd(x, data, layout, False, np.empty((40, layout.shape[1]), np.float32),
                              1.0, 0.0)
            ok = np.linalg.norm(y - ref) <= 1e-5 * np.linalg.norm(ref)
        finally:
            os._exit(0 if ok else 1)
    assert child_exit_code(pid) == 0


def test_pool_describe(monkeypatch):
    """The bench's device line says whether products run a thread per core."""
    monkeypatch.setattr(_cpu_pool, "cores", lambda: 4)
    monkeypatch.setattr(_cpu_pool, "_blas", False)
    assert _cpu_pool.describe() == ("4 cores: products one after another, each threaded by "
                                    "BLAS; install threadpoolctl for a thread per core")
    monkeypatch.setattr(_cpu_pool, "_blas", object())
    assert _cpu_pool.describe() == "4 cores: a thread per core, BLAS at one thread each"
    monkeypatch.setattr(_cpu_pool, "cores", lambda: 1)
    assert _cpu_pool.describe() == "1 core"


@pytest.mark.parametrize("trans_w", [False, True])
def test_few_columns_are_cut_along_rows(rng, monkeypatch, trans_w):
    """Fewer column chunks than two per core: x's rows are cut too, so every core has work,
    and the product is unchanged."""
    mask = np.zeros((16, 2), bool)
    mask[:, 0], mask[3, 1] = True, True       # one long column, one short
    if trans_w:
        mask = mask.T
    layout = BlockLayout.from_mask(mask, 8)
    data = randn(rng, (layout.nnzb, 8, 8), np.float64)
    w = dense_of(data, layout)
    x = randn(rng, (300, layout.shape[1 if trans_w else 0]), np.float64)
    calls = []
    run = _cpu_pool.run
    monkeypatch.setattr(_cpu_pool, "run", lambda tasks, work: (calls.append(len(tasks)),
                                                             run(tasks, work)))
    monkeypatch.setattr(reference, "_PIECE_BYTES", 8 * 8 * 8)   # panels of 1 and 8 rows
    monkeypatch.setattr(_cpu_pool, "cores", lambda: 4)
    y = reference.dsd(x, data, layout, trans_w, np.full((300, 16), np.nan), 1.0, 0.0)
    assert max(calls) == 2 * 4                # 2 columns, each in 4 row ranges: 2 per core
    assert_close(y, x @ (w.T if trans_w else w), np.float64)


@pytest.fixture
def pool(monkeypatch):
    """The pool forced on (threadpoolctl and two cores needed): the threadpoolctl module."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if _cpu_pool.cores() < 2:
        pytest.skip("one core: no pool")
    monkeypatch.setattr(_cpu_pool, "MIN_WORK", 0)
    return threadpoolctl


def blas_threads(threadpoolctl):
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]


def test_pool_error_after_all_tasks_and_nested_calls(pool):
    """A task's exception is raised once the other tasks have finished; a task's own pooled
    call runs in order (no deadlock on the one-call lock); tasks see the caller's errstate."""
    done = []

    def bad():
        raise KeyError("bad task")

    def slow():
        time.sleep(0.3)
        done.append("slow")

    with pytest.raises(KeyError, match="bad task"):
        _cpu_pool.run([bad, slow], 1)
    assert done == ["slow"]
    inner = []
    _cpu_pool.run([lambda: _cpu_pool.run([lambda: inner.append(1)] * 3, 1), lambda: None], 1)
    assert inner == [1, 1, 1]
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        _cpu_pool.run([lambda: np.zeros(1) / np.zeros(1), lambda: None], 1)


def test_fork_during_a_pooled_call(pool):
    """A child forked while another thread is inside a pooled call (BLAS held to one thread)
    gets BLAS's threads back and a pool that works."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    before = blas_threads(pool)
    if max(before) < 2:
        pytest.skip("BLAS runs one thread already")
    inside, release = threading.Event(), threading.Event()

    def hold():
        inside.set()
        release.wait(30)
    caller = threading.Thread(target=lambda: _cpu_pool.run([hold, lambda: None], 1))
    caller.start()
    try:
        assert inside.wait(30)
        assert blas_threads(pool) != before   # held to one thread during the call
        pid = fork()
        if pid == 0:
            ok = False
            try:
                out = []
                _cpu_pool.run([lambda: out.append(1), lambda: out.append(2)], 1)
                ok = blas_threads(pool) == before and sorted(out) == [1, 2]
            finally:
                os._exit(0 if ok else 1)
    finally:
        release.set()
        caller.join()
    assert child_exit_code(pid) == 0
    assert blas_threads(pool) == before
