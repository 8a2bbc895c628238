"""GPU kernels against a float64 reference: every op, block size, dtype and transposition.

Tolerance rule (flash-attention's): the kernel's relative error against float64 may be at most
2x the error of a plain same-precision product (float32 accumulation of the same rounded inputs,
rounded once to the output dtype) plus a hair. TF32 has its own documented bound.
Outputs are poisoned with NaN before every kernel call, so unwritten elements fail.
"""
import math
import os
import zlib

import ml_dtypes
import numpy as np
import pytest

import cupy_bsparse as cb
from cupy_bsparse import layouts
from cupy_bsparse._specs import SDDMM_GROUPED_F32_VARIANTS, STREAM_TALL_SETS

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.gpu  # tests/conftest.py skips these without a usable GPU

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = {"f32": np.dtype(np.float32), "f16": np.dtype(np.float16), "bf16": BF16,
          "tf32": np.dtype(np.float32)}
BLOCKS = (8, 16, 32, 64)
# CUPY_BSPARSE_GPU_SUBSET=small keeps every op, dtype and block size but few shapes: the
# compute-sanitizer pass in .ci/gpu runs it.
_SMALL = os.environ.get("CUPY_BSPARSE_GPU_SUBSET") == "small"
MS = [7] if _SMALL else [1, 7, 64, 1000]
DENSITIES = [0.5] if _SMALL else [0.0, 0.01, 0.5, 1.0]
# TF32 rounds each operand to 10 mantissa bits (unit roundoff 2**-11 ~ 4.9e-4); documented in
# README as "relative error about 1e-3".
TF32_TOL = 3e-3
#: float32's floor: 3xTF32 (tf32x3.cuh) drops lo_a * lo_b and lo's bits below TF32, each up to
#: about 2^-22 of |a * b| and of either sign, so its norm-wise error is about 2^-21 whatever the
#: reduction length; cuBLAS's FFMA can read below that on a few short sums (the device read
#: 4.7e-7 against cuBLAS's 1.7e-7 on one 8 x 8 block of 4096-term sums, v21). Dropping one
#: cross term reads about 2^-12, far above.
F32X3_FLOOR = 2.0 ** -20


def _rng(request):
    # Fresh inputs per test, reproducible from the test id.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _mask(rng, nbr, nbc, density):
    """Random block mask; for 0 < density < 1 (and more than 2 x 2 blocks) with block-row 1
    and block-column 2 empty, and at least one stored block."""
    m = layouts.random(nbr, nbc, density, seed=int(rng.integers(2**31)))
    if 0 < density < 1 and nbr > 2 and nbc > 2:
        m[1, :] = False   # an empty block-row
        m[:, 2] = False   # an empty block-column
        if not m.any():   # a product over no block would re-run the density-0 case
            m[0, 0] = True
    return m


def _weight(rng, shape, bs, density, dtype):
    mask = _mask(rng, shape[0] // bs, shape[1] // bs, density)
    assert mask.any() or density == 0 or min(mask.shape) <= 2
    return _weight_on(rng, mask, bs, dtype)


def _weight_on(rng, mask, bs, dtype):
    """(W on the CPU with random values on ``mask``'s blocks, W as float64 dense)."""
    dense = rng.standard_normal((mask.shape[0] * bs, mask.shape[1] * bs)).astype(dtype)
    w = cb.BlockSparseMatrix.from_dense(dense, bs, mask=mask)
    return w, w.toarray().astype(np.float64)


@pytest.fixture
def grouped_tma(monkeypatch):
    """dsd_grouped_tma.cu forced (skips below sm_90)."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_grouped_tma.cu"]:
        pytest.skip("the TMA kernels need sm_90")
    monkeypatch.setattr(_specs, "DSD_KERNEL", "grouped_tma")


def _baseline_err(a64, b64, dtype, ref, sample=None):
    """Relative error of a plain same-precision product: cuBLAS (``cupy.matmul``) in ``dtype``
    for float16/float32; for bfloat16, which cupy.matmul lacks, a float32 product of the
    bfloat16 inputs rounded once to bfloat16."""
    if dtype == BF16 or _SMALL:
        # (also under compute-sanitizer: racecheck reports hazards inside cuBLAS's kernels)
        prod = (a64.astype(dtype).astype(np.float32) @ b64.astype(dtype).astype(np.float32)
                ).astype(dtype)
    else:
        prod = cupy.matmul(cupy.asarray(a64.astype(dtype)), cupy.asarray(b64.astype(dtype))).get()
    prod = prod.astype(np.float64)
    if sample is not None:
        prod = sample(prod)
    return _rel(prod, ref)


def _rel(out, ref):
    den = np.linalg.norm(ref)
    return np.linalg.norm(out - ref) / den if den else np.linalg.norm(out)


def _check(out, ref, base, kind):
    out = np.asarray(out, dtype=np.float64)
    assert not np.isnan(out).any(), "unwritten (poisoned) or NaN outputs"
    if not np.any(ref):
        assert not np.any(out), "expected exact zeros"
        return
    err = _rel(out, ref)
    limit = (TF32_TOL if kind == "tf32" else
             max(2 * base, F32X3_FLOOR if kind == "f32" else 0.0) + 1e-7)
    assert err <= limit, f"relative error {err:.3g} > {limit:.3g} (plain product: {base:.3g})"


def _nan(shape, dtype):
    return cupy.asarray(np.full(shape, np.nan, dtype=dtype))


def _dsd_case(rng, shape, bs, density, dtype, M, trans):
    """A random W of ``shape`` on the GPU, op(W) (W.T if ``trans``), x (M, op(W) rows) in host
    memory with its float64 copy, float64 op(W) and the float64 reference x @ op(W)."""
    w, w64 = _weight(rng, shape, bs, density, dtype)
    op64 = w64.T if trans else w64
    x = rng.standard_normal((M, op64.shape[0])).astype(dtype)
    x64 = x.astype(np.float64)
    wg = w.to_gpu()
    return wg, wg.T if trans else wg, x, x64, op64, x64 @ op64


def _matmul_offset_x(x, wop, n_out, allow_tf32=False):
    """x @ wop twice with x a view at a 16-byte offset inside a wider GPU buffer (its own
    tensor map), each time into fresh poisoned outputs: (x's view, the last output, the two
    outputs' bytes on the host). The buffer (x and its margins) and W's blocks are checked
    unchanged."""
    M, dtype = x.shape[0], x.dtype
    wide = cupy.zeros((M, x.shape[1] + 24), dtype=dtype)
    wide[:, 8:8 + x.shape[1]] = cupy.asarray(x)
    xg = wide[:, 8:8 + x.shape[1]]
    before, data = wide.view(np.uint8).get(), wop._data.view(np.uint8).get()
    outs = []
    for _ in range(2):
        out = _nan((M, n_out), dtype)
        cb.matmul(xg, wop, out=out, allow_tf32=allow_tf32)
        outs.append(out.view(np.uint8).get())
    assert np.array_equal(wide.view(np.uint8).get(), before), "x or its margins changed"
    assert np.array_equal(wop._data.view(np.uint8).get(), data), "W's blocks changed"
    return xg, out, outs


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", list(DTYPES))
@pytest.mark.parametrize("bs", BLOCKS)
def test_x_times_w(request, bs, kind, trans, M, density):
    rng = _rng(request)
    dtype = DTYPES[kind]
    shape = (bs * 12, bs * 9)  # non-square W
    wg, wop, x, x64, op64, ref = _dsd_case(rng, shape, bs, density, dtype, M, trans)
    out = _nan((M, op64.shape[1]), dtype)
    res = cb.matmul(cupy.asarray(x), wop, out=out, allow_tf32=(kind == "tf32"))
    assert res is out
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)


@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", list(DTYPES))
@pytest.mark.parametrize("bs", BLOCKS)
def test_x_times_w_large_m(request, bs, kind, trans):
    rng = _rng(request)
    dtype = DTYPES[kind]
    M = 4096
    w, w64 = _weight(rng, (256, 192), bs, 0.5, dtype)
    op64 = w64.T if trans else w64
    x = rng.standard_normal((M, op64.shape[0])).astype(dtype)
    ref = x.astype(np.float64) @ op64
    wop = w.to_gpu().T if trans else w.to_gpu()
    out = _nan((M, op64.shape[1]), dtype)
    cb.matmul(cupy.asarray(x), wop, out=out, allow_tf32=(kind == "tf32"))
    _check(out.get(), ref, _baseline_err(x.astype(np.float64), op64, dtype, ref), kind)


@pytest.mark.parametrize("trans", [False, True], ids=["Wx", "WTx"])
@pytest.mark.parametrize("N", [7] if _SMALL else [1, 7, 300])
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("bs", BLOCKS)
def test_w_times_x(request, bs, kind, N, trans):
    rng = _rng(request)
    dtype = DTYPES[kind]
    w, w64 = _weight(rng, (bs * 5, bs * 7), bs, 0.4, dtype)
    op64 = w64.T if trans else w64
    x = rng.standard_normal((op64.shape[1], N)).astype(dtype)
    ref = op64 @ x.astype(np.float64)
    wop = w.to_gpu().T if trans else w.to_gpu()
    res = wop @ cupy.asarray(x)
    assert isinstance(res, cupy.ndarray) and res.shape == ref.shape and res.dtype == dtype
    _check(res.get(), ref, _baseline_err(op64, x.astype(np.float64), dtype, ref), kind)
    # into a poisoned out (C order: through the launcher's temporary; F order: in place)
    for order in ("C", "F"):
        out = cupy.asarray(np.full(ref.shape, np.nan, dtype), order=order)
        assert cb.matmul(wop, cupy.asarray(x), out=out) is out
        assert np.array_equal(np.ascontiguousarray(out.get()).view(np.uint8),
                              res.get().view(np.uint8))


def _sddmm_case(rng, shape, bs, M, density, dtype, blocks=None):
    """A random W layout of ``shape`` (or the block mask ``blocks``), x (M, R), dy (M, C), the
    element mask of W's blocks and the float64 reference of sddmm(x.T, dy) on that mask."""
    w, _ = (_weight(rng, shape, bs, density, dtype) if blocks is None
            else _weight_on(rng, blocks, bs, dtype))
    x = rng.standard_normal((M, shape[0])).astype(dtype)
    dy = rng.standard_normal((M, shape[1])).astype(dtype)
    mask = np.kron(w.layout.toarray(), np.ones((bs, bs), bool))
    ref = np.where(mask, x.astype(np.float64).T @ dy.astype(np.float64), 0.0)
    return w, x, dy, mask, ref


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("M", [7, 200] if _SMALL else [1, 7, 64, 1000, 4096])
@pytest.mark.parametrize("kind", list(DTYPES))
@pytest.mark.parametrize("bs", BLOCKS)
def test_sddmm(request, bs, kind, M, density):
    dtype = DTYPES[kind]
    w, x, dy, mask, ref = _sddmm_case(_rng(request), (bs * 6, bs * 10), bs, M, density, dtype)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    wg = w.to_gpu()
    out = cb.BlockSparseMatrix.from_layout(
        wg.layout, cupy.asarray(np.full((w.nnzb, bs, bs), np.nan, dtype)))
    res = cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), wg, out=out, allow_tf32=(kind == "tf32"))
    assert res is out
    got = res.toarray().get().astype(np.float64)
    assert not np.isnan(res.data.get().astype(np.float64)).any()
    base = _baseline_err(x64.T, dy64, dtype, ref, sample=lambda p: np.where(mask, p, 0.0))
    _check(got, ref, base, kind)


@pytest.mark.parametrize("density", [1.0] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [7] if _SMALL else [1, 7, 100, 1000])
@pytest.mark.parametrize("kernel", ["column", "grouped", "grouped_tma"])
@pytest.mark.parametrize("kind", ["f16", "bf16", "tf32", "f32"])
@pytest.mark.parametrize("bs", [8, 16])
def test_sddmm_both_kernels(request, monkeypatch, bs, kind, kernel, M, density):
    """sddmm.cu, sddmm_grouped.cu (float32 as 3xTF32) and sddmm_grouped_tma.cu forced, on
    a layout with several groups (the last one partial, and past the last dy box), several row
    runs per group and, at density 1, items cut at their block limit."""
    from cupy_bsparse import _gpu_ops, _specs

    did = _specs.dtype_id(DTYPES[kind], kind == "tf32")
    if kernel == "grouped" and not _specs.sddmm_grouped_supported(bs, did):
        pytest.skip("sddmm_grouped.cu serves bs 8 and 16 only")
    if kernel == "grouped_tma" and not _specs.sddmm_grouped_tma_supported(bs, did):
        pytest.skip("sddmm_grouped_tma.cu serves 16-bit bs 16, and bs 8 but for TF32")
    if kernel == "grouped_tma" and _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < 90:
        pytest.skip("sddmm_grouped_tma.cu needs sm_90")
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", kernel)
    assert _specs.sddmm_kernel(bs, did, M) == kernel
    dtype = DTYPES[kind]
    w, x, dy, mask, ref = _sddmm_case(_rng(request), (bs * 90, bs * 70), bs, M, density, dtype)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    wg = w.to_gpu()
    outs = []
    for _ in range(2):
        out = cb.BlockSparseMatrix.from_layout(
            wg.layout, cupy.asarray(np.full((w.nnzb, bs, bs), np.nan, dtype)))
        cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), wg, out=out, allow_tf32=(kind == "tf32"))
        outs.append(out.data.view(np.uint8).get())
    got = out.toarray().get().astype(np.float64)
    assert not np.isnan(out.data.get().astype(np.float64)).any()
    base = _baseline_err(x64.T, dy64, dtype, ref, sample=lambda p: np.where(mask, p, 0.0))
    _check(got, ref, base, kind)
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("edges", [False, True])
@pytest.mark.parametrize("kernel,bs,M", [("grouped", 8, 100), ("tall", 16, 1500)] if _SMALL else
                         [("grouped", 8, m) for m in (1, 7, 100, 1000)]
                         + [("tall", 16, m) for m in (100, 1500)] + [("tall", 32, 1500)])
def test_sddmm_f32_redo(request, monkeypatch, kernel, bs, M, edges, beta):
    """TF32_REDO (the 3xTF32 split without its clamp, the sums again with it where one is NaN)
    on sddmm_grouped.cu's float32 bs 8 pairs and sddmm_tall.cu's float32 mma.sync consumers
    (bs 16 at M = 1500: two 1024-row chunks in one launch): bit for bit the clamped kernel's blocks, on
    random inputs and on inputs with +-Inf, NaN and values that round past TF32's largest (|v|
    >= 0x7f7ff000) in a few x and dy columns, so that some CTAs take the second pass and the
    others do not; beta 0 on poisoned outputs and beta 1 on finite ones. Without the second
    pass an Inf's sums would be NaN, not the clamped kernel's +-Inf, and the comparison fails."""
    from cupy_bsparse import _gpu_ops, _specs

    dtype = DTYPES["f32"]
    if kernel == "tall" and _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < 90:
        pytest.skip("sddmm_tall.cu needs sm_90")
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", kernel)
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "0")
    rng = _rng(request)
    w, x, dy, mask, ref = _sddmm_case(rng, (bs * 90, bs * 70), bs, M, 0.3, dtype)
    if edges:   # x's first pick an Inf (clamped: +-Inf sums; unclamped: NaN), the rest any
        vals = np.array([np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38], np.float32)
        vals = np.concatenate([vals, np.array([0x7F7FF000, 0xFF7FF000], np.uint32).view(np.float32)])
        for a in (x, dy):
            cols = rng.choice(a.shape[1], 3, replace=False)
            pick = rng.choice(vals, cols.size)
            if a is x:
                pick[0] = np.inf
            a[rng.integers(0, M, cols.size), cols] = pick
    wg = w.to_gpu()
    init = (np.full((w.nnzb, bs, bs), np.nan, dtype) if beta == 0 else
            rng.standard_normal((w.nnzb, bs, bs)).astype(dtype))
    xg, dyg = cupy.asarray(x), cupy.asarray(dy)

    def run(redo):
        monkeypatch.setattr(_specs, "TF32_REDO", redo)
        _gpu_ops._launches.clear()
        try:
            out = cb.BlockSparseMatrix.from_layout(wg.layout, cupy.asarray(init))
            cb.sddmm(xg.T, dyg, wg, out=out, beta=beta)
            specs = [h[3] for k, h in _gpu_ops._launches.items() if k[0] == "sddmm"]
            assert specs and all(sp.get("TF32_REDO", 0) == (redo == "1") for sp in specs), specs
            return out.data.get()
        finally:
            _gpu_ops._launches.clear()

    got, clamped = run("1"), run("0")
    assert np.array_equal(got.view(np.uint32), clamped.view(np.uint32))
    assert np.array_equal(xg.get().view(np.uint32), x.view(np.uint32))
    assert np.array_equal(dyg.get().view(np.uint32), dy.view(np.uint32))
    if edges:   # the edge values reached some sums, as non-finite ones
        assert (~np.isfinite(got)).any()
    elif beta == 0:
        dense = cb.BlockSparseMatrix.from_layout(w.layout, got).toarray().astype(np.float64)
        base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                             sample=lambda p: np.where(mask, p, 0.0))
        _check(dense, ref, base, "f32")


@pytest.mark.parametrize("M", [100] if _SMALL else [1, 7, 100, 1000])
@pytest.mark.parametrize("knobs", SDDMM_GROUPED_F32_VARIANTS)
def test_sddmm_grouped_f32_variants(request, monkeypatch, knobs, M):
    """sddmm_grouped.cu's float32 bs 8 variants (SDDMM_GROUPED_F32_VARIANTS, probes/p53.py,
    p56.py): bit for bit the default spec's blocks (the same steps and sums; TPAIRS other than
    the default's sums in another order: the same non-finite elements, the
    finite ones checked against float64; a variant that is the default is skipped), on
    poisoned outputs, with an Inf in x (the redo pass taken) and without."""
    from cupy_bsparse import _gpu_ops, _specs

    bs, dtype = 8, DTYPES["f32"]
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "grouped")
    rng = _rng(request)
    w, x, dy, mask, ref = _sddmm_case(rng, (bs * 90, bs * 70), bs, M, 0.3, dtype)
    wg = w.to_gpu()
    orig = _specs.sddmm_grouped_spec
    base = dict(orig(bs, _specs._F32X3, M))
    if all(base.get(k, 0) == v for k, v in knobs.items()):
        pytest.skip("the variant is the default spec")
    reordered = knobs.get("TPAIRS", base.get("TPAIRS", 0)) != base.get("TPAIRS", 0)

    def run(xv, spec_fn):
        monkeypatch.setattr(_specs, "sddmm_grouped_spec", spec_fn)
        _gpu_ops._launches.clear()
        try:
            out = cb.BlockSparseMatrix.from_layout(
                wg.layout, cupy.asarray(np.full((w.nnzb, bs, bs), np.nan, dtype)))
            cb.sddmm(cupy.asarray(xv).T, cupy.asarray(dy), wg, out=out)
            spec = _gpu_ops._sddmm_launch("grouped", bs, 0, M)[3]
            assert all(spec.get(k) == v for k, v in knobs.items()) == (spec_fn is not orig)
            return out.data.get().view(np.uint32)
        finally:
            _gpu_ops._launches.clear()

    def variant(*a, **k):
        return _specs.spec_with(orig(*a, **k), knobs)

    x_inf = x.copy()
    x_inf[rng.integers(0, M), rng.integers(0, x.shape[1])] = np.inf
    for xv in (x, x_inf):
        a, b = run(xv, variant), run(xv, orig)
        if reordered:
            af, bf = a.view(np.float32), b.view(np.float32)
            assert np.array_equal(np.isnan(af), np.isnan(bf))
            assert np.array_equal(np.where(np.isinf(af), af, 0), np.where(np.isinf(bf), bf, 0))
            assert (xv is x) == np.isfinite(af).all()
        else:
            assert np.array_equal(a, b)
    got = cb.BlockSparseMatrix.from_layout(w.layout, run(x, variant).view(np.float32))
    base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                         sample=lambda p: np.where(mask, p, 0.0))
    _check(got.toarray().astype(np.float64), ref, base, "f32")
    # alpha and beta (TPAIRS: the transposed tiles' own stores read the old blocks)
    init = rng.standard_normal((w.nnzb, bs, bs)).astype(dtype)
    monkeypatch.setattr(_specs, "sddmm_grouped_spec", variant)
    _gpu_ops._launches.clear()
    try:
        acc = cb.BlockSparseMatrix.from_layout(wg.layout, cupy.asarray(init))
        cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), wg, out=acc, alpha=2.0, beta=0.5)
        got = cb.BlockSparseMatrix.from_layout(w.layout, acc.data.get()).toarray()
    finally:
        _gpu_ops._launches.clear()
    old = cb.BlockSparseMatrix.from_layout(w.layout, init).toarray().astype(np.float64)
    _check(got.astype(np.float64), 2.0 * ref + 0.5 * old, base, "f32")


@pytest.mark.parametrize("M", [100] if _SMALL else [7, 1000])
@pytest.mark.parametrize("case", [(8, "f32", "grouped", False), (8, "f32", "grouped", True),
                                  (16, "f16", "grouped", None), (16, "f16", "grouped_tma", None),
                                  (8, "bf16", "grouped_tma", None)])
def test_sddmm_grouped_tail(request, monkeypatch, case, M):
    """SDDMM_GROUPED_TAIL (v53): the grouped kernels' last two waves of items launched longest
    first give the blocks of the launch in group order bit for bit (float32 bs 8 with and
    without TPAIRS, 16-bit bs 16 on both grouped kernels, bf16 bs 8 pairs on the TMA one), on
    poisoned outputs; the tail reaches the plan."""
    from cupy_bsparse import _gpu_ops, _specs, _work_lists

    bs, kind, kernel, two_way = case
    if kernel == "grouped_tma" and _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < 90:
        pytest.skip("sddmm_grouped_tma.cu needs sm_90")
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", kernel)
    if two_way is not None:
        monkeypatch.setattr(_specs, "TWO_WAY_PAIRS", "1" if two_way else "0")
    assert _specs.sddmm_kernel(bs, _specs.dtype_id(DTYPES[kind], False), M) == kernel
    dtype = DTYPES[kind]
    w, x, dy, mask, ref = _sddmm_case(_rng(request), (bs * 90, bs * 70), bs, M, 0.3, dtype)
    wg = w.to_gpu()
    tails, outs, orders = [], [], []
    plan = _work_lists.sddmm_grouped_plan

    def spy(layout, spec, tail=0):
        tails.append(tail)
        got = plan(layout, spec, tail)
        orders.append(got[0].get())
        return got

    monkeypatch.setattr(_work_lists, "sddmm_grouped_plan", spy)
    for value in ("0", "1"):
        monkeypatch.setattr(_specs, "SDDMM_GROUPED_TAIL", value)
        _gpu_ops._launches.clear()
        out = cb.BlockSparseMatrix.from_layout(
            wg.layout, cupy.asarray(np.full((w.nnzb, bs, bs), np.nan, dtype)))
        cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), wg, out=out)
        outs.append(out.data.view(np.uint8).get())
    assert len(tails) == 2 and tails[0] == 0 and tails[1] >= 2
    # the plan's last items longest first (here all of them: fewer than two waves), the same
    # items as in group order
    n = len(orders[1])
    k = min(tails[1], n)
    count = orders[1][n - k:, 2] - orders[1][n - k:, 1]
    assert np.array_equal(orders[1][:n - k], orders[0][:n - k]) and (np.diff(count) <= 0).all()
    assert sorted(map(tuple, orders[0].tolist())) == sorted(map(tuple, orders[1].tolist()))
    assert np.array_equal(outs[0], outs[1])
    got = cb.BlockSparseMatrix.from_layout(w.layout, outs[1].view(dtype)).toarray()
    base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                         sample=lambda p: np.where(mask, p, 0.0))
    _check(got.astype(np.float64), ref, base, kind)


# sddmm_stream.cu: every reduction tile size (BK 16, 32, 64); sddmm_tall.cu: M past a tile
# boundary of BK = 16, 32 and 64, one step or several (float32 bs 16 has its own spec up to
# M = 64, 16-bit bs 32 its 2-stage ring above M = 1024); sddmm_grouped_tma.cu (bs 16, and bs 8 in pairs): one step, several, and the items of
# M > 512.
_SDDMM_TMA_CASES = ([("stream", 7), ("tall", 100), ("grouped_tma", 100)] if _SMALL else
                    [("stream", m) for m in (1, 7, 16, 17, 33, 64)] +
                    [("tall", m) for m in (1, 33, 65, 100, 257, 1500)] +
                    [("grouped_tma", m) for m in (1, 33, 100, 1000)])


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("density", [1.0] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("kernel,M", _SDDMM_TMA_CASES)
@pytest.mark.parametrize("kind", ["f16", "bf16", "f32"])
@pytest.mark.parametrize("bs", [8, 16, 32, 64])
def test_sddmm_tma_kernels(request, monkeypatch, bs, kind, kernel, M, density, beta):
    """sddmm_stream.cu, sddmm_tall.cu (16-bit bs 32/64, float32 bs 16-64 as 3xTF32) and
    sddmm_grouped_tma.cu (16-bit bs 16; bs 8 in pairs) forced (TMA copies): rows past M
    zero-filled by the TMA, block-rows cut into several segments or row runs (and a last one
    with fewer blocks than a CTA takes), x and dy as views at a 16-byte offset inside wider
    buffers; 16-bit stream blocks written by TMA tile stores (beta = 0) or by each thread
    (beta = 1, accumulating into the gradient); exact to the tolerance, every block written,
    bitwise repeatable."""
    _sddmm_tma_case(request, monkeypatch, bs, kind, kernel, M, density, beta)


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("nb", [8, 4, 2])
@pytest.mark.parametrize("M", [33, 513] if _SMALL else [33, 513, 1500])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_sddmm_tall_segment_sizes(request, monkeypatch, kind, M, nb, beta):
    """16-bit bs 64 wgrad on sddmm_tall.cu in each segment size the launcher can pick (on
    wgmma NB 8, a warpgroup for two blocks, or 4 or 2; on mma.sync 4 or 2), forced through
    ``_specs.sddmm_tall_segment_size``, which it asks once per layout, as
    test_sddmm_tma_kernels checks the default: every block written, exact to the tolerance."""
    from cupy_bsparse import _gpu_ops, _specs

    dev = cupy.cuda.runtime.getDevice()
    if _gpu_ops._arch(dev) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("sddmm_tall.cu needs sm_90")
    choices = _specs.sddmm_tall_nb_choices(64, 1, _gpu_ops._wgmma(dev), M=M)
    if nb not in choices:
        pytest.skip(f"segments of {nb} are not among {choices} here")
    if len(choices) == 1:         # the launcher asks nothing: its spec's default
        assert dict(_specs.sddmm_tall_spec(64, 1, M, _gpu_ops._wgmma(dev)))["NB"] == nb
    asked = []

    def force(offered, count):
        asked.append((offered, [count(n) for n in offered]))
        return nb

    monkeypatch.setattr(_specs, "sddmm_tall_segment_size", force)
    _gpu_ops._launches.clear()
    try:
        _sddmm_tma_case(request, monkeypatch, 64, kind, "tall", M, 0.3, beta)
        spec = _gpu_ops._sddmm_launch("tall", 64, _specs.dtype_id(DTYPES[kind]), M, nb)[3]
    finally:
        _gpu_ops._launches.clear()
    assert spec["NB"] == nb and spec.get("BPW", 1) == (2 if nb == 8 else 1)
    assert len(asked) == (len(choices) > 1) and all(a[0] == choices for a in asked)
    assert all(seg > 0 and res > 0 for a in asked for seg, res in a[1])


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("bs", [32, 64])
@pytest.mark.parametrize("M", [513] if _SMALL else [100, 513, 1500])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_sddmm_tall_full_segments(request, monkeypatch, kind, M, bs, beta):
    """16-bit sddmm_tall.cu on the full cut (``_specs.TALL_EVEN_SEGMENTS`` off: a block-row of
    9 blocks in segments of 8 and 1 at NB 8, not the default's 5 and 4), largest first, as
    test_sddmm_tma_kernels checks the default: every block written, exact to the tolerance."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("sddmm_tall.cu needs sm_90")
    monkeypatch.setattr(_specs, "TALL_EVEN_SEGMENTS", False)
    _sddmm_tma_case(request, monkeypatch, bs, kind, "tall", M, 0.3, beta)


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("layout", ["band", "random", "dense", "odd", "odd_cols"])
@pytest.mark.parametrize("M", [100] if _SMALL else [65, 100, 1500])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_sddmm_coarse(request, monkeypatch, kind, M, layout, beta):
    """The 16-bit bs 32 wgrad coarsened 2 x 2 (COARSE_WGRAD "1"): the bs 64 wgrad on the coarse
    layout, then coarse_blocks.cu's copy out of each quadrant (adding beta * out, rounded once
    more, or never reading a NaN-poisoned out at beta 0), as test_sddmm_tma_kernels checks the
    segments, on ``_coarse_blocks``' layouts (the odd ones run on the segments)."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("the TMA kernels need sm_90")
    _sddmm_tma_case(request, monkeypatch, 32, kind, "tall", M, None, beta,
                    _coarse_blocks(layout), coarse="1")


def _offset_wgrad(w, x, dy, mask, ref, kind, beta, each=None, alpha=1.0):
    """alpha * sddmm(x^T, dy) on host W ``w`` (on the GPU; returned) with x and dy as views 8
    elements into wider buffers, twice: into a NaN-poisoned out (beta 0) or accumulating into
    random blocks (beta 1); x, dy (and margins) and W unchanged, against the float64 ``ref``
    (the element ``mask`` of W's blocks), bitwise repeatable. ``each``: called after each run."""
    dtype, bs, M = DTYPES[kind], w.layout.blocksize, x.shape[0]
    wg = w.to_gpu()
    views, wides = [], []
    for a in (x, dy):
        wide = cupy.zeros((M, a.shape[1] + 16), dtype=dtype)
        wide[:, 8:8 + a.shape[1]] = cupy.asarray(a)
        views.append(wide[:, 8:8 + a.shape[1]])
        wides.append(wide)
    before = [v.view(np.uint8).get() for v in wides + [wg._data]]
    g0 = np.random.default_rng(1).standard_normal((w.nnzb, bs, bs)).astype(dtype)
    start = g0 if beta else np.full((w.nnzb, bs, bs), np.nan, dtype)
    outs = []
    for _ in range(2):
        out = cb.BlockSparseMatrix.from_layout(wg.layout, cupy.asarray(start))
        cb.sddmm(views[0].T, views[1], wg, out=out, alpha=alpha, beta=beta)
        if each is not None:
            each()
        outs.append(out.data.view(np.uint8).get())
    for v, b in zip(wides + [wg._data], before):
        assert np.array_equal(v.view(np.uint8).get(), b)
    got = out.toarray().get().astype(np.float64)
    if beta:
        g0_dense = cb.BlockSparseMatrix.from_layout(w.layout, g0).toarray().astype(np.float64)
        assert _rel(got, alpha * ref + g0_dense) < ACCUM_TOL[kind]
    else:
        base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                             sample=lambda p: np.where(mask, p, 0.0))
        _check(got / alpha, ref, base, kind)
    assert np.array_equal(outs[0], outs[1])
    return wg


def _coarse_spy(monkeypatch, want):
    """A check, for ``_offset_wgrad``'s ``each``, that the last call ran the coarse wgrad iff
    ``want`` (a spy on ``_gpu_ops._coarse_sddmm``)."""
    from cupy_bsparse import _gpu_ops

    ran = []
    orig = _gpu_ops._coarse_sddmm
    monkeypatch.setattr(_gpu_ops, "_coarse_sddmm", lambda *a: ran.append(1) or orig(*a))

    def each():
        assert bool(ran) == want
        ran.clear()
    return each


def _coarse_case(request, monkeypatch, bs, kind, M, blocks, beta, want, alpha=1.0):
    """``_offset_wgrad`` on W of mask ``blocks``, whose wgrad runs coarsened iff ``want``
    (``_coarse_spy``). Returns W on the GPU."""
    shape = (bs * blocks.shape[0], bs * blocks.shape[1])
    w, x, dy, mask, ref = _sddmm_case(_rng(request), shape, bs, M, None, DTYPES[kind], blocks)
    return _offset_wgrad(w, x, dy, mask, ref, kind, beta, _coarse_spy(monkeypatch, want), alpha)


def _coarse_blocks(layout):
    """A block mask of 40 x 30 blocks with an empty block-row and block-column: "band" (full
    2 x 2 groups, as a small-world layout has), "random" (d = 0.3: groups of one or two blocks
    mostly), "dense", "diagonal" (groups of at most 2); "odd" / "odd_cols": the band on
    41 x 30 / 40 x 31 blocks, which cannot be coarsened."""
    nbr, nbc = {"odd": (41, 30), "odd_cols": (40, 31)}.get(layout, (40, 30))
    rows, cols = np.arange(nbr)[:, None], np.arange(nbc)[None, :]
    blocks = {"dense": np.ones((nbr, nbc), bool), "diagonal": rows == cols,
              "random": _mask(np.random.default_rng(3), nbr, nbc, 0.3)}.get(layout)
    blocks = np.abs(rows - cols) < 4 if blocks is None else blocks
    blocks[5, :] = False
    blocks[:, 7] = False
    return blocks


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("layout", ["band", "random", "dense", "odd", "odd_cols"])
@pytest.mark.parametrize("M", [100] if _SMALL else [1, 65, 1500])
def test_sddmm_coarse_f32(request, monkeypatch, M, layout, beta):
    """float32 bs 8's wgrad coarsened 2 x 2 (COARSE_WGRAD "1"): bs 16's sddmm_tall.cu (3xTF32)
    on the coarse layout, then coarse_blocks.cu's copy, on ``_coarse_blocks``' layouts (the
    odd ones run uncoarsened), alpha -0.5 with beta 1 (2 with beta 0)."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("the coarse wgrad runs on sm_90")
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "1")
    _coarse_case(request, monkeypatch, 8, "f32", M, _coarse_blocks(layout), beta,
                 not layout.startswith("odd"), -0.5 if beta else 2.0)


@pytest.mark.parametrize("bs,kind", [(32, "f16"), (32, "bf16"), (8, "f32"), (16, "f32")])
def test_sddmm_coarse_transposed(request, monkeypatch, bs, kind):
    """The coarse wgrad into a transposed view (``sddmm(dy^T, x, W.T, out=G.T)``, the gradient
    of W.T stored as W's): the base layout's blocks, coarsened, against float64."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("the coarse wgrad runs on sm_90")
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "1")
    dtype, M = DTYPES[kind], 100
    w, x, dy, mask, ref = _sddmm_case(_rng(request), (bs * 40, bs * 30), bs, M, None, dtype,
                                      _coarse_blocks("band"))
    wg = w.to_gpu()
    each = _coarse_spy(monkeypatch, True)
    out = cb.BlockSparseMatrix.from_layout(
        wg.layout, cupy.full((w.nnzb, bs, bs), np.nan, dtype)).T
    res = cb.sddmm(cupy.asarray(dy).T, cupy.asarray(x), wg.T, out=out)
    each()
    assert res is out
    base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                         sample=lambda p: np.where(mask, p, 0.0))
    _check(res.toarray().get().astype(np.float64), ref.T, base, kind)


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("least", [2, 3, 4])
@pytest.mark.parametrize("layout", ["band", "random", "dense", "diagonal"])
@pytest.mark.parametrize("bs,kind", [(32, "f16"), (32, "bf16"), (8, "f32"), (16, "f32")])
def test_sddmm_coarse_hybrid(request, monkeypatch, bs, kind, layout, least, beta):
    """The hybrid coarse wgrad (COARSE_WGRAD "1", a rule's ``least`` patched above 1): 2 x 2
    groups of at least ``least`` stored blocks on the 2 bs wgrad, the others on the direct
    kernel into scratch, both copied out by coarse_blocks.cu; float32 bs 16 (onto bs 32) at
    least 2 and 3 too. M = 100, alpha -0.5 with beta 1. The diagonal W at least 3 / 4
    has no coarse block: its plan is built and the call runs direct."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("the coarse wgrad runs on sm_90")
    did = _specs.dtype_id(DTYPES[kind])
    monkeypatch.setitem(_specs.COARSE_WGRAD_RULES, (bs, did),
                        (_specs.CoarseRule(2.0, least),))
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "1")
    blocks = _coarse_blocks(layout)
    groups = blocks.reshape(20, 2, 15, 2).sum(axis=(1, 3))
    want = bool((groups >= least).any())
    wg = _coarse_case(request, monkeypatch, bs, kind, 100, blocks, beta, want,
                      -0.5 if beta else 1.0)
    plan = wg.layout.plan_cache["coarse", least]
    assert plan.ncoarse == int((groups >= least).sum())
    assert plan.nrest == int(groups[groups < least].sum())
    assert want or (layout == "diagonal" and least > 2)


@pytest.mark.parametrize("bs,kind", [(32, "f16"), (32, "bf16"), (8, "f32"), (16, "f32")])
def test_sddmm_coarse_hybrid_streams(request, monkeypatch, bs, kind):
    """The hybrid's two wgrads on two streams (COARSE_OVERLAP "1", float32's default): called
    on a user's non-blocking stream, behind that stream's write of x, with beta 1, the result
    is right once that stream alone is synchronised, COARSE_SIDE's wgrad ran on the side stream
    (first), and the bits equal those of the two wgrads one after the other on the user's
    stream (COARSE_OVERLAP "0"); the inputs are unchanged. M = 1500 (float32's row chunks)."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("the coarse wgrad runs on sm_90")
    did = _specs.dtype_id(DTYPES[kind])
    monkeypatch.setitem(_specs.COARSE_WGRAD_RULES, (bs, did),
                        (_specs.CoarseRule(2.0, 3),))
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "1")
    blocks = _coarse_blocks("random")
    blocks[:8, :8] = True                        # full groups beside random's small ones
    shape = (bs * blocks.shape[0], bs * blocks.shape[1])
    w, x, dy, mask, ref = _sddmm_case(_rng(request), shape, bs, 1500, None, DTYPES[kind], blocks)
    wg, xg, dyg = w.to_gpu(), cupy.asarray(x), cupy.asarray(dy)
    streams = []
    orig = _gpu_ops._sddmm

    def spy(*a, **k):
        streams.append((cupy.cuda.get_current_stream().ptr, a[2]))
        return orig(*a, **k)
    monkeypatch.setattr(_gpu_ops, "_sddmm", spy)
    outs = []
    user = cupy.cuda.Stream(non_blocking=True)
    with user:
        # the plans built first (building one synchronises its stream, which would hide a
        # missing fork or join below)
        cb.sddmm(xg.T, dyg, wg, out=wg.copy(), alpha=-0.5, beta=1.0)
    user.synchronize()
    for overlap, first in (("1", "rest"), ("1", "coarse"), ("0", None)):
        monkeypatch.setattr(_specs, "COARSE_OVERLAP", overlap)
        monkeypatch.setattr(_specs, "COARSE_SIDE", first)
        out = wg.copy()
        xu = cupy.empty_like(xg)
        xu.view(cupy.uint8).fill(0xFF)           # NaN in every float format
        cupy.cuda.get_current_stream().synchronize()
        with user:
            # x written on the user's stream behind a long kernel: a side stream that did not
            # wait for it would read the NaNs
            big = cupy.arange(1 << 24, dtype=cupy.float32)
            for _ in range(8):
                big = cupy.sin(big)
            xu[...] = xg
            streams.clear()
            cb.sddmm(xu.T, dyg, wg, out=out, alpha=-0.5, beta=1.0)
        user.synchronize()
        outs.append(out.data.view(np.uint8).get())
        plan = wg.layout.plan_cache["coarse", 3]
        assert plan.ncoarse > 0 and plan.nrest > 0
        side = _gpu_ops._SIDE_STREAMS[cupy.cuda.runtime.getDevice(), user.ptr].ptr
        # the public call's, then the coarse and the rest wgrads' (float32's row chunks
        # recurse no further): COARSE_SIDE's on the side stream, first, iff overlapping
        assert len(streams) == 3 and streams[0][0] == user.ptr
        on_side = [lay for ptr, lay in streams if ptr == side]
        if overlap == "1":
            assert on_side == [getattr(plan, first)] and streams[1][0] == side
        else:
            assert not on_side and [lay for _, lay in streams[1:]] == [plan.coarse, plan.rest]
        got = out.toarray().get().astype(np.float64)
        w_dense = w.toarray().astype(np.float64)
        assert _rel(got, -0.5 * ref + w_dense) < ACCUM_TOL[kind]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert np.array_equal(xg.get(), x) and np.array_equal(dyg.get(), dy)
    assert np.array_equal(wg.data.view(np.uint8).get(), w.data.view(np.uint8))


def test_coarse_table_on_gpu():
    """``_work_lists.coarse_table`` with cupy (the tables of layouts over HOST_TABLES_MAX_BLOCKS)
    gives numpy's arrays, for every least 1-5 (an empty rest at least 1)."""
    from cupy_bsparse import _work_lists

    mask = _coarse_blocks("random")
    mask[:4, :4] = True
    rows, cols = np.nonzero(mask)
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    for least in range(1, 6):
        host = _work_lists.coarse_table(indptr, cols.astype(np.int32), 30, np, least)
        dev = _work_lists.coarse_table(cupy.asarray(indptr), cupy.asarray(cols, np.int32), 30,
                                       cupy, least)
        for h, d in zip(host, dev):
            assert d.dtype == h.dtype and np.array_equal(d.get(), h)


@pytest.mark.parametrize("bs,kind", [(32, "f16"), (32, "bf16"), (8, "f32"), (16, "f32")])
def test_sddmm_coarse_by_rule(request, monkeypatch, bs, kind):
    """COARSE_WGRAD None (the default) at M = COARSE_WGRAD_MIN_M: coarsened on a banded W (2 x 2
    groups full or of one block, as small world's), not on a random d = 0.05 one nor below that
    M (where no coarse plan is built); on "mixed" (20 full groups, 60 single blocks alone in
    theirs) by float32's hybrid rules only (bs 8: its second rule, groups of >= 2). The plans
    built and the choice are the rules' (the first rule's plan, then each next one's while
    none takes the call)."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("the coarse wgrad runs on sm_90")
    monkeypatch.setattr(_specs, "COARSE_WGRAD", None)
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", None)
    did = _specs.dtype_id(DTYPES[kind])
    rules = _specs.COARSE_WGRAD_RULES[bs, did]
    rows, cols = np.arange(40)[:, None], np.arange(40)[None, :]
    band, scattered = np.abs(rows - cols) < 4, _mask(np.random.default_rng(4), 40, 40, 0.05)
    mixed = (rows // 2) == (cols // 2)
    for shift in (5, 9, 13):
        g = np.arange(20)
        mixed[2 * g, 2 * ((g + shift) % 20)] = True
    lo = _specs.COARSE_WGRAD_MIN_M
    assert all(r.min_m is None for r in rules)
    hybrid = kind == "f32"
    for blocks, M, want, rule in ((band, lo, True, 0), (band, lo - 64, False, None),
                                  (scattered, lo, False, None),
                                  (mixed, lo, hybrid, (1 if bs == 8 else 0) if hybrid else None)):
        wg = _coarse_case(request, monkeypatch, bs, kind, M, blocks, 0.0, want)
        cache = wg.layout.plan_cache
        if M < lo:
            assert not any(("coarse", r.least) in cache for r in rules)
            continue
        taken = None
        for i, r in enumerate(rules):
            assert (("coarse", r.least) in cache) == (taken is None)
            plan = cache.get(("coarse", r.least))
            if plan is not None and taken is None:
                cost = _specs.coarse_cost(r, wg.layout.nnzb, plan.ncoarse, plan.nrest)
                taken = i if cost is not None and cost <= r.limit else None
        assert taken == rule


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("bs", [16, 64])
def test_sddmm_tall_m_chunks(request, monkeypatch, bs, beta):
    """float32 wgrad on sddmm_tall.cu in launches of SDDMM_M_CHUNK rows (forced): M = 257 as
    four launches of 64 rows and one of a single row, each after the first adding into the
    float32 blocks; x and dy as offset views; against float64, every block written, bitwise
    repeatable. A launch a chunk (SDDMM_MERGE_CHUNKS "0"; test_sddmm_tall_merged_chunks has
    the merged default)."""
    from cupy_bsparse import _specs

    monkeypatch.setattr(_specs, "SDDMM_M_CHUNK", 64)
    monkeypatch.setattr(_specs, "SDDMM_MERGE_CHUNKS", "0")
    assert _specs.sddmm_m_chunk("tall", 0, 257, bs) == 64
    assert _specs.sddmm_m_chunk("tall", 1, 257, bs) == 257
    _sddmm_tma_case(request, monkeypatch, bs, "f32", "tall", 257, 0.3, beta)


class _CountedWgrad:
    """A wgrad case for the kernels that count pieces across CTAs (MCH's flags, TSPLIT's
    counters): W of ``blocks`` blocks of ``bs`` at density 0.3, x and dy of M rows; ``run``
    takes alpha * sddmm(x^T, dy) into a NaN-poisoned out (beta 0, alpha 0.7) or onto random
    blocks (beta 1, alpha -0.3), checks it against float64 and returns its bytes;
    ``check_left``: the counters left zero and the inputs unchanged."""

    def __init__(self, request, kind, bs, blocks, M, beta):
        self.kind, self.beta, self.dtype = kind, beta, DTYPES[kind]
        self.alpha = -0.3 if beta else 0.7
        self.w, self.x, self.dy, self.mask, self.ref = _sddmm_case(
            _rng(request), (bs * blocks[0], bs * blocks[1]), bs, M, 0.3, self.dtype)
        self.wg, self.xg, self.dyg = self.w.to_gpu(), cupy.asarray(self.x), cupy.asarray(self.dy)
        self.g0 = np.random.default_rng(1).standard_normal((self.w.nnzb, bs, bs)).astype(self.dtype)

    def run(self):
        start = self.g0 if self.beta else np.full(self.g0.shape, np.nan, self.dtype)
        out = cb.BlockSparseMatrix.from_layout(self.wg.layout, cupy.asarray(start))
        cb.sddmm(self.xg.T, self.dyg, self.wg, out=out, alpha=self.alpha, beta=self.beta)
        got = out.toarray().get().astype(np.float64)
        if self.beta:
            g0 = cb.BlockSparseMatrix.from_layout(self.w.layout, self.g0).toarray()
            assert _rel(got, self.alpha * self.ref + g0.astype(np.float64)) < ACCUM_TOL[self.kind]
        else:
            base = _baseline_err(self.x.astype(np.float64).T, self.dy.astype(np.float64),
                                 self.dtype, self.ref, sample=lambda p: np.where(self.mask, p, 0.0))
            _check(got / self.alpha, self.ref, base, self.kind)
        return out.data.view(np.uint8).get()

    def check_left(self):
        flags = [v for k, v in self.wg.layout.plan_cache.items()
                 if isinstance(k, tuple) and k[0] == "counters"]
        assert flags and all(int(cupy.count_nonzero(f)) == 0 for f in flags)
        assert np.array_equal(self.xg.get(), self.x) and np.array_equal(self.dyg.get(), self.dy)


def _spied_launches(monkeypatch, knob):
    """A list to which every ``_gpu_ops._sddmm_launch`` call appends whether its spec sets
    ``knob``."""
    from cupy_bsparse import _gpu_ops

    launches, orig = [], _gpu_ops._sddmm_launch

    def spy(*a, **k):
        hit = orig(*a, **k)
        launches.append(bool(hit[3].get(knob)))
        return hit
    monkeypatch.setattr(_gpu_ops, "_sddmm_launch", spy)
    return launches


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("M,blocks", [(257, (40, 30))] if _SMALL else
                         [(257, (40, 30)), (1000, (40, 30)), (4096, (6, 5))])
@pytest.mark.parametrize("bs", [16, 32])
def test_sddmm_tall_merged_chunks(request, monkeypatch, bs, M, blocks, beta):
    """SDDMM_MERGE_CHUNKS None (the default) or "1": float32 wgrad's row chunks (SDDMM_M_CHUNK
    64, forced) in one launch of sddmm_tall.cu (MCH, grid (segments, chunks)); M = 257: four chunks of 64 rows
    and one of a single row, each adding into the blocks once the one before has stored;
    M = 4096 on 6 x 5 blocks: few segments, 64 chunks each (the waits most exposed). Into a
    poisoned out (beta 0, alpha 0.7) or onto random blocks (beta 1, alpha -0.3): one launch,
    the bits of a launch a chunk (merge "0"; each twice), against float64, the segments'
    flags left zero, the inputs unchanged."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("sddmm_tall.cu runs on sm_90")
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "tall")
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "0")
    monkeypatch.setattr(_specs, "SDDMM_M_CHUNK", 64)
    case = _CountedWgrad(request, "f32", bs, blocks, M, beta)
    launches = _spied_launches(monkeypatch, "MCH")
    outs = []
    for merge in ("1", "0", None, "0"):
        monkeypatch.setattr(_specs, "SDDMM_MERGE_CHUNKS", merge)
        launches.clear()
        outs.append(case.run())
        assert launches and launches[-1] == any(launches) == (merge != "0")
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    case.check_left()


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("split", ["rule", "part"])
@pytest.mark.parametrize("M,bs", [(257, 32)] if _SMALL else
                         [(257, 32), (1000, 32), (4095, 32), (1000, 64)])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_sddmm_tall_tail_split(request, monkeypatch, kind, M, bs, split, beta):
    """TSPLIT (TALL_TSPLIT "1"): 16-bit sddmm_tall.cu on the mma.sync consumers (bs 64 with
    wgmma off) with segments cut along M, their float32 sums through the workspace, the last
    piece to finish adding them in piece order and storing. "rule": ``tall_tail_split`` itself
    (pieces of at least 32 rows, any last wave split), which cuts every segment of this
    one-wave layout into 2-4 pieces, the last one shorter (bs 32, M = 257: 96 + 96 + 65; 4095:
    3 x 1024 + 1023); "part": a third of the segments (the last in grid order) cut into 3, the
    others whole, in one launch. Into a poisoned out (beta 0, alpha 0.7) or onto random blocks (beta
    1, alpha -0.3): against float64, bitwise repeatable, the counters left zero, the inputs
    unchanged, and the TSPLIT launch taken."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_tall.cu"]:
        pytest.skip("sddmm_tall.cu runs on sm_90")
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "tall")
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "0")
    monkeypatch.setattr(_specs, "USE_WGMMA", False)
    monkeypatch.setattr(_specs, "TALL_TSPLIT", "1")
    monkeypatch.setattr(_specs, "TALL_TSPLIT_TAIL", 1.0)
    monkeypatch.setattr(_specs, "TALL_TSPLIT_MIN_ROWS", 32)
    rule, answers = _specs.tall_tail_split, []

    def third(segments, resident, m, bk):
        return _specs.tall_pieces(m, 3, bk) + (segments // 3,)

    def asked(*a):
        answers.append((a, (rule if split == "rule" else third)(*a)))
        return answers[-1][1]
    monkeypatch.setattr(_specs, "tall_tail_split", asked)
    # bs 64 (one or two CTAs an SM): fewer segments, so that the rule's pieces fit a wave
    case = _CountedWgrad(request, kind, bs, (40, 30) if bs == 32 else (16, 12), M, beta)
    taken, orig = [], _gpu_ops._tall_tail_split

    def spy(*a, **k):              # whether each call launched the split kernel
        hit = orig(*a, **k)
        taken.append(hit is not None and bool(hit[3].get("TSPLIT")))
        return hit
    monkeypatch.setattr(_gpu_ops, "_tall_tail_split", spy)
    _gpu_ops._launches.clear()
    try:
        outs = [case.run(), case.run()]
    finally:
        _gpu_ops._launches.clear()
    assert taken == [True, True] and np.array_equal(outs[0], outs[1])
    case.check_left()
    cache = case.wg.layout.plan_cache
    plans = [k for k in cache if isinstance(k, tuple) and k[0] == "tsplit"]
    assert len(plans) == 1
    pieces, split_segments = plans[0][-1], plans[0][-2]
    segments = cache[plans[0]][0].shape[0] - split_segments * (pieces - 1)
    assert len(answers) == 1 and answers[0][0][0] == segments     # once a layout
    assert answers[0][1][0] == pieces and answers[0][1][2] == split_segments
    if split == "rule":              # under one wave: every segment, in 2-4 pieces
        assert split_segments == segments and 2 <= pieces <= 4
    else:
        assert 0 < split_segments < segments and pieces == 3


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("density", [0.3] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [100] if _SMALL else [1, 16, 33, 100, 257, 1000])
@pytest.mark.parametrize("bs,consumer", [(16, "mma_sync"), (64, "wgmma"), (64, "mma_sync")])
def test_sddmm_tall_f32_consumers(request, monkeypatch, bs, consumer, M, density, beta):
    """sddmm_tall.cu's float32 consumers forced to wgmma (compute capability 9.0 only) or
    mma.sync, as test_sddmm_tma_kernels checks them: bs 64 on either (3xTF32 on wgmma m64n64k8
    .tf32, two blocks a CTA), bs 16 on mma.sync. One 16-row step, several (an odd count), M
    past a step; segments of one block up to a full CTA, so warps without blocks; an empty
    block-row and block-column."""
    from cupy_bsparse import _gpu_ops

    _force_consumers(consumer, monkeypatch, F32_TALL_WGMMA=None)
    try:
        spec = _gpu_ops._sddmm_launch("tall", bs, 0, M)[3]
        assert spec.get("WGMMA", 0) == (consumer == "wgmma")
        _sddmm_tma_case(request, monkeypatch, bs, "f32", "tall", M, density, beta)
    finally:
        _gpu_ops._launches.clear()


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("M", [100] if _SMALL else [33, 100, 1000])
@pytest.mark.parametrize("flag,knobs", [("1", {}), ("1", {"WG_EAGER": 0}), ("1", {"STAGES": 2}),
                                        ("1", {"NB": 4, "BPW": 1, "STAGES": 3}),
                                        ("1", {"NB": 4, "BPW": 1, "STAGES": 4}),
                                        ("1", {"NB": 2, "BPW": 1}),
                                        ("1", {"NB": 8, "BPW": 2, "BK": 32, "STAGES": 5}),
                                        ("1", {"NB": 6, "BPW": 2, "STAGES": 4}), ("0", {})],
                         ids=["default", "held", "st2", "nb4_st3", "nb4_st4", "nb2", "bpw2_bk32",
                              "nb6_bpw2", "mma_sync"])
@pytest.mark.parametrize("kind", ["f16"] if _SMALL else ["f16", "bf16"])
def test_sddmm_tall_wgmma16(request, monkeypatch, kind, flag, knobs, M, beta):
    """sddmm_tall.cu's 16-bit bs 64 consumers on sm_90a: wgmma (TALL_WGMMA16 "1", the default:
    m64n64k16 from the swizzled tiles, WG_EAGER, segments of 8 with a warpgroup for two blocks
    in 3 stages; of 2 up to M = 512) with the variants the probes time forced into the spec (a
    warpgroup a block in segments of 4 or 2; segments of 6; 32-row steps), and mma.sync ("0"), as
    test_sddmm_tma_kernels checks them: one 64-row step, two, many; segments of one block up to
    a full CTA (warpgroups without a block, or with one of its two); an empty block-row and
    block-column."""
    from cupy_bsparse import _gpu_ops, _specs

    _force_consumers("wgmma", monkeypatch, TALL_WGMMA16=flag)
    _spec_knobs(monkeypatch, "sddmm_tall_spec", knobs)
    try:
        spec = _gpu_ops._sddmm_launch("tall", 64, _specs.dtype_id(DTYPES[kind]), M)[3]
        if flag == "1":
            assert spec["WGMMA"] == 1 and spec["WARPS_M"] == 4
            want = {"WG_EAGER": 1, **({"NB": 8, "BPW": 2, "STAGES": 3}
                                      if M > _specs.TALL_WGMMA16_NB2_M else {"NB": 2}), **knobs}
            assert want == {k: spec[k] for k in want}
        else:
            assert spec.get("WGMMA", 0) == 0 and spec["WARPS_M"] == 2
        _sddmm_tma_case(request, monkeypatch, 64, kind, "tall", M, 0.3, beta)
    finally:
        _gpu_ops._launches.clear()


def _sddmm_tma_case(request, monkeypatch, bs, kind, kernel, M, density, beta, blocks=None,
                    coarse="0"):
    """``kernel`` forced on W of 40 x 30 blocks (or the mask ``blocks``); ``coarse``: the
    coarse wgrad's knob (COARSE_WGRAD, off by default: these tests are of the kernel)."""
    from cupy_bsparse import _specs

    fp32 = kind == "f32"
    monkeypatch.setattr(_specs, "COARSE_WGRAD", coarse)
    if kernel == "grouped_tma" and not _specs.sddmm_grouped_tma_supported(
            bs, _specs.dtype_id(DTYPES[kind])):
        pytest.skip("sddmm_grouped_tma.cu serves 16-bit bs 16 and bs 8 (pairs)")
    if kernel != "grouped_tma" and (bs == 8 or (bs == 16 and not fp32)):
        pytest.skip("bs 8 and 16-bit bs 16 have no stream or tall kernel")
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", kernel)
    dtype = DTYPES[kind]
    shape = (bs * 40, bs * 30) if blocks is None else (bs * blocks.shape[0], bs * blocks.shape[1])
    w, x, dy, mask, ref = _sddmm_case(_rng(request), shape, bs, M, density, dtype, blocks)
    assert _specs.sddmm_kernel(bs, _specs.dtype_id(dtype), M) == kernel
    ran_coarse = False
    if coarse == "1" and (bs, _specs.dtype_id(dtype)) in _specs.COARSE_WGRAD_RULES:
        # forced: by the first rule whose plan has a coarse block (odd block counts: none)
        from cupy_bsparse import _work_lists

        nbr, nbc = w.layout.block_shape
        lay = w.layout
        for r in _specs.COARSE_WGRAD_RULES[bs, _specs.dtype_id(dtype)]:
            if nbr % 2 == 0 and nbc % 2 == 0 and not ran_coarse:
                ran_coarse = _work_lists.coarse_table(lay.indptr, lay.indices, nbc, np,
                                                      r.least)[1].shape[0] > 0
    wg = _offset_wgrad(w, x, dy, mask, ref, kind, beta, _coarse_spy(monkeypatch, ran_coarse))
    if kernel == "tall" and not fp32:
        # 16-bit segments handed out largest first (stable), each block in one of them: of W's
        # layout, or of its coarse layout where the wgrad ran coarsened
        from cupy_bsparse import _work_lists

        lay = wg.layout.plan_cache["coarse", 1].coarse if ran_coarse else wg.layout
        even, cache = _specs.TALL_EVEN_SEGMENTS, lay.plan_cache
        keys = {nb: _work_lists.sddmm_plan_key(nb, True, even) for nb in range(1, 33)}
        plans = [(nb, cache[k]) for nb, k in keys.items() if k in cache]
        assert plans
        for nb, (seg, _) in plans:
            seg = seg.get()
            assert (np.diff(seg[:, 2]) <= 0).all() and seg[:, 2].sum() == lay.nnzb
            assert seg[:, 2].max(initial=0) <= nb
            if even:        # a block-row's segments differ by at most one block
                for r in np.unique(seg[:, 0]):
                    c = seg[seg[:, 0] == r, 2]
                    assert c.max() - c.min() <= 1


@pytest.mark.parametrize("shape", [(16, 16), (32, 48), (48, 16)])
@pytest.mark.parametrize("kind", ["f16", "bf16", "f32"])
@pytest.mark.parametrize("bs", [8, 16])
def test_narrow_operands(request, bs, kind, shape):
    """Operands narrower than a TMA box (64 columns): x @ W, x @ W.T and sddmm by the default
    kernels at M = 100 (the TMA kernels for 16-bit bs 16; float32 bs 16 the stream kernel for
    the products and sddmm_tall.cu for sddmm), into poisoned outputs, against float64."""
    rng = _rng(request)
    dtype = DTYPES[kind]
    w, x, dy, mask, ref = _sddmm_case(rng, shape, bs, 100, 1.0, dtype)
    wg = w.to_gpu()
    g = cb.BlockSparseMatrix.from_layout(wg.layout, _nan((w.nnzb, bs, bs), dtype))
    cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), wg, out=g)
    got = g.toarray().get().astype(np.float64)
    base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                         sample=lambda p: np.where(mask, p, 0.0))
    _check(got, ref, base, kind)
    w64 = w.toarray().astype(np.float64)
    for a, op64, wop in ((x, w64, wg), (dy, w64.T, wg.T)):
        out = _nan((100, op64.shape[1]), dtype)
        cb.matmul(cupy.asarray(a), wop, out=out)
        ref2 = a.astype(np.float64) @ op64
        _check(out.get(), ref2, _baseline_err(a.astype(np.float64), op64, dtype, ref2), kind)


ACCUM_TOL = {"f32": 1e-5, "f16": 2e-3, "bf16": 1e-2}


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_alpha_beta_accumulate(request, kind):
    rng = _rng(request)
    dtype = DTYPES[kind]
    bs = 16
    w, w64 = _weight(rng, (128, 96), bs, 0.5, dtype)
    x = rng.standard_normal((33, 128)).astype(dtype)
    y0 = rng.standard_normal((33, 96)).astype(dtype)
    out = cupy.asarray(y0)
    cb.matmul(cupy.asarray(x), w.to_gpu(), out=out, alpha=0.5, beta=2.0)
    ref = 0.5 * (x.astype(np.float64) @ w64) + 2.0 * y0.astype(np.float64)
    assert _rel(out.get().astype(np.float64), ref) < ACCUM_TOL[kind]
    # dW += x.T @ dy, the training-loop accumulation
    dy = rng.standard_normal((33, 96)).astype(dtype)
    g0 = rng.standard_normal((w.nnzb, bs, bs)).astype(dtype)
    wg = w.to_gpu()
    grad = cb.BlockSparseMatrix.from_layout(wg.layout, cupy.asarray(g0))
    cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), wg, out=grad, beta=1.0)
    mask = np.kron(w.layout.toarray(), np.ones((bs, bs), bool))
    g0_dense = cb.BlockSparseMatrix.from_layout(w.layout, g0).toarray().astype(np.float64)
    ref = np.where(mask, x.astype(np.float64).T @ dy.astype(np.float64), 0) + g0_dense
    got = grad.toarray().get().astype(np.float64)
    assert _rel(got, ref) < ACCUM_TOL[kind]


@pytest.mark.parametrize("M", [33, 1100])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("bs", [32, 64])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_alpha_beta_wide_tiles(request, kind, bs, trans, M):
    """out = alpha * x @ op(W) + beta * out where 16-bit warp tiles span 32 or 64 columns:
    beta != 0 keeps store_tiles' 4-byte path (read, add and one rounding in float32), beta == 0
    takes the 16-byte stores (here with alpha -2, exact in 16 bits, on a poisoned output)."""
    rng = _rng(request)
    dtype = DTYPES[kind]
    wg, wop, x, x64, op64, ref = _dsd_case(rng, (bs * 6, bs * 5), bs, 0.4, dtype, M, trans)
    y0 = rng.standard_normal((M, op64.shape[1])).astype(dtype)
    out = cupy.asarray(y0)
    cb.matmul(cupy.asarray(x), wop, out=out, alpha=0.5, beta=2.0)
    assert _rel(out.get().astype(np.float64), 0.5 * ref + 2.0 * y0.astype(np.float64)) < ACCUM_TOL[kind]
    out = _nan((M, op64.shape[1]), dtype)
    cb.matmul(cupy.asarray(x), wop, out=out, alpha=-2.0)
    _check(out.get().astype(np.float64) / -2.0, ref, _baseline_err(x64, op64, dtype, ref), kind)


def test_scalar_arguments_follow_each_call(request):
    """The launchers cache scalar kernel arguments by value: every call must still get its own
    alpha, including -0.0 after 0.0 (equal as keys, different bits)."""
    rng = _rng(request)
    mask = _mask(rng, 4, 3, 0.5)
    mask[0, 0] = True
    w = cb.BlockSparseMatrix.from_dense(rng.random((64, 48)).astype(np.float32) + 0.5, 16,
                                        mask=mask)
    w64 = w.toarray().astype(np.float64)
    x = rng.random((5, 64)).astype(np.float32) + 0.5
    ref = x.astype(np.float64) @ w64
    xg, wg = cupy.asarray(x), w.to_gpu()
    for alpha in (1.0, 2.0, 0.0, -0.0, -3.5, 0.0, 1.0):
        y = cb.matmul(xg, wg, alpha=alpha).get()
        assert _rel(y.astype(np.float64), alpha * ref) <= 1e-6, alpha
        assert np.array_equal(np.signbit(y[:, :16]), np.signbit(alpha * ref[:, :16])), alpha
        g = cb.sddmm(xg.T, xg @ cupy.asarray(w64.astype(np.float32)), wg, alpha=alpha).data.get()
        assert np.all(np.signbit(g) == (math.copysign(1.0, alpha) < 0)), alpha


@pytest.mark.parametrize("beta", [0.0, 2.0])
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_sddmm_empty_reduction(kind, beta):
    """M = 0: no products, so out = beta * out (zeros for beta = 0, even over NaN)."""
    dtype = DTYPES[kind]
    rng = np.random.default_rng(11)
    w, _ = _weight(rng, (32, 48), 16, 0.5, dtype)
    wg = w.to_gpu()
    g0 = np.full((w.nnzb, 16, 16), np.nan, dtype) if beta == 0 else \
        rng.standard_normal((w.nnzb, 16, 16)).astype(dtype)
    grad = cb.BlockSparseMatrix.from_layout(wg.layout, cupy.asarray(g0))
    x = cupy.asarray(np.zeros((0, 32), dtype))
    dy = cupy.asarray(np.zeros((0, 48), dtype))
    cb.sddmm(x.T, dy, wg, out=grad, beta=beta)
    expected = beta * g0.astype(np.float64) if beta else np.zeros(g0.shape)
    np.testing.assert_allclose(grad.data.get().astype(np.float64), expected, rtol=1e-2)


def test_noncontiguous_and_batched_x(request):
    rng = _rng(request)
    bs = 32
    w, w64 = _weight(rng, (128, 64), bs, 0.5, np.float32)
    wg = w.to_gpu()
    big = rng.standard_normal((3, 5, 300)).astype(np.float32)
    xg = cupy.asarray(big)[:, :, 7:135]          # row stride 300, unaligned start
    res = xg @ wg
    ref = big[:, :, 7:135].astype(np.float64) @ w64
    assert res.shape == (3, 5, 64)
    assert _rel(res.get(), ref) < 1e-5
    xt = cupy.asarray(rng.standard_normal((128, 9)).astype(np.float32)).T  # last stride != 1
    assert _rel((xt @ wg).get(), xt.get().astype(np.float64) @ w64) < 1e-5


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_misaligned_operands(request, kind):
    """Rows not 16-byte aligned (a column slice) and an out at an odd offset take copies."""
    rng = _rng(request)
    dtype = DTYPES[kind]
    bs = 16
    w, w64 = _weight(rng, (64, 48), bs, 0.5, dtype)
    big = rng.standard_normal((9, 70)).astype(dtype)
    xg = cupy.asarray(big)[:, 3:67]
    buf = cupy.asarray(np.full(9 * 48 + 1, np.nan, dtype))
    out = buf[1:].reshape(9, 48)
    cb.matmul(xg, w.to_gpu(), out=out)
    ref = big[:, 3:67].astype(np.float64) @ w64
    _check(out.get(), ref, _baseline_err(big[:, 3:67].astype(np.float64), w64, dtype, ref), kind)


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16", "tf32"])
def test_bitwise_deterministic(request, kind):
    rng = _rng(request)
    dtype = DTYPES[kind]
    w, _ = _weight(rng, (512, 512), 32, 0.3, dtype)
    wg = w.to_gpu()
    x = cupy.asarray(rng.standard_normal((777, 512)).astype(dtype))
    a = [cb.matmul(x, wg, allow_tf32=kind == "tf32").view(np.uint8).get() for _ in range(3)]
    b = [cb.matmul(x, wg.T, allow_tf32=kind == "tf32").view(np.uint8).get() for _ in range(3)]
    assert all(np.array_equal(a[0], v) for v in a[1:])
    assert all(np.array_equal(b[0], v) for v in b[1:])
    g = [cb.sddmm(x.T, x, wg, allow_tf32=kind == "tf32").data.view(np.uint8).get()
         for _ in range(3)]
    assert all(np.array_equal(g[0], v) for v in g[1:])


def test_indexing_beyond_2_31_elements():
    """x with more than 2**31 elements: offsets must be 64-bit."""
    free, _ = cupy.cuda.runtime.memGetInfo()
    M, C, bs = (1 << 21) + 9, 1024, 64
    if free < 3 * M * C * 2:
        pytest.skip("not enough GPU memory")
    rng = np.random.default_rng(5)
    w, w64 = _weight(rng, (C, 128), bs, 0.5, np.float16)
    x = cupy.empty((M, C), np.float16)
    tail = rng.standard_normal((64, C)).astype(np.float16)
    x[-64:] = cupy.asarray(tail)
    x[:-64] = 0
    y = cupy.full((M, 128), np.nan, np.float16)
    cb.matmul(x, w.to_gpu(), out=y)
    assert not bool(cupy.isnan(y).any())          # every row written, past 2**31 elements too
    ref = tail.astype(np.float64) @ w64
    assert _rel(y[-64:].get().astype(np.float64), ref) < 2e-3
    dw = cb.sddmm(x.T, y, w.to_gpu())
    ref_dw = np.where(np.kron(w.layout.toarray(), np.ones((bs, bs), bool)),
                      tail.astype(np.float64).T @ y[-64:].get().astype(np.float64), 0)
    assert _rel(dw.toarray().get().astype(np.float64), ref_dw) < 5e-3


def test_more_rows_than_one_grid():
    """M beyond 65535 row tiles is split over launches: every row written (a poisoned out),
    and right around each launch's first row and at the end."""
    from cupy_bsparse import _gpu_ops, _specs

    M = 65535 * 128 + 300
    rng = np.random.default_rng(6)
    w, w64 = _weight(rng, (8, 16), 8, 1.0, np.float16)
    x = cupy.asarray(rng.standard_normal((M, 8)).astype(np.float16))
    wg = w.to_gpu()
    y = cupy.full((M, 16), np.nan, np.float16)
    cb.matmul(x, wg, out=y)
    assert not bool(cupy.isnan(y).any())
    launches = _gpu_ops._dsd_call(wg.layout, False, _specs.dtype_id(np.float16), M, 16)[6]
    starts = [r0 for r0, *_ in launches]
    assert len(starts) >= 2
    idx = np.unique(np.concatenate([np.r_[max(r0 - 3, 0):r0 + 3] for r0 in starts]
                                   + [np.r_[M - 400:M]]))
    ref = x[idx].get().astype(np.float64) @ w64
    assert _rel(y[idx].get().astype(np.float64), ref) < 2e-3


def _force_chunk(monkeypatch, steps):
    """Make dsd.cu serve every call and cut every column into chunks of ``steps`` pipeline
    stages (split-K path)."""
    from cupy_bsparse import _specs, _work_lists

    monkeypatch.setattr(_specs, "DSD_KERNEL", "column")
    monkeypatch.setattr(_work_lists, "chunk_blocks",
                        lambda layout, trans_w, m_tiles, g, *_: steps * g)


@pytest.mark.parametrize("M", [1, 7] if _SMALL else [1, 7, 64, 300])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", list(DTYPES))
@pytest.mark.parametrize("bs", BLOCKS)
def test_split_columns(request, monkeypatch, bs, kind, trans, M):
    """Columns cut into many chunks (split-K) and combined in a fixed order: still exact to
    the tolerance, every element written, bitwise repeatable, and the counters left at zero."""
    _force_chunk(monkeypatch, 1)
    rng = _rng(request)
    dtype = DTYPES[kind]
    # 0.6 * 24 = 14 blocks per output column on average, more than one stage (<= 8 blocks)
    wg, wop, x, x64, op64, ref = _dsd_case(rng, (bs * 40, bs * 24), bs, 0.6, dtype, M, trans)
    outs = []
    for _ in range(2):
        out = _nan((M, op64.shape[1]), dtype)
        cb.matmul(cupy.asarray(x), wop, out=out, allow_tf32=(kind == "tf32"))
        outs.append(out.view(np.uint8).get())
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
    assert np.array_equal(outs[0], outs[1])
    counters = [v for k, v in wg.layout.plan_cache.items()
                if isinstance(k, tuple) and k[0] == "counters"]
    assert counters and all(int(cupy.count_nonzero(c)) == 0 for c in counters)


_STREAM_GROUP_CASES = ([(100, 0.5, True)] if _SMALL else
                       [(65, 0.5, False), (1000, 0.1, False), (300, 0.5, True),
                        (1000, 1.0, True)])


@pytest.mark.parametrize("M,density,split", _STREAM_GROUP_CASES)
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
@pytest.mark.parametrize("r", [2, 4])
@pytest.mark.parametrize("bs", [32, 64])
def test_stream_column_groups(request, monkeypatch, bs, r, kind, trans, M, density, split):
    """dsd_stream.cu with R block-columns a CTA (STREAM_R, 16-bit above M = 64): W with an
    empty block-row and block-column, output columns not a multiple of R (13 or 11), M not a
    multiple of the row tile, groups cut into two-step chunks (split) and combined; exact to
    the tolerance, every element written, bitwise repeatable, the counters left at zero."""
    _column_groups_checked(request, monkeypatch, bs, r, kind, trans, M, density, split)


@pytest.mark.parametrize("M,density,split", [(1000, 0.3, False), (300, 0.5, True)])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("walk", ["ascending", "hashed", "hubs"])
def test_stream_column_groups_walks(request, monkeypatch, walk, trans, M, density, split):
    """GROUP_WALK forced (the default is "hubs"): fp16 bs 32 R 4 with each group's steps in
    ``walk``'s order, whole and cut into two-step chunks; checked as
    ``test_stream_column_groups``, and the plan cached under the walk."""
    from cupy_bsparse import _specs

    monkeypatch.setattr(_specs, "GROUP_WALK", walk)
    layout = _column_groups_checked(request, monkeypatch, 32, 4, "f16", trans, M, density, split)
    assert any(isinstance(k, tuple) and k[0] == "dsd_group" and k[-1] == walk
               for k in layout.plan_cache)


def _column_groups_checked(request, monkeypatch, bs, r, kind, trans, M, density, split):
    """``test_stream_column_groups``' case; returns W's layout."""
    from cupy_bsparse import _gpu_ops, _specs, _work_lists

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("the TMA kernels need sm_90")
    monkeypatch.setattr(_specs, "STREAM_R", str(r))
    if split:
        plan = _work_lists.dsd_group_plan
        monkeypatch.setattr(_work_lists, "dsd_group_plan",
                            lambda layout, trans_w, r_, chunk=None, **kw: plan(
                                layout, trans_w, r_, chunk=2, **kw))
    did = _specs.dtype_id(DTYPES[kind], False)
    assert _gpu_ops._dsd_launch(bs, did, M, trans, "stream")[4]["R"] == r
    rng = _rng(request)
    dtype = DTYPES[kind]
    wg, wop, x, x64, op64, ref = _dsd_case(rng, (bs * 13, bs * 11), bs, density, dtype, M, trans)
    outs = []
    for _ in range(2):
        out = _nan((M, op64.shape[1]), dtype)
        cb.matmul(cupy.asarray(x), wop, out=out)
        outs.append(out.view(np.uint8).get())
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
    assert np.array_equal(outs[0], outs[1])
    keys = [k for k in wg.layout.plan_cache if isinstance(k, tuple) and k[0] == "dsd_group"]
    assert keys and all(k[2] == r for k in keys)
    counters = [v for k, v in wg.layout.plan_cache.items()
                if isinstance(k, tuple) and k[0] == "counters"]
    assert not split or (counters and all(int(cupy.count_nonzero(c)) == 0 for c in counters))
    return wg.layout


@pytest.mark.parametrize("M,density", [(300, 0.5)] if _SMALL else [(65, 1.0), (300, 0.5),
                                                                    (1000, 0.1), (4096, 0.3)])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
@pytest.mark.parametrize("knobs", range(len(STREAM_TALL_SETS)))
def test_stream_tall_tiles(request, monkeypatch, knobs, kind, trans, M, density):
    """dsd_stream.cu with BM 512 (``STREAM_TALL_SETS``, forced by STREAM_TALL; the third on the
    item queue): M not a multiple of the tile (the second box partly or wholly past M, zero-filled), W with an empty
    block-row and block-column, exact to the tolerance, every element written, bitwise equal to
    the 256-row tile's result (STREAM_TALL "0": the same products in the same order)."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("the TMA kernels need sm_90")
    dtype, bs = DTYPES[kind], 32
    wg, wop, x, x64, op64, ref = _dsd_case(_rng(request), (bs * 13, bs * 11), bs, density,
                                           dtype, M, trans)
    monkeypatch.setattr(_specs, "STREAM_TALL", "0")
    monkeypatch.setattr(_specs, "STREAM_R", "1")   # (else d = 1 takes column groups, R 4)
    monkeypatch.setattr(_gpu_ops, "_launches", {})
    base = _nan((M, op64.shape[1]), dtype)
    cb.matmul(cupy.asarray(x), wop, out=base)
    monkeypatch.setattr(_specs, "STREAM_TALL", str(knobs + 1))
    try:
        did = _specs.dtype_id(dtype, False)
        spec = _gpu_ops._dsd_launch(bs, did, M, trans, "stream")[4]
        assert spec.items() >= STREAM_TALL_SETS[knobs].items()
        wg.layout.plan_cache.pop("calls", None)
        out = _nan((M, op64.shape[1]), dtype)
        cb.matmul(cupy.asarray(x), wop, out=out)
        (call,) = wg.layout.plan_cache["calls"].values()
        grid = call[6][0][2]
        if STREAM_TALL_SETS[knobs].get("QUEUE"):   # the resident CTAs over the items
            items = op64.shape[1] // bs * -(-M // 512)
            assert grid == (min(_gpu_ops._dsd_launch(bs, did, M, trans, "stream")[5], items), 1)
        else:
            assert grid[1] == -(-M // 512)              # grid rows: 512-row tiles
        _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
        if not STREAM_TALL_SETS[knobs].get("QUEUE"):   # (the base may split a column)
            assert np.array_equal(out.view(np.uint8).get(), base.view(np.uint8).get())
    finally:
        _gpu_ops._launches.clear()


@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
def test_stream_groups_by_layout(request, monkeypatch, trans):
    """The launcher's layout rule (STREAM_R unset, GROUP_SHARE_MAX 0.7): a banded W, whose
    4-column groups share most x tiles, runs on 4-column groups; a random one at d = 0.1
    (share about 0.86) on single columns; both exact to the tolerance."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("the TMA kernels need sm_90")
    monkeypatch.setattr(_specs, "STREAM_R", None)
    monkeypatch.setattr(_specs, "GROUP_SHARE_MAX", 0.7)
    rng = _rng(request)
    dtype, bs, M = np.dtype(np.float16), 32, 300
    band = np.abs(np.subtract.outer(np.arange(40), np.arange(40))) < 3
    for mask, grouped in ((band, True), (layouts.random(40, 40, 0.1, seed=1), False)):
        w, w64 = _weight_on(rng, mask, bs, dtype)
        wg = w.to_gpu()
        wop, op64 = (wg.T, w64.T) if trans else (wg, w64)
        x = rng.standard_normal((M, op64.shape[0])).astype(dtype)
        x64 = x.astype(np.float64)
        ref = x64 @ op64
        out = _nan((M, op64.shape[1]), dtype)
        cb.matmul(cupy.asarray(x), wop, out=out)
        _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), "f16")
        cache = wg.layout.plan_cache        # W's own layout holds the plans of W and W.T
        assert any(isinstance(k, tuple) and k[0] == "dsd_group" for k in cache) == grouped


@pytest.mark.parametrize("split", [None, "weight", "steps"])
@pytest.mark.parametrize("density", [1.0] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [7, 100] if _SMALL else [1, 7, 64, 300])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16", "bf16", "tf32", "f32"])
@pytest.mark.parametrize("bs", [8, 16, 32])
@pytest.mark.parametrize("kernel", ["grouped", "grouped_tma"])
def test_grouped_kernel(request, monkeypatch, kernel, bs, kind, trans, M, density, split):
    """dsd_grouped.cu (float32 bs 8 as 3xTF32) or dsd_grouped_tma.cu forced: several groups
    (the last one partial), several x slabs (the last one narrower), slabs with more blocks
    than one step holds (density 1), groups split into items of near-equal weight (a budget
    of two items a group and one) or into one-step items (at density 1), and x a view at a
    16-byte offset inside a wider buffer; exact to the tolerance, every element written,
    bitwise repeatable."""
    from cupy_bsparse import _specs, _work_lists

    did = _specs.dtype_id(DTYPES[kind], kind == "tf32")
    if kernel == "grouped" and not _specs.grouped_supported(bs, did):
        pytest.skip("no grouped specialisation (register spills)")
    if kernel == "grouped_tma" and not _specs.dsd_grouped_tma_supported(bs, did):
        pytest.skip("dsd_grouped_tma.cu serves 16-bit bs 8 and 16 and float32 bs 8 only")
    if _SMALL and kernel == "grouped" and M > 64:
        pytest.skip("sanitizer subset: M = 100 is for grouped_tma's 64-row tiles")
    if split == "steps" and density < 1:
        pytest.skip("one-step items: at density 1, where groups have the most steps")
    monkeypatch.setattr(_specs, "DSD_KERNEL", kernel)
    if split == "weight":     # two items a group and one: cut at near-equal weight, unevenly
        monkeypatch.setattr(_work_lists, "_item_budget", lambda g, m, r: 2 * g + 1)
    elif split == "steps":    # every step its own item: the most partials a group can have
        monkeypatch.setattr(_work_lists, "_item_budget", lambda *a: 1 << 30)
    rng = _rng(request)
    dtype = DTYPES[kind]
    # 300 * 8 output columns: 10-19 groups of 128-256 (by spec), the last partial; 151 x
    # column blocks: several slabs, the last narrower
    shape = (bs * 151, 300 * 8) if not trans else (300 * 8, bs * 151)
    wg, wop, x, x64, op64, ref = _dsd_case(rng, shape, bs, density, dtype, M, trans)
    assert _specs.dsd_kernel(bs, did, M) == kernel
    xg, out, outs = _matmul_offset_x(x, wop, op64.shape[1], allow_tf32=(kind == "tf32"))
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
    assert np.array_equal(outs[0], outs[1])
    if split:
        counters = [v for k, v in wg.layout.plan_cache.items()
                    if isinstance(k, tuple) and k[0] == "counters"]
        assert counters and all(int(cupy.count_nonzero(c)) == 0 for c in counters)
        # the item tables (item, ginfo, nslots): "dsdg" keys longer than the steps' own (5
        # fields) that are not the bulk-copy count's
        items = [v[0].get() for k, v in wg.layout.plan_cache.items()
                 if isinstance(k, tuple) and k[0] == "dsdg" and len(k) > 5 and k[-1] != "copies"]
        if split == "weight":     # split groups, items of several steps
            assert items and all((t[:, 3] >= 0).any() and (t[:, 2] - t[:, 1] >= 2).any()
                                 for t in items)
        else:
            assert items and all((t[:, 2] - t[:, 1] <= 1).all() and (t[:, 3] >= 0).any()
                                 for t in items)


@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("bs,kind", [(8, "f32"), (8, "f16"), (16, "bf16")])
def test_grouped_tma_balance(request, monkeypatch, grouped_tma, bs, kind, trans):
    """GROUP_BALANCE (forced, 1.25) at an M where the groups fill a wave unsplit: on an op(W)
    whose first 12 block-columns are full (hubs) and the rest at d 0.05, the first group is
    cut into items of about the mean weight, summed as split groups; exact to the tolerance,
    every element written, bitwise repeatable, the counters left zero. A layout without hubs
    (d 0.05 everywhere) keeps one item a group."""
    from cupy_bsparse import _specs

    monkeypatch.setattr(_specs, "GROUP_BALANCE", 1.25)
    dtype, M = DTYPES[kind], 4000
    rng = _rng(request)
    for hubs in (True, False):
        mask = _mask(rng, 151, 300, 0.05)             # op(W)'s blocks: K_in x N block grid
        if hubs:
            mask[:, :12] = True
        w, w64 = _weight_on(rng, mask.T if trans else mask, bs, dtype)
        wg = w.to_gpu()
        wop, op64 = (wg.T, w64.T) if trans else (wg, w64)
        x = rng.standard_normal((M, op64.shape[0])).astype(dtype)
        x64 = x.astype(np.float64)
        ref = x64 @ op64
        xg, out, outs = _matmul_offset_x(x, wop, op64.shape[1])
        _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
        assert np.array_equal(outs[0], outs[1])
        items = [v for k, v in wg.layout.plan_cache.items()
                 if isinstance(k, tuple) and k[0] == "dsdg" and len(k) > 5 and k[-1] != "copies"]
        assert len(items) == 1
        item, ginfo, nslots = items[0]
        ngroups = ginfo.shape[0]
        assert (item.shape[0] > ngroups and nslots > 0) == hubs
        assert hubs or (item.shape[0] == ngroups and nslots == 0)
        counters = [v for k, v in wg.layout.plan_cache.items()
                    if isinstance(k, tuple) and k[0] == "counters"]
        assert all(int(cupy.count_nonzero(c)) == 0 for c in counters)


def _twin_without_split(monkeypatch, spec_fn, spec):
    """Make every later launch of ``_specs.<spec_fn>``'s template take ``spec`` (a dict) without
    its split flag (XLO), with F32_SPLIT off: the same steps, the in-register split.
    Returns that spec as a dict."""
    from cupy_bsparse import _gpu_ops, _specs

    twin = tuple(sorted((k, v) for k, v in spec.items() if k != "XLO"))
    monkeypatch.setattr(_specs, "F32_SPLIT", "off")
    monkeypatch.setattr(_specs, spec_fn, lambda *a, **k: twin)
    _gpu_ops._launches.clear()
    return dict(twin)


def _ftz(a):
    """float32 subnormals flushed to zero of the same sign, as every kernel does: CuPy compiles
    with -ftz=true (the device read 0, not 1e-45, for lo of x = 1e-45; v21)."""
    return np.where(np.abs(a) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), a), a)


def _split_tf32_ref(x):
    """numpy twin of tf32x3.cuh's split_tf32 (compiled with -ftz=true): (hi, lo) float32."""
    big = np.float32(np.uint32(0x7F7FE000).view(np.float32))
    h = ((x.view(np.uint32) + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)
    h = _ftz(np.fmin(np.fmax(h, -big), big))      # fmaxf / fminf: a NaN operand loses
    with np.errstate(invalid="ignore", over="ignore"):
        return h, _ftz((_ftz(x) - h).astype(np.float32))


def test_split_tf32_planes(request):
    """split_tf32.cu (F32_SPLIT "pass"): the bits of tf32x3.cuh's split for every element of
    a strided float32 view, edge values included (+-Inf: hi finite, lo infinite; NaN: lo NaN;
    values that round past the largest TF32); rows padded to 16 bytes; x unchanged."""
    from cupy_bsparse import _gpu_ops

    rng = _rng(request)
    x = (rng.standard_normal((37, 203)) * 10.0 ** rng.integers(-30, 30, (37, 203))).astype(np.float32)
    edges = np.array([np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38, 3.40116e38, 1e-45,
                      -0.0, 0.0, 1.0000001, 2.0 ** -126], dtype=np.float32)
    edges = np.concatenate([edges, np.array([0x7F7FF000, 0xFF7FF000, 0x7F800001], np.uint32
                                            ).view(np.float32)])   # round past big; a NaN
    x.flat[rng.choice(x.size, edges.size, replace=False)] = edges
    wide = cupy.asarray(np.pad(x, ((0, 0), (3, 5))))
    xg = wide[:, 3:3 + x.shape[1]]
    before = wide.copy()
    hi, lo = _gpu_ops.split_tf32(xg)
    assert hi.shape == lo.shape == x.shape and hi.strides[0] % 16 == 0 and lo.strides[0] % 16 == 0
    assert hi.data.ptr % 16 == 0 and lo.data.ptr % 16 == 0
    x = xg.get()                     # the bits the kernel read (a NaN's payload included)
    h_ref, l_ref = _split_tf32_ref(x)
    h, lo_ = hi.get(), lo.get()
    assert np.array_equal(h.view(np.uint32), h_ref.view(np.uint32))
    nan = np.isnan(l_ref)
    assert np.array_equal(np.isnan(lo_), nan)
    assert np.array_equal(lo_[~nan].view(np.uint32), l_ref[~nan].view(np.uint32))
    assert np.isinf(lo_[np.isinf(x)]).all() and np.isfinite(h).all()
    assert bool(((wide == before) | (cupy.isnan(wide) & cupy.isnan(before))).all())


@pytest.fixture(params=["pass"])
def f32_split(request, monkeypatch):
    """F32_SPLIT forced to "pass" (XLO): float32 x split ahead; the launch cache is cleared
    around."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_grouped_tma.cu"]:
        pytest.skip("the TMA kernels need sm_90")
    monkeypatch.setattr(_specs, "F32_SPLIT", request.param)
    _gpu_ops._launches.clear()
    yield request.param
    _gpu_ops._launches.clear()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
@pytest.mark.parametrize("density", [1.0] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [7, 100] if _SMALL else [1, 7, 64, 300])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
def test_grouped_tma_f32_split(request, monkeypatch, f32_split, trans, M, density, split):
    """dsd_grouped_tma.cu at float32 bs 8 with x split ahead (XLO: all of x by split_tf32.cu),
    as test_grouped_kernel checks the default; and bitwise equal to the in-register split on
    the same steps (its twin spec: the same without XLO; items cut for a fixed 264 resident
    CTAs, so the plans are the same): the same split bits go through the same MMAs in the same
    order."""
    from cupy_bsparse import _gpu_ops, _specs, _work_lists

    monkeypatch.setattr(_specs, "DSD_KERNEL", "grouped_tma")
    if split:
        monkeypatch.setattr(_work_lists, "_item_budget", lambda *a: 1 << 30)
    else:
        budget = _work_lists._item_budget
        monkeypatch.setattr(_work_lists, "_item_budget", lambda g, m, r: budget(g, m, 264))
    launch = _gpu_ops._dsd_launch(8, 0, M, trans, "grouped_tma")
    if not launch[4].get("XLO"):
        pytest.skip("the split spec does not fit this GPU's shared memory (default taken)")
    rng = _rng(request)
    dtype = DTYPES["f32"]
    shape = (8 * 150, 300 * 8) if not trans else (300 * 8, 8 * 150)
    wg, wop, x, x64, op64, ref = _dsd_case(rng, shape, 8, density, dtype, M, trans)
    xg, out, outs = _matmul_offset_x(x, wop, op64.shape[1])
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), "f32")
    assert np.array_equal(outs[0], outs[1])
    assert bool((xg == cupy.asarray(x)).all())     # x unchanged
    twin = _twin_without_split(monkeypatch, "dsd_grouped_tma_spec", launch[4])
    assert _gpu_ops._dsd_launch(8, 0, M, trans, "grouped_tma")[4] == twin
    out = _nan((M, op64.shape[1]), dtype)
    cb.matmul(xg, wop, out=out)
    assert np.array_equal(out.view(np.uint8).get(), outs[0])


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
@pytest.mark.parametrize("density", [0.3] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [7, 100] if _SMALL else [1, 7, 33, 64, 300])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("bs", [16, 32, 64])
def test_stream_kernel_f32_split(request, monkeypatch, bs, trans, M, density, split):
    """dsd_stream.cu at float32 with x split ahead by split_tf32.cu (F32_SPLIT "pass", XLO 1,
    opt-in), as test_stream_kernel checks the default."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("dsd_stream.cu needs sm_90")
    if "XLO" not in dict(_specs.dsd_stream_spec(bs, 0, M, trans, split="pass")):
        pytest.skip("no XLO spec at this shape: it would cost a CTA an SM")
    monkeypatch.setattr(_specs, "F32_SPLIT", "pass")
    _gpu_ops._launches.clear()
    try:
        if not _gpu_ops._dsd_launch(bs, 0, M, trans, "stream")[4].get("XLO"):
            pytest.skip("the split spec does not fit this GPU's shared memory (default taken)")
        _stream_case(request, monkeypatch, bs, "f32", trans, M, density, split)
    finally:
        _gpu_ops._launches.clear()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
@pytest.mark.parametrize("density", [1.0] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [7, 200] if _SMALL else [1, 7, 33, 64, 200, 300])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16", "bf16", "f32"])
@pytest.mark.parametrize("bs", [16, 32, 64])
def test_stream_kernel(request, monkeypatch, bs, kind, trans, M, density, split):
    """dsd_stream.cu (TMA copies, warp-specialised; float32 as 3xTF32; wgmma consumers where
    USE_WGMMA asks for them on sm_90, 16-bit bs 64 at M = 300 on the item queue) at small and
    large M (a partial row tile of BM 128, 256 or 512, and two tiles): rows past M zero-filled
    by the TMA, long columns through the ring many
    times, columns split into one-block chunks (split-K), and x a view at a 16-byte offset
    inside a wider buffer (its own tensor map); exact to the tolerance, every element written,
    bitwise repeatable, counters left at zero."""
    from cupy_bsparse import _gpu_ops, _specs

    if bs == 16 and kind != "f32":
        pytest.skip("16-bit bs 16 has no stream kernel")
    did = _specs.dtype_id(DTYPES[kind])
    arch = _gpu_ops._arch(cupy.cuda.runtime.getDevice())
    if split:   # (bs 64's wgmma queue, 16-bit above M = 256, splits no column)
        monkeypatch.setattr(_specs, "STREAM_WGQ", "0")
    if arch >= _specs.MIN_ARCH["dsd_stream.cu"]:   # older GPUs run dsd.cu instead
        wgmma = arch == 90 and _specs.USE_WGMMA and (16 < M <= 64 or (
            not split and _specs.stream_wgq(bs, did, M, 1, True))) and (
            (did in (1, 2) and bs == 64) or (did == 0 and _specs.f32_wgmma_on(bs)))
        assert _gpu_ops._dsd_launch(bs, did, M, trans, "stream")[4].get("WGMMA", 0) == wgmma
    _stream_case(request, monkeypatch, bs, kind, trans, M, density, split)


def _force_consumers(consumer, monkeypatch, **flags):
    """Skip unless the stream kernels run here (sm_90) and, for "wgmma", compute capability
    9.0; set USE_WGMMA for ``consumer`` and ``flags`` (more _specs attributes); clear the launch
    cache."""
    from cupy_bsparse import _gpu_ops, _specs

    arch = _gpu_ops._arch(cupy.cuda.runtime.getDevice())
    if arch < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("dsd_stream.cu needs sm_90 (TMA)")
    if consumer == "wgmma" and arch != 90:
        pytest.skip("wgmma needs compute capability 9.0")
    monkeypatch.setattr(_specs, "USE_WGMMA", consumer == "wgmma")
    for name, value in flags.items():
        monkeypatch.setattr(_specs, name, value)
    _gpu_ops._launches.clear()


def _spec_knobs(monkeypatch, name, knobs):
    """Set the #defines ``knobs`` in every spec ``_specs.<name>`` (a spec function) returns,
    for the test."""
    from cupy_bsparse import _specs

    orig = getattr(_specs, name)
    monkeypatch.setattr(_specs, name, lambda *a, **k: _specs.spec_with(orig(*a, **k), knobs))
    if set(knobs) & set(_specs.QLIST_EXCLUDES) and not knobs.get("QLIST"):
        # the queue's own order under test: QLIST by the layout is an #error with these
        monkeypatch.setattr(_specs, "QLIST_AHEAD", 0)


@pytest.fixture(params=["wgmma", "mma_sync"])
def bs64_consumers(request, monkeypatch):
    """dsd_stream.cu's and sddmm_stream.cu's consumers for 16-bit bs 64 at 16 < M <= 64 forced
    to wgmma (sm_90a) or mma.sync, whatever CUPY_BSPARSE_WGMMA says; the launch cache is cleared
    around."""
    from cupy_bsparse import _gpu_ops

    _force_consumers(request.param, monkeypatch)
    yield request.param
    _gpu_ops._launches.clear()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
@pytest.mark.parametrize("density", [0.3] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [33] if _SMALL else [17, 33, 64])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_stream_kernel_bs64_consumers(request, monkeypatch, bs64_consumers, kind, trans, M,
                                      density, split):
    """dsd_stream.cu at 16-bit bs 64, 16 < M <= 64 with either consumer: wgmma (WGMMA 1, one
    warpgroup, compute capability 9.0 only) and mma.sync (the default, and what other sm_90+
    GPUs run), as test_stream_kernel checks them."""
    from cupy_bsparse import _gpu_ops, _specs

    spec = _gpu_ops._dsd_launch(64, _specs.dtype_id(DTYPES[kind]), M, trans, "stream")[4]
    assert spec.get("WGMMA", 0) == (bs64_consumers == "wgmma")
    _stream_case(request, monkeypatch, 64, kind, trans, M, density, split)


@pytest.fixture(params=["wgmma", "mma_sync"])
def f32_consumers(request, monkeypatch):
    """dsd_stream.cu's float32 consumers at bs 16 / 32, 16 < M <= 64 forced to wgmma (3xTF32
    on wgmma .tf32, sm_90a: F32_WGMMA) or mma.sync, whatever the environment says; the launch
    cache is cleared around."""
    from cupy_bsparse import _gpu_ops

    _force_consumers(request.param, monkeypatch,
                     F32_WGMMA="1" if request.param == "wgmma" else "0")
    yield request.param
    _gpu_ops._launches.clear()


@pytest.mark.parametrize("plan", ["chunks", "split", "persist"])
@pytest.mark.parametrize("density", [0.3] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [33] if _SMALL else [17, 33, 64])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("bs", [16, 32])
def test_stream_kernel_f32_consumers(request, monkeypatch, f32_consumers, bs, trans, M, density,
                                     plan):
    """dsd_stream.cu at float32 bs 16 / 32, 16 < M <= 64 with either consumer (wgmma: one
    warpgroup, W's block split and, for x @ W, transposed in shared memory; mma.sync) on each
    plan: one CTA a column chunk, one-block chunks (split-K), and PERSIST on 3 CTAs that walk
    many chunks each; as test_stream_kernel checks them (an empty block-row and block-column,
    poisoned outputs, bitwise repeatable, counters left at zero)."""
    from cupy_bsparse import _gpu_ops, _specs, _work_lists

    monkeypatch.setattr(_specs, "STREAM_PERSIST", "1" if plan == "persist" else "0")
    if plan == "persist":
        cut = _work_lists.dsd_persist_plan
        monkeypatch.setattr(_work_lists, "dsd_persist_plan",
                            lambda layout, trans_w, _: cut(layout, trans_w, 3))
    spec = _gpu_ops._dsd_launch(bs, 0, M, trans, "stream")[4]
    assert spec.get("WGMMA", 0) == (f32_consumers == "wgmma")
    assert spec.get("PERSIST", 0) == (plan == "persist")
    _stream_case(request, monkeypatch, bs, "f32", trans, M, density, plan == "split")


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("density", [0.3] if _SMALL else [0.3, 1.0])
@pytest.mark.parametrize("M", [33] if _SMALL else [17, 33, 64])
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_sddmm_stream_bs64_consumers(request, monkeypatch, bs64_consumers, kind, M, density,
                                     beta):
    """sddmm_stream.cu at 16-bit bs 64, 16 < M <= 64 with either consumer (wgmma: one
    warpgroup, compute capability 9.0 only; mma.sync), as test_sddmm_tma_kernels checks it:
    TMA tile stores (beta = 0) and each thread's own (beta = 1)."""
    from cupy_bsparse import _gpu_ops, _specs

    spec = _gpu_ops._sddmm_launch("stream", 64, _specs.dtype_id(DTYPES[kind]), M)[3]
    assert spec.get("WGMMA", 0) == (bs64_consumers == "wgmma")
    _sddmm_tma_case(request, monkeypatch, 64, kind, "stream", M, density, beta)


def _stream_case(request, monkeypatch, bs, kind, trans, M, density, split):
    from cupy_bsparse import _specs, _work_lists

    if split:
        # one-block chunks, one CTA each (PERSIST off: the persistent cut ignores chunk_blocks;
        # one column a CTA: column groups, which the layout rule picks for dense 16-bit bs 32
        # layouts above M = 64, have their own tests)
        monkeypatch.setattr(_work_lists, "chunk_blocks", lambda *a: 1)
        monkeypatch.setattr(_specs, "STREAM_PERSIST", "0")
        monkeypatch.setattr(_specs, "STREAM_R", "1")
    rng = _rng(request)
    dtype = DTYPES[kind]
    wg, wop, x, x64, op64, ref = _dsd_case(rng, (bs * 40, bs * 24), bs, density, dtype, M, trans)
    assert _specs.dsd_kernel(bs, _specs.dtype_id(dtype), M) == "stream"
    xg, out, outs = _matmul_offset_x(x, wop, op64.shape[1])
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
    assert np.array_equal(outs[0], outs[1])
    if split:
        counters = [v for k, v in wg.layout.plan_cache.items()
                    if isinstance(k, tuple) and k[0] == "counters"]
        assert counters and all(int(cupy.count_nonzero(c)) == 0 for c in counters)


def _persistent_product_checked(request, bs, kind, M, trans, density=0.3):
    """x @ op(W) on a 40 x 24 block grid at ``density`` (an empty block-row and block-column)
    through the launcher as the caller set it up: to the tolerance, every element written,
    bitwise repeatable, the split-K counters back at zero. Returns those counters."""
    dtype = DTYPES[kind]
    wg, wop, x, x64, op64, ref = _dsd_case(_rng(request), (bs * 40, bs * 24), bs, density, dtype,
                                           M, trans)
    xg, out, outs = _matmul_offset_x(x, wop, op64.shape[1])
    _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
    assert np.array_equal(outs[0], outs[1])
    counters = [v for k, v in wg.layout.plan_cache.items()
                if isinstance(k, tuple) and k[0] == "counters"]
    assert all(int(cupy.count_nonzero(c)) == 0 for c in counters)
    return counters


@pytest.mark.parametrize("nctas", [1, 3, 7])
@pytest.mark.parametrize("M", [33] if _SMALL else [1, 33, 64])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16", "f32"] if _SMALL else ["f16", "bf16", "f32"])
@pytest.mark.parametrize("bs", [16, 32, 64])
def test_stream_persistent_runs(request, monkeypatch, bs, kind, trans, M, nctas):
    """dsd_stream.cu with PERSIST (float32's default up to M = 64) on a few CTAs, so each walks many
    chunks in turn, the ring running on across them, with columns cut between CTAs (split-K)
    and an empty block-column: exact to the tolerance, every element written, bitwise
    repeatable, counters left at zero."""
    from cupy_bsparse import _gpu_ops, _specs, _work_lists

    if bs == 16 and kind != "f32":
        pytest.skip("16-bit bs 16 has no stream kernel")
    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("dsd_stream.cu needs sm_90")
    plan = _work_lists.dsd_persist_plan
    monkeypatch.setattr(_work_lists, "dsd_persist_plan",
                        lambda layout, trans_w, _: plan(layout, trans_w, nctas))
    monkeypatch.setattr(_specs, "STREAM_PERSIST", "1")
    _gpu_ops._launches.clear()
    try:
        did = _specs.dtype_id(DTYPES[kind])
        assert _gpu_ops._dsd_launch(bs, did, M, trans, "stream")[4].get("PERSIST") == 1
        _persistent_product_checked(request, bs, kind, M, trans)
    finally:
        _gpu_ops._launches.clear()


def _queue_product_checked(request, monkeypatch, bs, kind, M, trans, nctas, density=0.3,
                           **flags):
    """dsd_stream.cu at R 1 with the ``_specs`` attributes ``flags`` set, on ``nctas`` resident
    CTAs (None: the device's count), checked as ``_persistent_product_checked`` does (at
    ``density``), the launch on the item queue with the queue's counters. Returns the launch's
    spec dict."""
    from cupy_bsparse import _gpu_ops, _specs

    if nctas:
        monkeypatch.setattr(_gpu_ops, "_resident", lambda *a: nctas)
    for name, value in {"STREAM_R": "1", "DSD_KERNEL": "stream", **flags}.items():
        monkeypatch.setattr(_specs, name, value)
    _gpu_ops._launches.clear()
    try:
        launch = _gpu_ops._dsd_launch(bs, _specs.dtype_id(DTYPES[kind]), M, trans, "stream")
        assert launch[4].get("QUEUE") == 1 and not launch[4].get("PERSIST")
        assert launch[5] == (nctas or launch[5])
        counters = _persistent_product_checked(request, bs, kind, M, trans, density)
        assert counters, "the queue ran on the layout's counters"
        return launch[4]
    finally:
        _gpu_ops._launches.clear()


@pytest.mark.parametrize("M", [65, 1100])
@pytest.mark.parametrize("nctas", [3, None], ids=["3ctas", "resident"])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16"] if _SMALL else ["f16", "bf16"])
@pytest.mark.parametrize("bs,tall", [(32, "1"), (32, "0"), (64, "0")])
def test_stream_queue(request, monkeypatch, bs, tall, kind, trans, nctas, M):
    """dsd_stream.cu on the item queue (STREAM_QUEUE, opt-in; 16-bit R 1 above M = 64): 512-
    and 256-row tiles at bs 32, 128-row ones at bs 64, M = 65 and 1100 (the last row tile
    partial), on 3 CTAs (each takes many items, the ring running on across columns and row
    tiles) or the resident count, with an empty block-row and block-column (a step with no
    copies): to the tolerance, every element written, bitwise repeatable, the queue's counters
    back at zero after every launch."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("dsd_stream.cu needs sm_90")
    spec = _queue_product_checked(request, monkeypatch, bs, kind, M, trans, nctas,
                                  STREAM_QUEUE="1", STREAM_TALL=tall,
                                  STREAM_WGQ="0")     # bs 64's mma.sync consumers
    assert not spec.get("WGMMA")
    assert spec["BM"] == {(32, "1"): 512, (32, "0"): 256, (64, "0"): 128}[bs, tall]


@pytest.mark.parametrize("M", [65, 1100])
@pytest.mark.parametrize("nctas", [3, None], ids=["3ctas", "resident"])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind", ["f16"] if _SMALL else ["f16", "bf16"])
@pytest.mark.parametrize("wgq", ["512", "256"])
def test_stream_wgmma_queue(request, monkeypatch, wgq, kind, trans, nctas, M):
    """dsd_stream.cu's wgmma consumers on the item queue with WG_EAGER (STREAM_WGQ_SETS, 16-bit
    bs 64's default above M = 256 on sm_90a): 512-row tiles (four warpgroups, x in two TMA
    boxes) and 256-row ones, M = 65 and 1100 (the last row tile partial), on 3 CTAs or the
    resident count, with an empty block-row and block-column (an item with no copies): to the
    tolerance, every element written, bitwise repeatable, the queue's counters back at zero."""
    from cupy_bsparse import _gpu_ops, _specs

    if not _gpu_ops._wgmma(cupy.cuda.runtime.getDevice()):
        pytest.skip("wgmma consumers need sm_90a (and USE_WGMMA)")
    spec = _queue_product_checked(request, monkeypatch, 64, kind, M, trans, nctas, STREAM_WGQ=wgq)
    assert spec == {**spec, **_specs.STREAM_WGQ_SETS[int(wgq)]}


@pytest.mark.parametrize("density", [0.3, 0.06])
@pytest.mark.parametrize("nctas", [3, None], ids=["3ctas", "resident"])
@pytest.mark.parametrize("knob", [{"ILV": 0}, {"ILV": 2}, {"ILV": 4}, {"QLIST": 1, "ILV": 0},
                                  {"LATE": 1}, {"LATE": 3}, {"LATE": 1, "QLIST": 1, "ILV": 0},
                                  {"LATE": 2}],
                         ids=["ilv0", "ilv2", "ilv4", "qlist", "late1", "late3", "late1_qlist",
                              "late2"])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("bs", [32, 64])
def test_stream_queue_knobs(request, monkeypatch, bs, trans, knob, nctas, density):
    """The queue's opt-in knobs on its sets, bs 32's 512-row mma.sync set and bs 64's 512-row
    wgmma set, at M = 1100 on 3 CTAs or the resident count, at d = 0.3 and 0.06 (columns of no,
    one, two blocks): ILV 0 (tile after tile), 2 and 4 (the last two row tiles' items interleaved,
    one of them partial, bs 64's default; all three), QLIST 1 (the items from a host-ordered
    list, the columns over the mean count a row tile early), LATE 1, 2 and 3 (the next item
    claimed at the item's last / second-last / third-last step; 1 also with QLIST). To the
    tolerance, every element written, bitwise repeatable, counters at zero."""
    from cupy_bsparse import _gpu_ops, _specs

    if not _gpu_ops._wgmma(cupy.cuda.runtime.getDevice()):
        pytest.skip("the queue's sets here need sm_90a (and USE_WGMMA)")
    _spec_knobs(monkeypatch, "dsd_stream_spec", knob)
    if "QLIST" in knob:                # columns over the mean count as long, so some always do
        monkeypatch.setattr(_specs, "QLIST_FACTOR", 1.0)
    spec = _queue_product_checked(request, monkeypatch, bs, "f16", 1100, trans, nctas, density,
                                  STREAM_TALL="3", STREAM_WGQ="512")
    assert spec == {**spec, **knob} and spec["QUEUE"] == 1 and spec["BM"] == 512


@pytest.mark.parametrize("density", [0.3, 0.06])
@pytest.mark.parametrize("nctas", [3, None], ids=["3ctas", "resident"])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("qlist", [0, 1])
@pytest.mark.parametrize("walk", ["ascending", "hashed", "hubs"])
def test_stream_queue_orders(request, monkeypatch, walk, qlist, trans, nctas, density):
    """The queue's walks forced (QUEUE_WALK: each column's entries ascending or by one rank of
    their x block), on 16-bit bs 64's 512-row wgmma set at M = 1100, from the counter and
    (QLIST 1, every column over the mean long) from the host's list, on 3 CTAs or the
    resident count, at d = 0.3 and 0.06. To the tolerance, every element written, bitwise
    repeatable, counters at zero, and the plan built with the walk and cached under a key
    that says so."""
    from cupy_bsparse import _gpu_ops, _specs

    if not _gpu_ops._wgmma(cupy.cuda.runtime.getDevice()):
        pytest.skip("the queue's wgmma set needs sm_90a (and USE_WGMMA)")
    if qlist:
        _spec_knobs(monkeypatch, "dsd_stream_spec", {"QLIST": 1, "ILV": 0})   # QLIST: no ILV
        monkeypatch.setattr(_specs, "QLIST_FACTOR", 1.0)
    seen = []
    wl = _gpu_ops._work_lists
    real_cut = wl._dsd_cut_plan

    def spy(layout, key, cut, walk_="ascending"):
        if key[0] in ("dsd_queue", "dsd_qlist"):   # the queue's plans: the walk asked for,
            seen.append(walk_ == walk and key[-1] == walk)       # and in the cache key
        return real_cut(layout, key, cut, walk_)

    monkeypatch.setattr(wl, "_dsd_cut_plan", spy)
    spec = _queue_product_checked(request, monkeypatch, 64, "f16", 1100, trans, nctas, density,
                                  STREAM_TALL="3", STREAM_WGQ="512", QUEUE_WALK=walk)
    assert spec["QUEUE"] == 1 and spec["BM"] == 512 and spec.get("QLIST", 0) == qlist
    assert seen and all(seen)


@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("kind,walk", [("small_world", "hubs"), ("random", "ascending"),
                                       ("barabasi_albert", "ascending")])
def test_stream_queue_walk_by_layout(request, monkeypatch, kind, walk, trans):
    """The queue's walk by the layout (QUEUE_WALK unset, the default): on 16-bit bs 64 at
    M = 1100 (the 512-row wgmma queue set forced), the bench's seed-0 W of 48 x 48 blocks at
    d = 0.15 walks "hubs" on small world (the model's gain 0.97 at either op) and "ascending"
    on random and Barabasi-Albert (0.07-0.14; ``_specs.walk_by_share``; on 132 SMs), the model
    asked for this op on the launch's resident CTAs; to the tolerance, every element written,
    bitwise repeatable, W and x unchanged."""
    from cupy_bsparse import _gpu_ops, _specs, bench

    if not _gpu_ops._wgmma(cupy.cuda.runtime.getDevice()):
        pytest.skip("the queue's wgmma set needs sm_90a (and USE_WGMMA)")
    for name, value in {"QUEUE_WALK": None, "STREAM_R": "1", "DSD_KERNEL": "stream",
                        "STREAM_TALL": "3", "STREAM_WGQ": "512"}.items():
        monkeypatch.setattr(_specs, name, value)
    wl = _gpu_ops._work_lists
    seen, real_cut = [], wl._dsd_cut_plan

    def spy(layout, key, cut, walk="ascending"):
        if key[0] in ("dsd_queue", "dsd_qlist"):
            seen.append(walk)
        return real_cut(layout, key, cut, walk)

    monkeypatch.setattr(wl, "_dsd_cut_plan", spy)
    asked, real_share = [], wl.queue_sharing

    def share_spy(layout, trans_w, walk, nctas, **kw):
        asked.append((trans_w, nctas, kw["ntiles"], kw["cap"]))
        return real_share(layout, trans_w, walk, nctas, **kw)

    monkeypatch.setattr(wl, "queue_sharing", share_spy)
    rng = _rng(request)
    w, w64 = _weight_on(rng, bench.make_mask(kind, 48, 48, 0.15, seed=0), 64, np.float16)
    wg = w.to_gpu()
    op64 = w64.T if trans else w64
    x = rng.standard_normal((1100, op64.shape[0])).astype(np.float16)
    x64 = x.astype(np.float64)
    ref = x64 @ op64
    did, dev = _specs.dtype_id(np.float16), cupy.cuda.runtime.getDevice()
    _gpu_ops._launches.clear()
    try:
        _, out, outs = _matmul_offset_x(x, wg.T if trans else wg, op64.shape[1])
        qlist = _gpu_ops._qlist_by_layout(wg.layout, trans, 64, did, 1100, dev)
        resident = _gpu_ops._dsd_launch(64, did, 1100, trans, "stream", None, None, None,
                                        qlist)[5]
    finally:
        _gpu_ops._launches.clear()
    _check(out.get(), ref, _baseline_err(x64, op64, np.float16, ref), "f16")
    assert np.array_equal(outs[0], outs[1])
    assert seen == [walk], seen
    assert asked and set(asked) == {(trans, resident, 8, _specs.WALK_SHARE_CAP)}, asked


def test_stream_wgmma_queue_rule(monkeypatch):
    """``stream_wgq``: none up to M = 256 or without wgmma, 256-row tiles up to 384, then the
    row tile that pads M the least (512 on a tie), and the launcher's spec follows it."""
    from cupy_bsparse import _gpu_ops, _specs

    if not _gpu_ops._wgmma(cupy.cuda.runtime.getDevice()):
        pytest.skip("wgmma consumers need sm_90a (and USE_WGMMA)")
    monkeypatch.setattr(_specs, "STREAM_WGQ", None)
    monkeypatch.setattr(_specs, "DSD_KERNEL", "stream")
    _gpu_ops._launches.clear()
    try:
        for M, bm in ((256, 128), (300, 256), (1024, 512), (1100, 256), (4096, 512)):
            spec = _gpu_ops._dsd_launch(64, _specs.dtype_id(np.float16), M, False, "stream")[4]
            assert spec["BM"] == bm and bool(spec.get("QUEUE")) == (bm != 128), (M, spec)
    finally:
        _gpu_ops._launches.clear()


def _even_mask(rng, nr, nc, per_col, hub=None):
    """An (nr, nc) block mask with ``per_col`` blocks in each column at random rows; ``hub``
    (column, n): that column's first n rows set as well."""
    mask = np.zeros((nr, nc), bool)
    for j in range(nc):
        mask[rng.choice(nr, per_col, replace=False), j] = True
    if hub:
        mask[:hub[1], hub[0]] = True
    return mask


def _spy_dsd_specs(monkeypatch):
    """A list that collects the spec of every ``_gpu_ops._dsd_launch`` from here on (the
    launch cache cleared first, so each call builds its spec)."""
    from cupy_bsparse import _gpu_ops

    seen, launch = [], _gpu_ops._dsd_launch

    def spy(*a, **k):
        hit = launch(*a, **k)
        seen.append(hit[4])
        return hit

    monkeypatch.setattr(_gpu_ops, "_dsd_launch", spy)
    _gpu_ops._launches.clear()
    return seen


@pytest.mark.parametrize("M", [2048, 4096])
@pytest.mark.parametrize("skewed", [False, True], ids=["even", "hub"])
def test_stream_queue_by_layout(request, monkeypatch, skewed, M):
    """The launcher's layout rule for the queue's 512-row set (STREAM_TALL unset, 16-bit bs 32
    from M = 1024): 160 block-columns of 16 blocks each take it (16 x the CTAs a wave <= 2560
    blocks); with one column of 200 blocks (a hub longer than a row tile's share) they fall
    back to ``stream_tall_fallback``'s set (the first at M = 4096, 256-row tiles at 2048). Each
    exact to the tolerance, every element written."""
    from cupy_bsparse import _gpu_ops, _specs

    if _gpu_ops._arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["dsd_stream.cu"]:
        pytest.skip("dsd_stream.cu needs sm_90")
    if cupy.cuda.Device().attributes["MultiProcessorCount"] > 160:
        pytest.skip("the even layout is sized for at most 160 CTAs a wave")
    for name, value in (("STREAM_TALL", None), ("STREAM_R", "1"), ("DSD_KERNEL", "stream"),
                        ("STREAM_QUEUE", None), ("STREAM_TALL_DEFAULT", 3),
                        ("STREAM_TALL_M", 1024), ("STREAM_TALL_FALLBACK_M", 4096)):
        monkeypatch.setattr(_specs, name, value)
    assert _specs.STREAM_TALL_SETS[2].get("QUEUE")
    rng = _rng(request)
    bs, nr, nc = 32, 256, 160
    mask = _even_mask(rng, nr, nc, 16, hub=(7, 200) if skewed else None)
    w, w64 = _weight_on(rng, mask, bs, np.float16)
    x = rng.standard_normal((M, nr * bs)).astype(np.float16)
    x64 = x.astype(np.float64)
    seen = _spy_dsd_specs(monkeypatch)
    try:
        out = _nan((M, nc * bs), np.float16)
        cb.matmul(cupy.asarray(x), w.to_gpu(), out=out)
        (spec,) = seen
        assert bool(spec.get("QUEUE")) == (not skewed)
        assert spec["BM"] == (256 if skewed and M < 4096 else 512)
        ref = (cupy.asarray(x64) @ cupy.asarray(w64)).get()
        _check(out.get(), ref, _baseline_err(x64, w64, np.float16, ref), "f16")
    finally:
        _gpu_ops._launches.clear()


@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
@pytest.mark.parametrize("M", [1024, 1500])
@pytest.mark.parametrize("skewed", [False, True], ids=["even", "hub"])
def test_stream_qlist_by_layout(request, monkeypatch, skewed, M, trans):
    """The launcher's QLIST rule (``_specs.qlist_ahead``, QLIST_AHEAD 3 here) on 16-bit bs 64's
    512-row queue set: output block-columns of 6 blocks each keep the set's own order; with one
    of 40 (over QLIST_FACTOR x the mean) the spec takes QLIST 3 and ILV 0. Each exact to the
    tolerance, every element written, for x @ W and x @ W^T."""
    from cupy_bsparse import _gpu_ops, _specs

    if not _gpu_ops._wgmma(cupy.cuda.runtime.getDevice()):
        pytest.skip("the queue's wgmma set needs sm_90a (and USE_WGMMA)")
    for name, value in (("STREAM_WGQ", None), ("STREAM_R", "1"), ("DSD_KERNEL", "stream"),
                        ("STREAM_QUEUE", None), ("QLIST_AHEAD", 3)):
        monkeypatch.setattr(_specs, name, value)
    rng = _rng(request)
    bs, nk, nn = 64, 48, 24
    mask = _even_mask(rng, nk, nn, 6, hub=(5, 40) if skewed else None)
    if trans:
        mask = mask.T.copy()
    w, w64 = _weight_on(rng, mask, bs, np.float16)
    op64 = w64.T if trans else w64
    x = rng.standard_normal((M, op64.shape[0])).astype(np.float16)
    x64 = x.astype(np.float64)
    seen = _spy_dsd_specs(monkeypatch)
    try:
        out = _nan((M, op64.shape[1]), np.float16)
        wg = w.to_gpu()
        cb.matmul(cupy.asarray(x), wg.T if trans else wg, out=out)
        (spec,) = seen
        assert spec["BM"] == 512 and spec["QUEUE"] == 1
        assert spec.get("QLIST", 0) == (3 if skewed else 0) and spec["ILV"] == (0 if skewed else 2)
        ref = (cupy.asarray(x64) @ cupy.asarray(op64)).get()
        _check(out.get(), ref, _baseline_err(x64, op64, np.float16, ref), "f16")
    finally:
        _gpu_ops._launches.clear()


@pytest.mark.parametrize("M", [1, 64, 4096])
@pytest.mark.parametrize("kernel", ["column", "grouped", "grouped_tma", "stream"])
@pytest.mark.parametrize("kind", ["f32", "f16"])
def test_skewed_layout(request, monkeypatch, kind, kernel, M):
    """Barabasi-Albert hubs: dsd.cu splits long columns by its default chunking at every M;
    dsd_grouped.cu and dsd_grouped_tma.cu (16-bit only) and dsd_stream.cu (float32 at bs 16)
    get the same products right with hub-heavy groups."""
    from cupy_bsparse import _specs

    if kernel in ("grouped", "grouped_tma") and kind == "f32":
        pytest.skip("no grouped float32 kernel at bs 16")
    if kernel == "stream" and kind != "f32":
        pytest.skip("no 16-bit bs 16 stream kernel")
    monkeypatch.setattr(_specs, "DSD_KERNEL", kernel)
    rng = _rng(request)
    dtype = DTYPES[kind]
    bs = 16
    mask = layouts.barabasi_albert(96, 2, seed=3)
    dense = rng.standard_normal((96 * bs, 96 * bs)).astype(dtype)
    w = cb.BlockSparseMatrix.from_dense(dense, bs, mask=mask)
    w64 = w.toarray().astype(np.float64)
    x = rng.standard_normal((M, 96 * bs)).astype(dtype)
    ref = x.astype(np.float64) @ w64
    wg = w.to_gpu()
    for op, r in ((wg, ref), (wg.T, x.astype(np.float64) @ w64.T)):
        out = _nan(r.shape, dtype)
        cb.matmul(cupy.asarray(x), op, out=out)
        _check(out.get(), r, _baseline_err(x.astype(np.float64), w64 if op is wg else w64.T,
                                           dtype, r), kind)
    if kernel in ("column", "stream"):
        assert _specs.dsd_kernel(bs, _specs.dtype_id(dtype), M) == kernel
        # nslots of dsd_plan ("dsd") or, where float32 up to M = 64 takes PERSIST, dsd_persist_plan
        assert any(v[3 if k[0] == "dsd" else 4] > 0 for k, v in wg.layout.plan_cache.items()
                   if isinstance(k, tuple) and k[0] in ("dsd", "dsd_persist") and len(k) == 3), \
            "no column was split"
    else:
        assert any(isinstance(k, tuple) and k[0] == "dsdg" for k in wg.layout.plan_cache)


@pytest.mark.parametrize("kind", ["f16", "bf16"])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
def test_grouped_tma_copy_mode_by_layout(request, monkeypatch, grouped_tma, trans, kind):
    """16-bit bs 8 at M = 64 on dsd_grouped_tma.cu: the launcher copies blocks in bulk where
    the plan averages at least BULK_FROM blocks a bulk copy (a small-world layout: 5.7 / 3.5
    for x @ W / x @ W^T), by cp.async below (random at d = 0.05: 2.0 / 1.4); forced either way
    (BULK_FROM 0 or huge) the products are bitwise the same (the same steps and MMAs), and
    right to the tolerance."""
    from cupy_bsparse import _gpu_ops, _specs

    rng = _rng(request)
    dtype, M, bs, n = DTYPES[kind], 64, 8, 160
    did = _specs.dtype_id(dtype)
    fn = {wcp: _gpu_ops._dsd_launch(bs, did, M, trans, "grouped_tma", wcp)[0] for wcp in (0, 1)}
    assert fn[0] is not fn[1]
    for mask, bulk in ((layouts.small_world(n, 16, 0.1, seed=1), True),
                       (_mask(rng, n, n, 0.05), False)):
        w, op64 = _weight_on(rng, mask, bs, dtype)
        op64 = op64.T if trans else op64
        x = rng.standard_normal((M, n * bs)).astype(dtype)
        ref = x.astype(np.float64) @ op64
        wg = w.to_gpu()
        outs = []
        for rule, want in ((2.4, bulk), (0.0, True), (1e9, False)):
            monkeypatch.setattr(_specs, "BULK_FROM", rule)
            wg.layout.plan_cache.pop("calls", None)       # choose again
            out = _nan(ref.shape, dtype)
            cb.matmul(cupy.asarray(x), wg.T if trans else wg, out=out)
            _check(out.get(), ref, _baseline_err(x.astype(np.float64), op64, dtype, ref), kind)
            outs.append(out.view(np.uint8).get())
            (call,) = wg.layout.plan_cache["calls"].values()
            assert call[0] is fn[0 if want else 1], f"BULK_FROM {rule}: wrong copy mode"
        assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("density", [0.1, 0.01])
@pytest.mark.parametrize("knob", ["pw", "ucol"])
@pytest.mark.parametrize("bs,kind", [(8, "f16"), (8, "f32"), (16, "f16"), (16, "bf16")])
@pytest.mark.parametrize("trans", [False, True], ids=["xW", "xWT"])
def test_grouped_tma_producer_knobs(request, monkeypatch, grouped_tma, trans, bs, kind, knob,
                                    density):
    """dsd_grouped_tma.cu's producer and consumer knobs, each at its template default and at the
    value CI compiles and the device warms: the block copies split over producer warps
    (PW_PROBE; probes/p19.py's "producer") and the consumers' unsigned slab columns
    (UCOL_PROBE). Neither changes the steps or the MMAs, so the products are bitwise those of
    the default and right to the tolerance; M = 64 with split items (5 groups), and an empty
    block-row and block-column. At density 0.01 most steps hold one entry, which leaves the
    first of two producer warps no block to copy. What this guards is the copy pipeline and the
    spec launched."""
    from cupy_bsparse import _gpu_ops, _specs

    rng = _rng(request)
    dtype, M, n = DTYPES[kind], 64, 5 * 256 // bs
    w, op64 = _weight_on(rng, _mask(rng, n, n, density), bs, dtype)
    op64 = op64.T if trans else op64
    x = rng.standard_normal((M, n * bs)).astype(dtype)
    ref = x.astype(np.float64) @ op64
    wg, xg = w.to_gpu(), cupy.asarray(x)
    base = _baseline_err(x.astype(np.float64), op64, dtype, ref)
    spec = _specs.dsd_grouped_tma_spec
    flag, default, probe = {"pw": ("PW", 1, _specs.PW_PROBE),      # #define, default, probed
                            "ucol": ("UCOL", 0, _specs.UCOL_PROBE)}[knob]
    outs = []
    for value in (default, probe):
        monkeypatch.setattr(_gpu_ops, "_launches", {})   # the launches of this spec only
        monkeypatch.setattr(_specs, "dsd_grouped_tma_spec",
                            lambda *a, v=value, **k: spec(*a, **k, **{knob: v}))
        wg.layout.plan_cache.clear()
        out = _nan(ref.shape, dtype)
        cb.matmul(xg, wg.T if trans else wg, out=out)
        _check(out.get(), ref, base, kind)
        outs.append(out.view(np.uint8).get())
        (call,) = wg.layout.plan_cache["calls"].values()
        specs = [h[4] for h in _gpu_ops._launches.values() if h[0] is call[0]]
        assert specs and all(sp.get(flag, default) == value for sp in specs), \
            f"{flag} {value} not launched"
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("bs", [8, 16])
@pytest.mark.parametrize("layout_kind", ["random", "barabasi_albert"])
def test_tables_built_on_gpu_match_host(request, monkeypatch, layout_kind, bs):
    """Layouts above HOST_TABLES_MAX_BLOCKS build their look-up tables with cupy; forced here,
    every table builder (dsd chunks, the grouped steps and their bulk copy count, counted on
    the device and the host alike, dsd_stream.cu's column groups and their step share, both
    transpositions; sddmm segments and groups, with bs 8's
    pairs, at both item sizes where they differ: bs 8; float32 bs 8's offset units, one way and
    two (SOFF, TPAIRS)) gives the same tables as the host (numpy) build of the same layout. (The grouped items are cut on the host either way.)"""
    from cupy_bsparse import _specs, _work_lists

    rng = _rng(request)
    if layout_kind == "random":
        mask = _mask(rng, 90, 70, 0.3)
    else:
        mask = layouts.barabasi_albert(96, 2, seed=3)
    host = cb.BlockSparseMatrix.from_dense(np.zeros((mask.shape[0] * bs, mask.shape[1] * bs),
                                                    np.float16), bs, mask=mask)

    def plans():
        lay = host.to_gpu().layout      # a fresh GPU layout: an empty plan cache
        lay.plan_cache.clear()
        out = []
        for tw in (False, True):
            out.append(_work_lists.dsd_plan(lay, tw, 4))
            spec = dict(_specs.dsd_grouped_spec(bs, 1, 64, tw))
            out.append(_work_lists.dsd_grouped_plan(lay, tw, spec, 1, 1000))
            _, (steps, gent, _, _) = _work_lists._grouped_steps(lay, tw, spec)
            copies = _work_lists.bulk_copies(steps, gent, cupy)     # the count, on the device
            assert copies == _work_lists.bulk_copies(steps.get(), gent.get(), np)
            out.append(copies)
            # dsd_stream.cu's column groups (R 4, and R 2 cut into 3-step chunks) and the
            # layout rule's share (a float: compared as a 0-d array)
            out.append(_work_lists.dsd_group_plan(lay, tw, 4))
            out.append(_work_lists.dsd_group_plan(lay, tw, 2, chunk=3))
            out.append(np.asarray(_work_lists.group_step_share(lay, tw, 4)))
            # the walks (v48): a group's steps and the queue's entries in "hubs" order, and
            # the queue model's sharing (numpy after the walk either way)
            out.append(_work_lists.dsd_group_plan(lay, tw, 4, walk="hubs"))
            out.append(_work_lists.dsd_queue_plan(lay, tw, walk="hubs"))
            out.append(np.asarray(_work_lists.queue_sharing(lay, tw, "hubs", 132)))
        out.append(_work_lists.sddmm_plan(lay, 4))
        for M in (64, 4096):
            out.append(_work_lists.sddmm_grouped_plan(
                lay, dict(_specs.sddmm_grouped_spec(bs, 1, M))))
            if bs == 8:    # float32's units as byte offsets (SOFF), paired one way and two
                for two_way in (False, True):
                    out.append(_work_lists.sddmm_grouped_plan(
                        lay, dict(_specs.sddmm_grouped_spec(bs, 0, M, two_way=two_way))))
                # the tail (the two-way units' forest runs on the host whatever builds the
                # tables: its cupy inputs go there and back, above)
                sp = dict(_specs.sddmm_grouped_spec(bs, 0, M, two_way=True))
                xp, src = _work_lists._tables_on(lay)
                items, gent, crow = _work_lists.sddmm_group_table(
                    src.get("indptr", xp), src.get("indices", xp), sp["R"], sp["NCX"], sp["NBLK"], xp)
                out.append(_work_lists._to_device(*_work_lists.tail_longest_first(
                    items, crow, sp["NCX"], 7, xp)))
        return out

    on_host = plans()
    monkeypatch.setattr(_work_lists, "HOST_TABLES_MAX_BLOCKS", -1)
    on_gpu = plans()

    def flat(p):
        if isinstance(p, tuple):
            return [v for q in p for v in flat(q)]
        return [p]

    for a, b in zip(on_host, on_gpu):
        fa, fb = flat(a), flat(b)
        assert len(fa) == len(fb)
        for u, v in zip(fa, fb):
            if isinstance(u, (int, np.integer)):
                assert u == v
            elif isinstance(u, np.ndarray):   # small host tables (dsd_grouped's group pointers)
                assert isinstance(v, np.ndarray) and np.array_equal(u, v)
            else:
                assert isinstance(u, cupy.ndarray) and isinstance(v, cupy.ndarray)
                assert u.dtype == v.dtype and u.shape == v.shape
                assert bool(cupy.array_equal(u, v))


def test_split_on_two_streams(request, monkeypatch):
    """Split-K counters are per stream: concurrent launches on two streams do not mix."""
    _force_chunk(monkeypatch, 1)
    rng = _rng(request)
    w, w64 = _weight(rng, (32 * 20, 32 * 8), 32, 0.7, np.float32)
    wg = w.to_gpu()
    xs = [rng.standard_normal((64, 32 * 20)).astype(np.float32) for _ in range(2)]
    streams = [cupy.cuda.Stream(non_blocking=True) for _ in range(2)]
    outs = []
    for _ in range(5):
        for x, s in zip(xs, streams):
            with s:
                outs.append((x, cb.matmul(cupy.asarray(x), wg)))
    cupy.cuda.Device().synchronize()
    for x, y in outs:
        assert _rel(y.get(), x.astype(np.float64) @ w64) < 1e-5


def test_out_overlap_on_gpu(request):
    """The GPU bounds test: an out over x's memory is refused; disjoint slices of one buffer
    (and a reversed-stride view) are told apart correctly."""
    rng = _rng(request)
    w, w64 = _weight(rng, (32, 32), 16, 1.0, np.float32)
    wg = w.to_gpu()
    buf = cupy.asarray(rng.standard_normal((8, 32)).astype(np.float32))
    with pytest.raises(ValueError, match="out shares memory with a"):
        cb.matmul(buf[:4], wg, out=buf[3:7])
    with pytest.raises(ValueError, match="out shares memory with a"):
        cb.matmul(buf[::-1][4:], wg, out=buf[3:7])     # x rows 3..0 reversed
    x = buf[:4].copy()
    out = buf[4:]                                       # disjoint: allowed
    cb.matmul(buf[:4], wg, out=out)
    assert _rel(out.get(), x.get().astype(np.float64) @ w64) < 1e-5


@pytest.mark.parametrize("limit", [166912, 101376])       # sm_80, sm_86 / sm_89
@pytest.mark.parametrize("kind", ["f16", "f32", "tf32"])
@pytest.mark.parametrize("case", ["grouped8", "grouped16", "column64", "wgrad8", "wgrad16"])
def test_smaller_shared_memory(request, monkeypatch, limit, kind, case):
    """The steps fit_shared gives GPUs with less shared memory than sm_90 (A100: 163 KB;
    sm_86 / sm_89: 99 KB), run here by lowering the device's limit: x @ W and x @ W^T on
    dsd_grouped.cu / dsd.cu at M = 64 and 300, wgrad on sddmm_grouped.cu at M = 64 and 700
    (its two item sizes); only the (M, transposition) cases whose spec fit_shared changes, and
    the test skips where none does. Exact to the tolerance and every element written."""
    from cupy_bsparse import _gpu_ops, _specs

    dtype = DTYPES[kind]
    did = _specs.dtype_id(dtype, kind == "tf32")
    tf32 = kind == "tf32"
    monkeypatch.setattr(_gpu_ops, "_smem_limit", lambda dev: limit)
    monkeypatch.setattr(_gpu_ops, "_launches", {})
    rng = _rng(request)
    ran = 0
    if case.startswith("wgrad"):
        bs = int(case[5:])
        if not _specs.sddmm_grouped_supported(bs, did):
            pytest.skip("no grouped sddmm for this dtype and block size")
        monkeypatch.setattr(_specs, "SDDMM_KERNEL", "grouped")
        for M in (64, 700):
            spec = _specs.sddmm_grouped_spec(bs, did, M)
            fitted = _specs.fit_shared("sddmm_grouped.cu", spec, limit)
            assert _specs.sddmm_grouped_launch_shape(fitted)[1] <= limit
            if fitted == spec:
                continue
            w, x, dy, mask, ref = _sddmm_case(rng, (bs * 40, bs * 30), bs, M, 1.0, dtype)
            out = cb.BlockSparseMatrix.from_layout(
                w.to_gpu().layout, cupy.full((w.nnzb, bs, bs), np.nan, dtype))
            cb.sddmm(cupy.asarray(x).T, cupy.asarray(dy), out.layout, out=out, allow_tf32=tf32)
            base = _baseline_err(x.astype(np.float64).T, dy.astype(np.float64), dtype, ref,
                                 sample=lambda p: np.where(mask, p, 0.0))
            _check(out.toarray().get().astype(np.float64), ref, base, kind)
            ran += 1
    else:
        bs = 64 if case == "column64" else int(case[7:])
        kernel = "column" if case == "column64" else "grouped"
        name = "dsd.cu" if kernel == "column" else "dsd_grouped.cu"
        if kernel == "grouped" and not _specs.grouped_supported(bs, did):
            pytest.skip("no grouped dsd for this dtype and block size")
        monkeypatch.setattr(_specs, "DSD_KERNEL", kernel)
        spec_fn = _specs.dsd_spec if kernel == "column" else _specs.dsd_grouped_spec
        for M in (64, 300):
            for trans in (False, True):
                spec = spec_fn(bs, did, M, trans)
                if _specs.fit_shared(name, spec, limit) == spec:
                    continue
                shape = (bs * 20, bs * 12) if not trans else (bs * 12, bs * 20)
                wg, wop, x, x64, op64, ref = _dsd_case(rng, shape, bs, 0.5, dtype, M, trans)
                out = _nan((M, op64.shape[1]), dtype)
                cb.matmul(cupy.asarray(x), wop, out=out, allow_tf32=tf32)
                _check(out.get(), ref, _baseline_err(x64, op64, dtype, ref), kind)
                ran += 1
    if not ran:
        pytest.skip(f"the sm_90 specs fit {limit} bytes unchanged")


def test_misaligned_block_data_is_copied(request):
    """A C-contiguous view of W's blocks that starts off a 16-byte boundary (the kernels copy
    blocks 16 bytes at a time) is copied into aligned storage, not kept."""
    rng = _rng(request)
    bs = 8
    w, w64 = _weight(rng, (bs * 6, bs * 5), bs, 0.5, np.float16)      # on the CPU
    flat = cupy.zeros(w.nnzb * bs * bs + 3, dtype=cupy.float16)
    flat[3:] = cupy.asarray(w.data).ravel()
    view = flat[3:].reshape(w.nnzb, bs, bs)
    assert view.flags.c_contiguous and view.data.ptr % 16
    m = cb.BlockSparseMatrix.from_layout(w.layout.to_gpu(), view, copy=False)
    assert m.data.data.ptr % 16 == 0
    x = cupy.asarray(rng.standard_normal((4, w.shape[0])).astype(np.float16))
    ref = x.get().astype(np.float64) @ w64
    assert _rel((x @ m).get().astype(np.float64), ref) < 1e-2
