"""GPU launchers for the block-sparse products: tile selection, look-up tables, launches.

The functions follow the kernel contract in ``docs/design.md`` (same signatures as
``cupy_bsparse.reference``) and take cupy arrays that ``cupy_bsparse.ops`` has validated.
Look-up tables are built on the GPU once per layout and kept in ``layout.plan_cache``; after
that a call does no host synchronisation, and allocates nothing unless an operand is
misaligned or non-contiguous (then it works on an aligned copy).
"""
import numpy as np

from . import compiler
from ._arrays import astype, bits, from_float32, to_float32

_DTYPE_IDS = {"float32": 0, "float16": 1, "bfloat16": 2}
_TF32 = 3
_MAX_GRID_Y = 65535


def dtype_id(dtype, allow_tf32=False):
    """Kernel element code of ``dtype`` (see kernels/common.cuh); TypeError if unsupported."""
    name = dtype.name if isinstance(dtype, np.dtype) else np.dtype(dtype).name
    if name not in _DTYPE_IDS:
        raise TypeError(f"GPU kernels support float16, bfloat16 and float32, not {name}")
    if name == "float32" and allow_tf32:
        return _TF32
    return _DTYPE_IDS[name]


# ---------------------------------------------------------------------------------------------
# Tile tables. One entry per (block size, element code, M regime); the values are the template
# parameters of kernels/dsd.cu and kernels/sddmm.cu.

def _m_regime(M):
    return "tiny" if M <= 16 else ("small" if M <= 64 else "large")


def dsd_spec(bs, did, M, trans_w):
    """Specialisation of dsd.cu for block size, element code, row count and transposition."""
    regime = _m_regime(M)
    p = {"BS": bs, "DTYPE_ID": did, "TRANS_W": int(bool(trans_w))}
    fp32 = did in (0, _TF32)
    kst = 32 if fp32 else 64              # reduction depth per pipeline stage
    p["G"] = max(1, kst // bs)
    if did == 0:
        bm, tm = {"tiny": (16, 2), "small": (64, 4), "large": (128, 8)}[regime]
        p.update(BM=bm, SIMT_TM=tm, SIMT_TN=4, STAGES=3)
    else:
        # Stages: 2 measured faster than 3-4 (more CTAs fit per SM), except small-M bs 64
        # (docs/perf-notes.md, v2).
        if regime == "tiny":
            p.update(BM=16, WARPS_M=1, WARPS_N=max(1, min(4, bs // 16)), STAGES=4)
        elif regime == "small":
            p.update(BM=64, WARPS_M=2 if bs == 64 else 4, WARPS_N=2 if bs == 64 else 1,
                     STAGES=4 if bs == 64 else 2)
        else:
            p.update(BM=128, WARPS_M=2 if bs == 64 else 4, WARPS_N=2 if bs == 64 else 1,
                     STAGES=2)
    return tuple(sorted(p.items()))


def sddmm_spec(bs, did):
    """Specialisation of sddmm.cu for block size and element code."""
    nb = {64: 2, 32: 4, 16: 8, 8: 16}[bs]
    p = {"BS": bs, "DTYPE_ID": did, "NB": nb, "STAGES": 3}
    if did == 0:
        p.update(MK=32, SIMT_TM=8 if bs == 64 else 4, SIMT_TN=8)
    else:
        p["MK"] = 32 if did == _TF32 else 64
        if bs >= 32:
            p.update(WARPS_M=2, WARPS_N=2)
        else:
            p.update(WARPS_M=1, WARPS_N=4)
    return tuple(sorted(p.items()))


def _itemsize(did):
    return 4 if did in (0, _TF32) else 2


def dsd_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, rows per CTA) of a dsd specialisation."""
    p = dict(spec)
    bs, g, bm, st, did = p["BS"], p["G"], p["BM"], p["STAGES"], p["DTYPE_ID"]
    kst = g * bs
    if did in (0, _TF32):
        a_ld = kst + 4
        b_ld = kst + 4 if p["TRANS_W"] else (8 if bs == 8 else bs + 8)
    else:
        def pad(n):
            return n + 8 if n * 2 >= 32 else n
        a_ld = pad(kst)
        b_ld = pad(kst) if p["TRANS_W"] else pad(bs)
    b_rows = bs if p["TRANS_W"] else kst
    smem = st * (bm * a_ld + b_rows * b_ld) * _itemsize(did)
    if did == 0:
        nt = (bs // p["SIMT_TN"]) * (bm // p["SIMT_TM"])
    else:
        nt = p["WARPS_M"] * p["WARPS_N"] * 32
    return nt, smem, bm


def sddmm_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, blocks per CTA) of a sddmm specialisation."""
    p = dict(spec)
    bs, nb, mk, st, did = p["BS"], p["NB"], p["MK"], p["STAGES"], p["DTYPE_ID"]
    rb = max(bs, 16) if did != 0 else bs
    nc = nb * bs
    smem = st * mk * ((rb + 8) + (nc + 8)) * _itemsize(did)
    if did == 0:
        nt = (nc // p["SIMT_TN"]) * (rb // p["SIMT_TM"])
    else:
        nt = p["WARPS_M"] * p["WARPS_N"] * 32
    return nt, smem, nb


def all_specializations():
    """Every (template, specialisation, entry point) the launchers can ask for."""
    out = []
    for bs in (8, 16, 32, 64):
        for did in (0, 1, 2, _TF32):
            for M in (1, 64, 4096):
                for tw in (False, True):
                    out.append(("dsd.cu", dsd_spec(bs, did, M, tw), "bsmm_dsd"))
            out.append(("sddmm.cu", sddmm_spec(bs, did), "bsmm_sddmm"))
    return out


# ---------------------------------------------------------------------------------------------
# Look-up tables, built on the GPU once per layout.

def _dsd_plan(layout, trans_w):
    import cupy

    key = ("dsd", bool(trans_w))
    plan = layout.plan_cache.get(key)
    if plan is None:
        if trans_w:
            # y = x @ W^T: output block-column j is W's block-row j; walk W's CSR.
            ptr = layout.get("indptr", cupy)
            src = layout.get("indices", cupy)
            blk = cupy.arange(layout.nnzb, dtype=cupy.int32)
        else:
            # y = x @ W: output block-column j is W's block-column j; walk W's CSC.
            lt = layout.T
            ptr = lt.get("indptr", cupy)
            src = lt.get("indices", cupy)
            blk = layout.get("transpose_perm", cupy)
        ent = cupy.empty((layout.nnzb, 2), dtype=cupy.int32)
        ent[:, 0] = src
        ent[:, 1] = blk
        plan = (cupy.ascontiguousarray(ptr, dtype=cupy.int32), ent)
        layout.plan_cache[key] = plan
    return plan


def _sddmm_plan(layout, nb):
    import cupy

    key = ("sddmm", nb)
    plan = layout.plan_cache.get(key)
    if plan is None:
        indptr = layout.get("indptr", cupy).astype(cupy.int64)
        counts = indptr[1:] - indptr[:-1]
        nseg = (counts + nb - 1) // nb
        seg_end = cupy.cumsum(nseg)
        total = int(seg_end[-1]) if seg_end.size else 0  # synchronize: grid size, once per layout
        seg = cupy.zeros((total, 4), dtype=cupy.int32)
        if total:
            s = cupy.arange(total, dtype=cupy.int64)
            row = cupy.searchsorted(seg_end, s, side="right")
            local = s - (seg_end[row] - nseg[row])
            first = indptr[row] + local * nb
            seg[:, 0] = row
            seg[:, 1] = first
            seg[:, 2] = cupy.minimum(nb, indptr[row + 1] - first)
        cols = cupy.ascontiguousarray(layout.get("indices", cupy), dtype=cupy.int32)
        plan = (seg, cols)
        layout.plan_cache[key] = plan
    return plan


# ---------------------------------------------------------------------------------------------
# Launchers.

def _aligned_rows(a):
    """``a`` (2-D cupy) with unit last stride and 16-byte aligned rows; copies only if needed.

    Copies go through ``_arrays.astype`` (bit copies), which CuPy supports for bfloat16 too.
    """
    it = a.itemsize
    if a.strides[1] != it or a.strides[0] % 16 or a.data.ptr % 16 or a.strides[0] < a.shape[1] * it:
        a = astype(a, a.dtype)
    return a


def _kernel(name, spec, entry, smem):
    fn = compiler.get_function(name, spec, entry)
    if smem > 48 * 1024 and fn.max_dynamic_shared_size_bytes < smem:
        fn.max_dynamic_shared_size_bytes = smem
    return fn


# (op, block size, element code, M regime, transposition, device) -> launch configuration, so a
# call after the first does dict look-ups only (host overhead is the cost of small problems).
_launches = {}


def _dsd_launch(bs, did, M, trans_w):
    import cupy

    key = ("dsd", bs, did, _m_regime(M), trans_w, cupy.cuda.runtime.getDevice())
    hit = _launches.get(key)
    if hit is None:
        spec = dsd_spec(bs, did, M, trans_w)
        nt, smem, bm = dsd_launch_shape(spec)
        hit = (_kernel("dsd.cu", spec, "bsmm_dsd", smem), nt, smem, bm)
        _launches[key] = hit
    return hit


def _sddmm_launch(bs, did):
    import cupy

    key = ("sddmm", bs, did, cupy.cuda.runtime.getDevice())
    hit = _launches.get(key)
    if hit is None:
        spec = sddmm_spec(bs, did)
        nt, smem, nb = sddmm_launch_shape(spec)
        hit = (_kernel("sddmm.cu", spec, "bsmm_sddmm", smem), nt, smem, nb)
        _launches[key] = hit
    return hit


def dsd(x, data, layout, trans_w, out, alpha, beta, allow_tf32=False):
    """``out = alpha * x @ op(W) + beta * out`` on the GPU; see docs/design.md. Returns ``out``.

    x: (M, K_in) cupy, unit last stride. data: (nnzb, bs, bs) C-contiguous. out: (M, N)
    C-contiguous. All share one dtype (float16, bfloat16 or float32).
    """
    M, N = out.shape
    if M == 0 or N == 0:
        return out
    bs = layout.blocksize
    did = dtype_id(out.dtype, allow_tf32)
    trans_w = bool(trans_w)
    x = _aligned_rows(x)
    y = _writable_target(out, beta)
    ldx = np.int64(x.strides[0] // x.itemsize)
    fn, nt, smem, bm = _dsd_launch(bs, did, M, trans_w)
    ptr, ent = _dsd_plan(layout, trans_w)
    scal = (np.float32(alpha), np.float32(beta))
    rows_per_launch = bm * _MAX_GRID_Y
    for r0 in range(0, M, rows_per_launch):
        m = min(rows_per_launch, M - r0)
        xs, ys = (x, y) if m == M else (x[r0:r0 + m], y[r0:r0 + m])
        fn((N // bs, -(-m // bm)), (nt,), (xs, ldx, data, ptr, ent, ys, np.int64(N), np.int32(m))
           + scal, shared_mem=smem)
    return _write_back(out, y)


def _writable_target(out, beta):
    """``out`` if the kernels can write it in place (C-contiguous, 16-byte aligned), else an
    aligned scratch array, holding out's values when beta reads them (see ``_write_back``)."""
    import cupy

    if out.flags.c_contiguous and out.data.ptr % 16 == 0:
        return out
    return astype(out, out.dtype) if beta != 0 else cupy.empty(out.shape, out.dtype)


def _write_back(out, target):
    """Copy a scratch ``target`` of ``_writable_target`` into ``out`` (bit copy); returns out."""
    if target is not out:
        bits(out)[...] = bits(target)
    return out


def sddmm(x, dy, layout, out_data, alpha, beta):
    """``out_data[b] = alpha * x[:, c-block].T @ dy[:, k-block] + beta * out_data[b]`` on the GPU.

    x: (M, R), dy: (M, C) cupy with unit last stride; out_data: (nnzb, bs, bs) C-contiguous.
    Returns ``out_data``.
    """
    if layout.nnzb == 0:
        return out_data
    M = x.shape[0]
    if M == 0:
        # Empty reduction: alpha * 0 + beta * out. Bit-level writes, which CuPy also supports
        # for bfloat16 (all-zero bits are 0.0 in every float format).
        if beta == 0:
            bits(out_data).fill(0)
        else:
            scaled = from_float32(to_float32(out_data) * np.float32(beta), out_data.dtype)
            bits(out_data)[...] = bits(scaled)
        return out_data
    fn, nt, smem, nb = _sddmm_launch(layout.blocksize, dtype_id(out_data.dtype))
    seg, cols = _sddmm_plan(layout, nb)
    x = _aligned_rows(x)
    dy = _aligned_rows(dy)
    target = _writable_target(out_data, beta)
    fn((seg.shape[0],), (nt,), (x, np.int64(x.strides[0] // x.itemsize), dy,
                               np.int64(dy.strides[0] // dy.itemsize), seg, cols, target,
                               np.int32(M), np.float32(alpha), np.float32(beta)),
       shared_mem=smem)
    return _write_back(out_data, target)
