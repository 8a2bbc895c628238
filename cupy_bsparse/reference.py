"""Vectorised numpy products with the kernel contract: the CPU fallback and the test oracle.

The functions here have exactly the signatures and semantics of the launchers in
`_gpu_ops` (see docs/design.md, "Kernel-facing contracts"), on numpy arrays. They accept any
block size and float16, bfloat16 (ml_dtypes), float32 and float64. Products accumulate in
float32 (float64 for float64 inputs) and are rounded to the output dtype once, at the end.

How they run: each output block-column of ``dsd`` is one BLAS matrix product over all of its
stored blocks, its slabs of x gathered next to each other; columns of similar length are padded
to a common length with zero blocks and batched into one ``numpy.matmul`` call. ``sddmm``
batches one small product per stored block. The work is cut into pieces of about
``_PIECE_BYTES`` of gathered operand, run on a thread pool when threadpoolctl is installed
(``_cpu_pool``).
"""

import numpy as np

from . import _cpu_pool

__all__ = ["dsd", "sddmm"]

#: Bytes of gathered operand per piece of work: small enough to stay in a core's cache, large
#: enough that numpy's per-call cost is a small part (1-16 MB measured on a 2-core Xeon:
#: docs/perf-notes.md v15).
_PIECE_BYTES = 1 << 22
#: Lengths batched together differ by at most this factor (plus one block): the padding with
#: zero blocks stays below about a quarter of the work.
_BUCKET_SPREAD = 1.25


def _acc_dtype(dtype):
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _store(dst, acc, alpha, beta):
    """dst[...] = alpha * acc + beta * dst in acc's precision, rounded once (dst unread if
    beta == 0)."""
    acc *= alpha
    if beta != 0:
        acc += beta * dst.astype(acc.dtype)
    dst[...] = acc


def _buckets(ptr):
    """Segments of a CSR-like ``ptr`` grouped by length: a list of ``(segs, starts, length)``,
    segs the segment ids of similar length (int64), starts their first entries, length the
    longest (>= 1; empty segments are left out)."""
    lens = np.diff(ptr)
    order = np.argsort(lens, kind="stable")
    lens_sorted = lens[order]
    out = []
    i = int(np.searchsorted(lens_sorted, 1))
    while i < lens_sorted.size:
        top = int(lens_sorted[i] * _BUCKET_SPREAD) + 1
        j = int(np.searchsorted(lens_sorted, top, side="right"))
        segs = order[i:j]
        out.append((segs, ptr[segs], int(lens_sorted[j - 1])))
        i = j
    return out


def _padded(starts, lens, length, values, pad):
    """((n, length) array whose row i holds values[starts[i]:starts[i] + lens[i]], then
    ``pad``; the (n, length) mask of the entries that are not padding). values is not empty."""
    k = np.arange(length)
    idx = starts[:, None] + k[None, :]
    valid = k[None, :] < lens[:, None]
    return np.where(valid, values[np.minimum(idx, values.size - 1)], pad), valid


def _dsd_plan(layout, trans_w):
    """Per bucket of output block-columns of similar length: (columns, x slab ids (n, L),
    stored block ids (n, L), valid (n, L)); the padding (valid False) takes the zero slab
    ``n_in`` and block 0, zeroed after its gather. Cached on the layout."""
    key = ("cpu_dsd", bool(trans_w))
    plan = layout.plan_cache.get(key)
    if plan is None:
        if trans_w:   # output block-column j is W's block-row j
            ptr = layout.get("indptr", np).astype(np.int64)
            src = layout.get("indices", np)
            blk = np.arange(layout.nnzb, dtype=np.int64)
        else:         # output block-column j is W's block-column j
            lt = layout.T
            ptr = lt.get("indptr", np).astype(np.int64)
            src = lt.get("indices", np)
            blk = layout.get("transpose_perm", np).astype(np.int64)
        n_in = layout.block_shape[1 if trans_w else 0]
        lens = np.diff(ptr)
        plan = []
        for cols, starts, length in _buckets(ptr):
            slabs, valid = _padded(starts, lens[cols], length, src, n_in)
            blocks, _ = _padded(starts, lens[cols], length, blk, 0)
            plan.append((cols, slabs, blocks, None if valid.all() else valid))
        layout.plan_cache[key] = plan
    return plan


#: Tile of the transposed copies (rows x columns of the source): numpy's own transposed copy
#: of a large array runs an order of magnitude slower than a plain copy, tile by tile it runs
#: within a few times of one (docs/perf-notes.md v15).
_TILE = (64, 1024)


def _transpose_into(dst, src, alpha=1.0, beta=0.0):
    """dst[...] = alpha * src.T + beta * dst, in src's dtype, rounded once to dst's; tile by
    tile, bands of tiles on the thread pool. dst is (n, m), src (m, n); dst is unread when
    beta == 0."""
    tm, tn = _TILE
    m, n = src.shape

    def band(i):
        def run():
            for j in range(0, n, tn):
                t = src[i:i + tm, j:j + tn].T
                if alpha != 1 or beta != 0:
                    t = t * alpha
                    if beta != 0:
                        t += beta * dst[j:j + tn, i:i + tm].astype(t.dtype)
                dst[j:j + tn, i:i + tm] = t
        return run
    _cpu_pool.run([band(i) for i in range(0, m, tm)], src.size)


def _slabs(a, bs, acc):
    """(a.shape[1] / bs + 1, bs, M) array of acc: slab c is a[:, c*bs:(c+1)*bs].T, and the last
    slab is zero (the padding's)."""
    m, k = a.shape
    s = np.empty((k // bs + 1, bs, m), dtype=acc)
    _transpose_into(s[:-1].reshape(k, m), a)
    s[-1] = 0
    return s


def dsd(x, data, layout, trans_w, out, alpha, beta, allow_tf32=False):
    """out = alpha * x @ op(W) + beta * out, with op(W) = W.T if trans_w else W.

    x: (M, Kin), out: (M, N), data: (nnzb, bs, bs), all of one dtype; W is the (R, C) matrix
    stored as (data, layout), so (Kin, N) = (C, R) if trans_w else (R, C). x and out may have
    any strides here (the GPU contract wants their rows unit-stride, out C-contiguous). When
    beta == 0, out is not read. allow_tf32 has no effect on the CPU. Returns out.
    """
    acc = _acc_dtype(out.dtype)
    bs = layout.blocksize
    m, n = out.shape
    # y^T, block-column j as a (bs, M) slab: y_j^T = [B_1 ... B_L] @ [x_1^T; ...; x_L^T], B_q
    # the q-th stored block of the column (op(W)'s block transposed), x_q^T its slab of x^T.
    yt = np.zeros((n // bs, bs, m), dtype=acc)
    if m and layout.nnzb:
        xs = _slabs(x, bs, acc)
        w = data.astype(acc, copy=False)
        isz = acc.itemsize
        chunks = []
        for cols, slabs, blocks, valid in _dsd_plan(layout, trans_w):
            length = slabs.shape[1]
            # a chunk: `per` columns, their blocks gathered once, then x's rows `mp` at a time;
            # each gather at most _PIECE_BYTES unless one column alone is longer
            mp = min(m, max(1, _PIECE_BYTES // (length * bs * isz)))
            per = max(1, _PIECE_BYTES // (length * bs * max(mp, bs) * isz))
            for c0 in range(0, cols.size, per):
                part = slice(c0, c0 + per)
                chunks.append((cols[part], slabs[part], blocks[part],
                               None if valid is None else valid[part], mp))
        # fewer chunks than two per core: x's rows are cut too, so every core has work (a
        # chunk's blocks are then gathered once per row range)
        spread = -(-2 * _cpu_pool.cores() // len(chunks))
        tasks = []
        for cols, slabs, blocks, valid, mp in chunks:
            panels = -(-m // mp)
            k = min(spread, panels)
            for i in range(k):
                rows = range(i * panels // k * mp, min(m, (i + 1) * panels // k * mp), mp)
                tasks.append(_dsd_piece(xs, w, yt, cols, slabs, blocks, valid, rows, trans_w))
        _cpu_pool.run(tasks, m * layout.nnzb * bs * bs)
    _transpose_into(out, yt.reshape(n, m), alpha, beta)
    return out


def _dsd_piece(xs, w, yt, cols, slabs, blocks, valid, panels, trans_w):
    """The task for output block-columns ``cols`` and x's rows in ``panels`` (a range of panel
    starts, step = panel height)."""
    def piece():
        n, length = slabs.shape
        bs = w.shape[1]
        wb = w[blocks]                                  # (n, L, bs_in_row, bs_in_col)
        if valid is not None:
            wb[~valid] = 0
        # [B_1 ... B_L] (n, bs, L * bs): op(W)'s block transposed is W_q^T (x @ W) or W_q (x @ W^T)
        bt = wb.transpose(0, 2, 1, 3) if trans_w else wb.transpose(0, 3, 1, 2)
        bt = bt.reshape(n, bs, length * bs)
        for m0 in panels:
            rows = slice(m0, m0 + panels.step)
            g = xs[slabs, :, rows].reshape(n, length * bs, -1)
            yt[cols, :, rows] = np.matmul(bt, g)
    return piece


def sddmm(x, dy, layout, out_data, alpha, beta, allow_tf32=False):
    """out_data[b] = alpha * x[:, c*bs:(c+1)*bs].T @ dy[:, k*bs:(k+1)*bs] + beta * out_data[b].

    For every block b = (c, k) of layout (R, C) with block size bs: x: (M, R), dy: (M, C),
    out_data: (nnzb, bs, bs) C-contiguous, all of one dtype. When beta == 0, out_data is not
    read. allow_tf32 has no effect on the CPU. Returns out_data.
    """
    acc = _acc_dtype(out_data.dtype)
    bs = layout.blocksize
    m = x.shape[0]
    if m == 0 or layout.nnzb == 0:
        _store(out_data, np.zeros(out_data.shape, acc), alpha, beta)
        return out_data
    # a stored block is one (bs, M) @ (M, bs) product of slabs of x^T and dy^T, batched
    # (docs/perf-notes.md v15: batching by block-row measured no faster at small M)
    xs, dys = _slabs(x, bs, acc), _slabs(dy, bs, acc)
    rows, cols = layout.get("row_ids", np), layout.get("indices", np)
    step = max(1, _PIECE_BYTES // (bs * m * acc.itemsize))

    def piece(part):
        def run():
            blocks = np.matmul(xs[rows[part]], dys[cols[part]].transpose(0, 2, 1))
            _store(out_data[part], blocks, alpha, beta)
        return run
    _cpu_pool.run([piece(slice(s, s + step)) for s in range(0, layout.nnzb, step)],
         m * layout.nnzb * bs * bs)
    return out_data
