"""Vectorised numpy products with the kernel contract: the CPU fallback and the test oracle.

The functions here have exactly the signatures and semantics of the launchers in
`_gpu_ops` (see docs/design.md, "Kernel-facing contracts"), on numpy arrays. They accept any
block size and float16, bfloat16 (ml_dtypes), float32 and float64. Products accumulate in
float32 (float64 for float64 inputs) and are rounded to the output dtype once, at the end.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["dsd", "sddmm"]

# Bound on the elements of one gathered operand in `sddmm` (4 MiB of float32): keeps memory
# bounded whatever M and nnzb are, and measured fastest (the gathers stay in cache).
_SDDMM_CHUNK_ELEMENTS = 1 << 20


def _acc_dtype(dtype):
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _store(dst, acc, alpha, beta):
    """dst[...] = alpha * acc + beta * dst in acc's precision, rounded once (dst unread if
    beta == 0)."""
    acc *= alpha
    if beta != 0:
        acc += beta * dst.astype(acc.dtype)
    dst[...] = acc


def dsd(x, data, layout, trans_w, out, alpha, beta, allow_tf32=False):
    """out = alpha * x @ op(W) + beta * out, with op(W) = W.T if trans_w else W.

    x: (M, Kin), out: (M, N) C-contiguous, data: (nnzb, bs, bs), all of one dtype; W is the
    (R, C) matrix stored as (data, layout), so (Kin, N) = (C, R) if trans_w else (R, C).
    When beta == 0, out is not read. allow_tf32 has no effect on the CPU. Returns out.
    """
    acc = _acc_dtype(out.dtype)
    # scipy's CSR product accumulates in the operands' dtype and streams rows of x.T, which is
    # faster than batched per-block matmuls for small blocks and needs no chunking.
    w = sp.bsr_array(
        (data.astype(acc, copy=False), layout.get("indices", np), layout.get("indptr", np)),
        shape=layout.shape,
        blocksize=(layout.blocksize, layout.blocksize),
    ).tocsr()
    # y.T = op(W).T @ x.T
    yt = (w if trans_w else w.T) @ x.astype(acc, copy=False).T
    _store(out, yt.T, alpha, beta)
    return out


def sddmm(x, dy, layout, out_data, alpha, beta, allow_tf32=False):
    """out_data[b] = alpha * x[:, c*bs:(c+1)*bs].T @ dy[:, k*bs:(k+1)*bs] + beta * out_data[b].

    For every block b = (c, k) of layout (R, C) with block size bs: x: (M, R), dy: (M, C),
    out_data: (nnzb, bs, bs) C-contiguous, all of one dtype. When beta == 0, out_data is not
    read. allow_tf32 has no effect on the CPU. Returns out_data.
    """
    acc = _acc_dtype(out_data.dtype)
    bs = layout.blocksize
    m = x.shape[0]
    # (blocks, bs, M) stacks: block-row c of x.T is xt[c]; a stored block is one batched matmul.
    xt = np.ascontiguousarray(x.T, dtype=acc).reshape(x.shape[1] // bs, bs, m)
    dyt = np.ascontiguousarray(dy.T, dtype=acc).reshape(dy.shape[1] // bs, bs, m)
    rows = layout.get("row_ids", np)
    cols = layout.get("indices", np)
    step = max(1, _SDDMM_CHUNK_ELEMENTS // max(1, bs * m))
    for start in range(0, out_data.shape[0], step):
        part = slice(start, start + step)
        blocks = np.matmul(xt[rows[part]], dyt[cols[part]].transpose(0, 2, 1))
        _store(out_data[part], blocks, alpha, beta)
    return out_data
