"""Work lists of the kernels: the look-up tables that tell each CTA which blocks to take.

Built once per layout and cached in ``layout.plan_cache``: on the host (numpy) for layouts of
at most ``HOST_TABLES_MAX_BLOCKS`` blocks, else on the GPU (cupy). The table builders
(``chunk_table``, ``group_table``, ``bulk_copies``, ``sddmm_group_table``, ``pair_units``) work
with either module; the ``_*_plan`` functions return device arrays ready for a launch.
"""
import collections
import heapq

import numpy as np

from ._arrays import get_array_module, to_host
from ._specs import QUEUE_WALKS as WALKS, m_regime, pow2_down, pow2_up

#: Layouts of at most this many blocks get their look-up tables built on the host (numpy, on
#: the layout's CPU twin) and copied to the GPU, so no CuPy kernel runs for them: a process
#: whose CuPy kernel cache is empty compiles none (docs/perf-notes.md, v7). Larger layouts
#: build them on the GPU.
HOST_TABLES_MAX_BLOCKS = 1 << 17


def _tables_on(layout):
    """(xp, the layout in xp) that ``layout``'s look-up tables are built with."""
    if layout.nnzb <= HOST_TABLES_MAX_BLOCKS:
        return np, layout.to_cpu()
    import cupy

    return cupy, layout


def _to_device(*arrays):
    """The arrays as cupy arrays (host arrays copied, device arrays as they are)."""
    import cupy

    return tuple(cupy.asarray(a) for a in arrays)


def _ready(plan):
    """``plan`` once the current stream has finished building it: tables are cached on the
    layout and may be used next from another stream."""
    import cupy

    cupy.cuda.get_current_stream().synchronize()
    return plan


def _dsd_entries(layout, trans_w, xp):
    """(ptr, ent) of dsd.cu in module ``xp`` (the module of ``layout``'s arrays): output
    block-column j takes entries ent[ptr[j]:ptr[j+1]], each (x's column block, stored block
    index). Cached on ``layout``; the caller synchronizes before using device arrays."""
    key = ("dsd_entries", bool(trans_w))
    plan = layout.plan_cache.get(key)
    if plan is None:
        if trans_w:
            # y = x @ W^T: output block-column j is W's block-row j; walk W's CSR.
            ptr = layout.get("indptr", xp)
            src = layout.get("indices", xp)
            blk = xp.arange(layout.nnzb, dtype=xp.int32)
        else:
            # y = x @ W: output block-column j is W's block-column j; walk W's CSC.
            lt = layout.T
            ptr = lt.get("indptr", xp)
            src = lt.get("indices", xp)
            blk = layout.get("transpose_perm", xp)
        ent = xp.empty((layout.nnzb, 2), dtype=xp.int32)
        ent[:, 0] = src
        ent[:, 1] = blk
        plan = (xp.ascontiguousarray(ptr, dtype=xp.int64), ent)
        layout.plan_cache[key] = plan
    return plan


def dsd_plan(layout, trans_w, chunk):
    """Work list of dsd.cu for chunks of at most ``chunk`` blocks: ``(table, colinfo, ent,
    nslots)`` (see ``chunk_table``); cached per layout and chunk length.

    A column of ``n`` blocks becomes ``ceil(n / chunk)`` chunks of near-equal length (one, with
    no blocks, for an empty column). Chunks of a split column get consecutive workspace slots.
    """
    return _dsd_cut_plan(layout, ("dsd", bool(trans_w), int(chunk)),
                         lambda ptr, xp: chunk_table(ptr, chunk, xp))


def dsd_persist_plan(layout, trans_w, nctas):
    """Work list of dsd_stream.cu with PERSIST for ``nctas`` CTAs a row tile: ``(table,
    colinfo, ent, cta_ptr, nslots)`` (see ``cta_cut``); cached per layout and CTA count."""
    return _dsd_cut_plan(layout, ("dsd_persist", bool(trans_w), int(nctas)),
                         lambda ptr, xp: cta_cut(ptr, nctas, xp))


def _column_counts(layout, trans_w):
    """Blocks of each output block-column of x @ op(W) on ``layout`` (W's block-columns, or its
    block-rows for W^T), in the module of the layout's look-up tables."""
    xp, src = _tables_on(layout)
    ptr, _ = _dsd_entries(src, trans_w, xp)
    return ptr[1:] - ptr[:-1]


def longest_column(layout, trans_w):
    """``(longest, blocks)``: the most blocks of any output block-column of x @ op(W) on
    ``layout`` (W's block-columns, or its block-rows for W^T) and the layout's block count."""
    counts = _column_counts(layout, trans_w)
    return (int(counts.max()) if counts.size else 0), int(layout.nnzb)


def long_columns(counts, factor):
    """Which of the columns with entry counts ``counts`` (numpy or cupy) are long for QLIST:
    more than ``factor`` x the mean count."""
    return counts > factor * counts.mean()


def has_long_column(layout, trans_w, factor):
    """Whether an output block-column of x @ op(W) on ``layout`` is long (``long_columns``)."""
    counts = _column_counts(layout, trans_w)
    return bool(counts.size and long_columns(counts, factor).any())


def dsd_queue_plan(layout, trans_w, walk="ascending"):
    """Work list of dsd_stream.cu with QUEUE: ``(table, colinfo, ent, nslots)`` as
    ``queue_table`` cuts it (nslots 0), each column's entries in ``walk``'s order
    (``walk_entries``); cached per layout and ``walk``."""
    return _dsd_cut_plan(layout, ("dsd_queue", bool(trans_w), str(walk)),
                         lambda ptr, xp: queue_table(ptr, xp), walk)


def queue_table(ptr, xp):
    """``chunk_table``'s ``(table, colinfo, nslots)`` with every column one chunk (slot -1, an
    empty column one chunk with no entries), its rows ordered by entry count, longest first
    (ties by column; v47: a scrambled order of ties timed the same), so a row tile's long
    columns are taken from the queue first and its last items are short ones. Works with numpy
    or cupy (``xp``)."""
    table, colinfo, nslots = chunk_table(ptr, 1 << 30, xp)   # no column split
    return table[largest_first_order(ptr[1:] - ptr[:-1], xp)], colinfo, nslots


def scrambled_index(n, xp):
    """(n,) int64 keys, distinct, that put 0..n-1 in an order where neighbours land far apart:
    ``scrambled_key`` of each."""
    return scrambled_key(xp.arange(n, dtype=xp.int64))


def scrambled_key(i):
    """int64 keys of the non-negative int array ``i``: i * 0x9E3779B1 mod 2**32 (odd, so a
    bijection on 32-bit integers)."""
    return (i.astype("int64") * 0x9E3779B1) & 0xFFFFFFFF


def entry_owners(ptr, n, xp):
    """(n,) int64: the row of CSR-like ``ptr`` (a column of a CSC one) that holds each of
    entries 0..n-1 (numpy or cupy ``xp``)."""
    return xp.searchsorted(ptr[1:], xp.arange(n, dtype=xp.int64), side="right")


def walk_rank(k, walk, xp):
    """(nk,) int64 rank of each x block 0..nk-1 in ``walk``'s one order for every column.

    ``k``: (nnzb,) non-negative integers, the x block of every dsd entry, nnzb >= 1; nk =
    k.max() + 1. "hashed" orders the blocks by ``scrambled_key``; "hubs" by the number of
    entries on the block in powers of two, most first, then by ``scrambled_key``
    (docs/perf-notes.md v47). Works with numpy or cupy (``xp``). Raises ValueError for another
    ``walk`` or an empty ``k``."""
    if walk not in ("hashed", "hubs"):
        raise ValueError(f"walk must be 'hashed' or 'hubs', got {walk!r}")
    if k.shape[0] == 0:
        raise ValueError("k must hold at least one entry's x block")
    nk = int(k.max()) + 1
    key = scrambled_index(nk, xp)
    if walk == "hubs":
        uses = xp.bincount(k, minlength=nk)
        # floor(log2(uses)) exactly, from the exponent (log2 may round under a power of two)
        bucket = xp.frexp(xp.maximum(uses, 1).astype(xp.float64))[1].astype(xp.int64) - 1
        key = ((63 - bucket) << 32) | key                        # 32 .. 63 in the high bits
    rank = xp.empty(nk, dtype=xp.int64)
    rank[xp.argsort(key)] = xp.arange(nk, dtype=xp.int64)
    return rank


def walk_keys(k, walk, xp):
    """(n,) int64 sort keys of the x blocks ``k`` (non-negative ints) in ``walk``'s order: ``k``
    itself for "ascending", else its ``walk_rank``. Works with numpy or cupy (``xp``). Raises
    ValueError for a ``walk`` not in ``WALKS`` (``_specs.QUEUE_WALKS``)."""
    if walk not in WALKS:
        raise ValueError(f"walk must be one of {WALKS}, got {walk!r}")
    k = k.astype(xp.int64)
    if walk == "ascending" or not k.shape[0]:
        return k
    return walk_rank(k, walk, xp)[k]


def walk_entries(ptr, ent, walk, xp):
    """dsd entries ``(ptr, ent)`` with each output block-column's entries ent[ptr[j]:ptr[j+1]]
    in ``walk``'s order: "ascending" (as stored: ``ent`` itself), or ordered by ``walk_rank`` of
    their x block, one relabelling of x's blocks for every column, so columns that share x
    blocks reach them at about the same step whatever their place in a band (docs/perf-notes.md
    v46-v47). Otherwise a new (nnzb, 2) int32 array; ``ptr`` is unchanged. Works with numpy or
    cupy (``xp``). Raises ValueError for a ``walk`` not in ``WALKS`` (``_specs.QUEUE_WALKS``)."""
    if walk == "ascending":
        return ent
    key = walk_keys(ent[:, 0], walk, xp)
    if not key.shape[0]:
        return ent.copy()
    order = xp.argsort((entry_owners(ptr, key.shape[0], xp).astype(xp.int64) << 32) | key)
    return xp.ascontiguousarray(ent[order])


#: The queue model's step and epilogue (``queue_sharing``), in 10 ns: 16-bit bs 64's 512-row
#: queue set at M = 4096 (v46's timeline, p19 swq: about 1.26 us a step, 1 us an epilogue).
QUEUE_MODEL_STEP, QUEUE_MODEL_EPILOGUE = 126, 100


def queue_sharing(layout, trans_w, walk, nctas, ntiles=8, cap=8):
    """The item queue's x-tile sharing in a CPU model: the mean over every step of how many
    other CTAs read the same x tile at the same time (other steps on the same row tile and x
    block overlapping it; a CTA's own steps never overlap), each count capped at ``cap``.

    ``nctas`` CTAs take ``ntiles`` row tiles' (row tile, output block-column) items in the
    queue's order (a tile's columns longest first, ``queue_table``), each the next item as it
    finishes; an item walks its column's entries in ``walk``'s order (``walk_entries``), one
    step of ``QUEUE_MODEL_STEP`` an entry, then an epilogue. Steps on the same (row tile, x
    block) overlapping in time count as shared (probes/sim_queue_sharing.py; the cap, v48:
    more CTAs on one tile gain nothing further, and Barabasi-Albert's hubs ranked the walks
    as measured only with it). A float; 0.0 for an empty layout. Cached on ``layout``. Costs
    about ntiles x nnzb steps of numpy work (plus a Python loop over the items). Raises
    ValueError for ``nctas`` or ``ntiles`` below 1, ``cap`` below 0, or an unknown ``walk``."""
    key = ("queue_sharing", bool(trans_w), str(walk), int(nctas), int(ntiles), int(cap))
    hit = layout.plan_cache.get(key)
    if hit is not None:
        return hit
    if nctas < 1 or ntiles < 1 or cap < 0:
        raise ValueError(f"nctas and ntiles must be >= 1 and cap >= 0, got {nctas}, {ntiles}, "
                         f"{cap}")
    xp, src = _tables_on(layout)
    ptr, ent = _dsd_entries(src, trans_w, xp)
    k = to_host(walk_entries(ptr, ent, walk, xp)[:, 0]).astype(np.int64)
    ptr = to_host(ptr)
    counts = ptr[1:] - ptr[:-1]
    if not k.size:
        layout.plan_cache[key] = 0.0
        return 0.0
    cols = np.tile(largest_first_order(counts, np), ntiles)      # the items, tile after tile
    n = counts[cols]
    free = [0] * min(nctas, cols.size)                          # when each CTA is next free
    start = np.empty(cols.size, dtype=np.int64)
    for i, length in enumerate((np.maximum(n, 1) * QUEUE_MODEL_STEP
                                + QUEUE_MODEL_EPILOGUE).tolist()):
        start[i] = free[0]
        heapq.heapreplace(free, free[0] + length)
    first = np.repeat(np.cumsum(n) - n, n)                      # each step's item's first step
    step = np.arange(first.size, dtype=np.int64) - first
    t = np.repeat(start, n) + step * QUEUE_MODEL_STEP
    tile = np.repeat(np.arange(cols.size, dtype=np.int64) // counts.size, n) * (k.max() + 1)
    tile += k[np.repeat(ptr[cols], n) + step]
    when = np.sort(tile * (int(t.max()) + 2 * QUEUE_MODEL_STEP) + t)
    others = (np.searchsorted(when, when + QUEUE_MODEL_STEP, side="left")
              - np.searchsorted(when, when - QUEUE_MODEL_STEP, side="right") - 1)
    share = float(np.minimum(others, cap).mean())
    layout.plan_cache[key] = share
    return share


def dsd_queue_list_plan(layout, trans_w, ntiles, ahead, ilv, factor=2.0, walk="ascending"):
    """Work list of dsd_stream.cu with QUEUE and QLIST for ``ntiles`` row tiles: ``(table,
    colinfo, ent, nslots)`` as ``queue_list`` orders it (nslots 0), the entries as
    ``dsd_queue_plan`` walks them; cached per layout and arguments."""
    return _dsd_cut_plan(layout, ("dsd_qlist", bool(trans_w), int(ntiles), int(ahead), int(ilv),
                                  float(factor), str(walk)),
                         lambda ptr, xp: queue_list(ptr, ntiles, ahead, ilv, factor, xp), walk)


def queue_list(ptr, ntiles, ahead, ilv, factor, xp):
    """The item queue as a list (QLIST): ``queue_table``'s ``(table, colinfo, nslots)`` with one
    row an item, its row tile in the slot field.

    Row tile after row tile, each tile's columns longest first, the last ``ilv`` (>= 2) tiles'
    items interleaved column by column (ILV's order). A column with more than ``factor`` x the
    mean entry count is long: tile r's long items go ahead of tile r - ``ahead``'s others (the
    first ``ahead`` tiles' long items lead the queue), so a hub column's items start ``ahead``
    tiles early instead of ending the launch (docs/perf-notes.md v38). ``ahead`` 0 keeps every
    column in the tile order. Works with numpy or cupy (``xp``); the list is built on the host.
    """
    table, colinfo, nslots = queue_table(ptr, xp)
    host = to_host(table)
    n = host[:, 2] - host[:, 1]
    long_ = long_columns(n, factor) if ahead and n.size else np.zeros(n.shape, dtype=bool)
    longs, others = host[long_], host[~long_]
    nt = min(ilv, ntiles) if ilv >= 2 else 0

    def tile(rows, t):
        rows = rows.copy()
        rows[:, 3] = t
        return rows

    parts = [tile(longs, t) for t in range(min(ahead, ntiles))]
    for t in range(ntiles - nt):
        if ahead and t + ahead < ntiles:
            parts.append(tile(longs, t + ahead))
        parts.append(tile(others, t))
    if ahead:                          # long items of tiles the loop did not reach (ahead < nt)
        parts += [tile(longs, t) for t in range(min(ntiles - nt + ahead, ntiles), ntiles)]
    if nt:
        last = np.repeat(others, nt, axis=0)
        last[:, 3] = np.tile(np.arange(ntiles - nt, ntiles, dtype=np.int32), others.shape[0])
        parts.append(last)
    out = np.concatenate(parts) if parts else host[:0]
    return xp.asarray(out), colinfo, nslots


def _dsd_cut_plan(layout, key, cut, walk="ascending"):
    """``layout``'s cached plan under ``key`` (whose second field is trans_w), else built: the
    dsd entries (in ``walk``'s order, ``walk_entries``) cut by ``cut(ptr, xp)`` into
    ``(table, colinfo, nslots, *extra)``, returned as device arrays ``(table, colinfo, ent,
    *extra, nslots)``."""
    plan = layout.plan_cache.get(key)
    if plan is None:
        xp, src = _tables_on(layout)
        ptr, ent = _dsd_entries(src, key[1], xp)
        ent = walk_entries(ptr, ent, walk, xp)
        table, colinfo, nslots, *extra = cut(ptr, xp)
        plan = _to_device(table, colinfo, ent, *extra) + (nslots,)
        layout.plan_cache[key] = _ready(plan)
    return plan


def column_group_table(ptr, ent, r, xp, walk="ascending"):
    """Steps of dsd_stream.cu with R > 1 from dsd.cu's look-up entries ``(ptr, ent)``: group g
    owns output block-columns g * r .. g * r + r - 1, and its steps are the union of their
    entries' x blocks, ascending or in ``walk``'s order (``walk_rank``, one for every group).

    Returns ``(gptr, gent)``: gptr (ngroups + 1,) int64, group g's steps gent[gptr[g]:gptr[g+1]];
    gent (nsteps, 4 * ceil((r + 2) / 4)) int32 rows (x's block, mask, stored block of the
    group's column 0, ..., of column r - 1, padding), -1 where the column has no block (bit q of
    the mask set where column q has one). Works with numpy or cupy (``xp``).
    """
    ncols = ptr.size - 1
    ngroups = -(-ncols // r)
    nnz = ent.shape[0]
    width = 4 * -(-(r + 2) // 4)
    col = entry_owners(ptr, nnz, xp)
    kin = int(ent[:, 0].max()) + 1 if nnz else 1
    key = (col // r) * kin + walk_keys(ent[:, 0], walk, xp)
    order = xp.argsort(key)
    key, q = key[order], (col % r)[order]
    new = xp.ones(nnz, dtype=bool)
    new[1:] = key[1:] != key[:-1]
    sid = xp.cumsum(new) - 1
    gent = xp.full((int(new.sum()), width), -1, dtype=xp.int32)
    gent[:, 1] = 0
    gent[sid, 0] = ent[order, 0]
    gent[sid, 2 + q] = ent[order, 1]
    for c in range(r):
        gent[:, 1] |= (gent[:, 2 + c] >= 0).astype(xp.int32) << c
    gptr = xp.searchsorted(key[new] // kin, xp.arange(ngroups + 1), side="left").astype(xp.int64)
    return gptr, gent


def _group_steps(layout, trans_w, r, walk="ascending"):
    """``(xp, gptr, gent)``: ``column_group_table`` of ``layout``'s dsd entries in module
    ``xp``, built once per layout, R and walk for both the layout rule and the plan."""
    key = ("group_steps", bool(trans_w), int(r), str(walk))
    hit = layout.plan_cache.get(key)
    if hit is None:
        xp, src = _tables_on(layout)
        hit = (xp,) + column_group_table(*_dsd_entries(src, trans_w, xp), r, xp, walk)
        if xp is not np:
            hit = _ready(hit)          # cached, so maybe used next from another stream
        layout.plan_cache[key] = hit
    return hit


def group_step_share(layout, trans_w, r, walk="ascending"):
    """Steps of dsd_stream.cu with R = ``r`` over its steps with R = 1 (``layout``'s stored
    blocks): the share of x's tile copies left when a CTA owns r output block-columns (random
    d = 0.1: about 0.86 at r = 4; small world: 0.39). The same for every ``walk``; the steps are
    built (and cached) in its order, for the plan that may follow."""
    return _group_steps(layout, trans_w, r, walk)[2].shape[0] / max(layout.nnzb, 1)


def dsd_group_plan(layout, trans_w, r, chunk=None, walk="ascending"):
    """Work list of dsd_stream.cu with R = ``r`` > 1: ``(table, colinfo, gent, nslots)``, the
    groups' steps (``column_group_table``, in ``walk``'s order) cut as ``chunk_table`` cuts
    columns, into chunks of at most ``chunk`` steps (None: about twice the mean steps a group,
    a power of two, at least 2, so the group of a hub column does not form a tail); cached per
    layout, R, chunk and walk."""
    key = ("dsd_group", bool(trans_w), int(r), chunk, str(walk))
    plan = layout.plan_cache.get(key)
    if plan is None:
        xp, gptr, gent = _group_steps(layout, trans_w, r, walk)
        if chunk is None:
            chunk = max(2, pow2_up(-(-2 * gent.shape[0] // max(gptr.size - 1, 1))))
        table, colinfo, nslots = chunk_table(gptr, chunk, xp)
        plan = _to_device(table, colinfo, gent) + (nslots,)
        layout.plan_cache[key] = _ready(plan)
    return plan


def chunk_table(ptr, chunk, xp):
    """Cut the columns of a CSR-like ``ptr`` (int64) into chunks of at most ``chunk`` entries.

    Returns ``(table, colinfo, nslots)``: table (n_chunks, 4) int32 rows (column, first entry,
    end entry, workspace slot or -1 for an unsplit column); colinfo (ncols, 2) int32 rows
    (first slot, number of chunks); nslots the number of slots. Works with numpy or cupy
    (``xp``); one device-to-host transfer for the sizes.
    """
    count = ptr[1:] - ptr[:-1]
    nch = xp.maximum((count + chunk - 1) // chunk, 1)
    j, local, nslots = _chunk_index(nch, xp)
    first = ptr[j] + local * count[j] // nch[j]
    end = ptr[j] + (local + 1) * count[j] // nch[j]
    return _cut_table(nch, j, local, first, end, nslots, xp)


def _chunk_index(nch, xp):
    """``(j, local, nslots)`` of a cut of columns into ``nch`` (ncols,) chunks each, in column
    order: each chunk's column and its index within the column (int64), and the workspace
    slots (the chunks of columns cut more than once). One device-to-host transfer."""
    ends = xp.cumsum(nch)
    slot_end = xp.cumsum(xp.where(nch > 1, nch, 0))
    if ends.size:
        total, nslots = (int(v) for v in xp.stack([ends[-1], slot_end[-1]]).tolist())
    else:
        total = nslots = 0
    c = xp.arange(total, dtype=xp.int64)
    j = xp.searchsorted(ends, c, side="right")
    return j, c - (ends[j] - nch[j]), nslots


def cta_cut(ptr, nctas, xp):
    """Cut the columns of a CSR-like ``ptr`` (int64) for ``nctas`` persistent CTAs (stream-K).

    The entries, in column order, are cut at ``c * S // P`` for c = 1 .. P - 1 (S entries, P =
    ``nctas``, at most S): CTA c takes the chunks that lie in ``[c * S // P, (c + 1) * S // P)``,
    so no CTA has more than ``ceil(S / P)`` entries whatever the column lengths; a column
    crossed by a cut becomes one chunk per CTA it touches (workspace slots, as chunk_table's);
    an empty column is one chunk with no entries, taken by the CTA where it falls.

    Returns ``(table, colinfo, nslots, cta_ptr)``: chunk_table's three, and cta_ptr (P + 1,)
    int32, CTA c taking chunks ``cta_ptr[c] .. cta_ptr[c + 1] - 1``. Works with numpy or cupy
    (``xp``); two device-to-host transfers (the entry count, then the sizes).
    """
    if nctas < 1:
        raise ValueError(f"nctas must be at least 1, got {nctas}")
    total_entries = int(ptr[-1]) if ptr.size else 0
    P = max(1, min(int(nctas), total_entries))
    bounds = xp.arange(P + 1, dtype=xp.int64) * total_entries // P
    lo, hi = ptr[:-1], ptr[1:]
    r = xp.searchsorted(bounds, lo, side="right")                 # first bound past a start
    nch = xp.maximum(xp.searchsorted(bounds, hi, side="left") - r, 0) + 1
    j, local, nslots = _chunk_index(nch, xp)
    last = local == nch[j] - 1
    first = xp.where(local == 0, lo[j], bounds[xp.minimum(r[j] + local - 1, P)])
    end = xp.where(last, hi[j], bounds[xp.minimum(r[j] + local, P)])
    table, colinfo, nslots = _cut_table(nch, j, local, first, end, nslots, xp)
    cta_ptr = xp.empty(P + 1, dtype=xp.int32)
    cta_ptr[:P] = xp.searchsorted(first, bounds[:P], side="left")
    cta_ptr[P] = j.size
    return table, colinfo, nslots, cta_ptr


def _cut_table(nch, j, local, first, end, nslots, xp):
    """chunk_table's ``(table, colinfo, nslots)`` from a cut: ``nch`` (ncols,) chunks per
    column (``nslots`` the sum of those above one); per chunk, in column order, its column
    ``j``, its index ``local`` within the column and its entry range ``first:end``."""
    split = xp.where(nch > 1, nch, 0)
    slot0 = xp.cumsum(split) - split
    table = xp.empty((j.size, 4), dtype=xp.int32)
    table[:, 0] = j
    table[:, 1] = first
    table[:, 2] = end
    table[:, 3] = xp.where(nch[j] > 1, slot0[j] + local, -1)
    colinfo = xp.stack([slot0, nch], axis=1).astype(xp.int32)
    return table, colinfo, nslots


def balanced_table(gptr, weight, budget):
    """Cut groups of steps into at most ``budget`` items of near-equal weight (numpy).

    ``gptr`` (ngroups + 1,) int64: group g owns steps gptr[g] .. gptr[g+1]; ``weight``
    (n_steps,) positive float: each step's cost. Each group becomes n_g >= 1 items of
    consecutive steps (never an empty one, except the one item of an empty group), with
    n_g about its weight over the largest item weight, the smallest such that the items
    number at most ``budget`` (or one per step, if that is fewer). Returns chunk_table's
    ``(table, colinfo, nslots)`` with groups for columns. Needs ``budget >= ngroups``.
    """
    gptr = np.asarray(gptr, dtype=np.int64)
    ngroups = gptr.size - 1
    if budget < ngroups:
        raise ValueError(f"budget must be at least the group count {ngroups}, got {budget}")
    nsteps = np.diff(gptr)
    weight = np.asarray(weight, dtype=np.float64)
    if weight.shape != (int(gptr[-1]),) or not (weight > 0).all():
        raise ValueError(f"weight must be {int(gptr[-1])} positive step weights")
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    wg = cum[gptr[1:]] - cum[gptr[:-1]]

    def pieces(target):
        with np.errstate(divide="ignore", invalid="ignore"):
            n = np.ceil(wg / target) if target > 0 else nsteps
        return np.maximum(np.minimum(n, nsteps), 1).astype(np.int64)

    nch = pieces(0.0)                  # one item per step
    if nch.sum() > budget:
        # the smallest largest-item weight whose cut fits the budget, to a part in 1e6
        lo, hi = wg.sum() / budget, float(wg.max())
        while hi - lo > 1e-6 * hi:
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if pieces(mid).sum() <= budget else (mid, hi)
        nch = pieces(hi)
    ends = np.cumsum(nch)
    j = np.repeat(np.arange(ngroups, dtype=np.int64), nch)
    k = np.arange(j.size, dtype=np.int64) - (ends - nch)[j]      # item k of n_g in its group
    a, b, n = gptr[j], gptr[j + 1], nch[j]
    # item k ends where the group's running weight reaches (k + 1) / n of it; then at least
    # one step each: ends no later than b - (n - 1 - k), strictly increasing within a group
    end = np.searchsorted(cum, cum[a] + wg[j] * (k + 1) / n, side="left")
    end = np.minimum(np.maximum(end, a + 1), b - (n - 1 - k))
    end[k == n - 1] = b[k == n - 1]
    shift = j * (2 * int(gptr[-1]) + 4)                          # keep groups apart
    end = np.maximum.accumulate(end - k + shift) + k - shift
    first = np.where(k == 0, a, np.concatenate([[0], end[:-1]]))
    return _cut_table(nch, j, k, first, end, int(nch[nch > 1].sum()), np)


def _runs(new, xp):
    """``(ids, starts)`` of the runs of a 1-D array, given ``new`` (bool, True where a run
    starts; new[0] is True unless empty): each element's 0-based run id, and each run's first
    index. One device-to-host transfer (the run count). Starts come from searchsorted, not
    nonzero: compute-sanitizer racecheck reports hazards inside cupy's nonzero scan kernel."""
    ids = xp.cumsum(new.astype(xp.int64)) - 1
    nruns = int(ids[-1]) + 1 if ids.size else 0
    return ids, xp.searchsorted(ids, xp.arange(nruns, dtype=xp.int64), side="left")


def group_table(ptr, ent, r, kw_blocks, cap, kin_blocks, bs, xp, by_column=False):
    """Steps of dsd_grouped.cu from dsd.cu's look-up entries ``(ptr, ent)``.

    Output block-columns are taken ``r`` at a time (groups); a group's entries are walked in
    slabs of ``kw_blocks`` of x's ``kin_blocks`` column blocks, block-row by block-row (so a
    step's blocks spread over the group's columns, and over the warps that own them), and a
    slab with more than ``cap`` entries becomes several steps of near-equal length. A step
    loads only the x column blocks from its first entry's block-row to its last's. With
    ``by_column`` (x @ W^T), a step, once cut, lists its entries column by column instead: per
    output column the order (by x column) is the same, and W's row j's blocks in the slab,
    which lie next to each other in its storage, become one run, one bulk copy (v17,
    probes/p16.py: bs 16 at M = 4096 0.468 -> 0.417 ms; 0.544 -> 0.480 on a Barabasi-Albert
    layout).
    Returns ``(steps, gent, gptr)``: steps (n_steps, 4) int32 rows (first x column, first
    entry, end entry, x columns loaded); gent (nnzb, 2) int32 rows (stored block,
    (step-local column block << 16) | column in the group); gptr (n_groups + 1,) int64, group
    g owning steps gptr[g] .. gptr[g+1]. Works with numpy or cupy (``xp``); one
    device-to-host transfer for the step count.
    """
    ptr = ptr.astype(xp.int64)
    ncols = ptr.size - 1
    nnz = int(ent.shape[0])
    ngroups = -(-ncols // r)
    nslabs = max(1, -(-kin_blocks // kw_blocks))
    col = entry_owners(ptr, nnz, xp)
    c = ent[:, 0].astype(xp.int64)
    key = (col // r) * nslabs + c // kw_blocks
    order = xp.argsort((key * kw_blocks + c % kw_blocks) * r + col % r)
    key, c, col = key[order], c[order], col[order]
    # runs of equal (group, slab) key
    _, start = _runs(xp.concatenate([xp.ones(min(1, nnz), bool), key[1:] != key[:-1]]), xp)
    end = xp.concatenate([start[1:], xp.full(min(1, start.size), nnz, dtype=xp.int64)])
    length = end - start
    nst = (length + cap - 1) // cap
    st_end = xp.cumsum(nst)
    total = int(st_end[-1]) if st_end.size else 0
    s = xp.arange(total, dtype=xp.int64)
    run = xp.searchsorted(st_end, s, side="right")
    local = s - (st_end[run] - nst[run])
    e0 = start[run] + local * length[run] // nst[run]
    e1 = start[run] + (local + 1) * length[run] // nst[run]
    c0 = c[e0] if total else xp.zeros(0, xp.int64)
    steps = xp.empty((total, 4), dtype=xp.int32)
    steps[:, 0] = c0 * bs
    steps[:, 1] = e0
    steps[:, 2] = e1
    steps[:, 3] = (c[e1 - 1] - c0 + 1) * bs if total else xp.zeros(0, xp.int64)
    step_of = xp.searchsorted(e0, xp.arange(nnz, dtype=xp.int64), side="right") - 1
    gent = xp.empty((nnz, 2), dtype=xp.int32)
    gent[:, 0] = ent[:, 1][order]
    gent[:, 1] = ((c - c0[step_of]) << 16) | (col % r) if nnz else xp.zeros(0, xp.int64)
    if by_column and nnz:
        gent = gent[xp.argsort((step_of * r + col % r) * kw_blocks + c % kw_blocks)]
    step_group = key[start][run] // nslabs
    gptr = xp.searchsorted(step_group, xp.arange(ngroups + 1, dtype=xp.int64), side="left")
    return steps, gent, gptr.astype(xp.int64)


#: A step of dsd_grouped_tma.cu costs about as much as this many of its stored blocks, by
#: (element code, block size) (weighs the item cut; 100 where not listed). v19 fitted 100 for
#: 16-bit from p16's bs 8 x @ W at M = 64 (H200) and 28 for float32 (3xTF32: the same 1.4 us a
#: step leaves 50 ns a block of the random layout's 0.178 ms). v21's sweep (p18 items, H100,
#: M = 64, x @ W and x @ W^T) moved 16-bit to 50 at bs 8 (small world 0.093 -> 0.083 ms,
#: Barabasi-Albert 0.088 / 0.083 -> 0.082 / 0.076) and 25 at bs 16 (small world 0.051 / 0.053
#: -> 0.046 / 0.048, Barabasi-Albert 0.055 / 0.057 -> 0.049 / 0.053); random moved within 1.5%
#: and float32 bs 8 read best at 25-28 (docs/perf-notes.md v21). dsd_grouped.cu (M <= 16,
#: sm < 90) takes the same weights, unmeasured there.
STEP_BLOCKS = {(1, 8): 50, (2, 8): 50, (1, 16): 25, (2, 16): 25, (4, 8): 28}


def step_blocks(spec):
    """``STEP_BLOCKS`` for a dsd_grouped(_tma) spec's element code and block size."""
    spec = dict(spec)
    return STEP_BLOCKS.get((spec["DTYPE_ID"], spec["BS"]), 100)


def _grouped_steps(layout, trans_w, spec):
    """``(key, (steps, gent, gptr, blocks))`` of dsd_grouped.cu's plan, cached per layout and
    step shape under ``key``: steps and gent on the device, gptr and each step's block count
    on the host."""
    p = dict(spec)
    bs, r, kwb, cap = p["BS"], p["R"], p["KW"] // p["BS"], p["CAP"]
    key = ("dsdg", bool(trans_w), r, kwb, cap)
    base = layout.plan_cache.get(key)
    if base is None:
        xp, src = _tables_on(layout)
        ptr, ent = _dsd_entries(src, trans_w, xp)
        kin = layout.block_shape[1 if trans_w else 0]
        steps, gent, gptr = group_table(ptr, ent, r, kwb, cap, kin, bs, xp, by_column=trans_w)
        base = _to_device(steps, gent) + (to_host(gptr), to_host(steps[:, 2] - steps[:, 1]))
        layout.plan_cache[key] = _ready(base)
    return key, base


def bulk_copies(steps, gent, xp):
    """Bulk copies dsd_grouped_tma.cu's producer issues for the stored blocks of ``steps``
    (``group_table``'s steps and gent): one per run of consecutive stored-block indices among a
    step's entries, within each 32 entries (a warp's pass). One transfer for the count."""
    nnz = int(gent.shape[0])
    if not nnz:
        return 0
    e = xp.arange(nnz, dtype=xp.int64)
    first = steps[:, 1].astype(xp.int64)
    step_of = xp.searchsorted(first, e, side="right") - 1
    blk = gent[:, 0].astype(xp.int64)
    prev = xp.concatenate([xp.full(1, -2, dtype=xp.int64), blk[:-1]])
    start = ((e - first[step_of]) % 32 == 0) | (blk != prev + 1)
    return int(xp.count_nonzero(start))


def blocks_per_copy(layout, trans_w, spec):
    """Mean stored blocks per bulk copy of dsd_grouped_tma.cu's plan for ``spec``'s step shape
    (counted once, on the plan's device tables, and cached with it); 0.0 for an empty layout."""
    key, (steps, gent, _, _) = _grouped_steps(layout, trans_w, spec)
    copies = layout.plan_cache.get(key + ("copies",))
    if copies is None:
        copies = layout.plan_cache[key + ("copies",)] = bulk_copies(
            steps, gent, get_array_module(steps))
    return layout.nnzb / copies if copies else 0.0


def dsd_grouped_plan(layout, trans_w, spec, m_tiles, resident, balance=None):
    """Work list of dsd_grouped.cu: ``((item, ginfo, steps, gent), nslots)``, cached per layout,
    specialisation and item budget. Groups are split (combined as dsd.cu's chunks) when there
    are fewer of them than resident CTAs, into items of near-equal weight (``balanced_table``:
    a step weighs 1 + its blocks / ``step_blocks(spec)``), as many as fit one wave; or, with
    ``balance`` (a factor; ``_specs.GROUP_BALANCE``), where the heaviest group outweighs the
    mean by more than it (``balance_budget``)."""
    p = dict(spec)
    key, (steps, gent, gptr, blocks) = _grouped_steps(layout, trans_w, spec)
    budget = _item_budget(gptr.size - 1, m_tiles, resident)
    per_step = step_blocks(spec)
    if budget is None and balance is not None:
        budget = balance_budget(gptr, 1.0 + blocks / per_step, balance)
        if budget is not None:
            # at most BALANCE_MAX_WORKSPACE bytes of float32 partials (slots x M x width),
            # else unsplit: the slots are at most the budget's items beyond the groups' count
            tile = m_tiles * p["BM"] * p["R"] * p["BS"] * 4
            if (budget - (gptr.size - 1)) * 2 * tile > BALANCE_MAX_WORKSPACE:
                budget = None
    ikey = key + (budget, per_step)
    items = layout.plan_cache.get(ikey)
    if items is None:
        weight = 1.0 + blocks / per_step
        if budget is None:               # one item per group: host
            item, ginfo, nslots = chunk_table(gptr, 1 << 40, np)
        else:
            item, ginfo, nslots = balanced_table(gptr, weight, budget)
        items = _to_device(item, ginfo) + (nslots,)
        layout.plan_cache[ikey] = _ready(items)
    item, ginfo, nslots = items
    return (item, ginfo, steps, gent), nslots


#: The most bytes of split partials ``balance_budget``'s cut may take (float32 tiles, its
#: slots x M x the group's width); a cut that could take more is not made.
BALANCE_MAX_WORKSPACE = 256 << 20


def balance_budget(gptr, weight, factor):
    """Items a row tile for groups of steps ``gptr`` (ngroups + 1,) with step weights
    ``weight`` where the heaviest group outweighs the mean of the non-empty ones by more than
    ``factor``: each group about its weight over that mean, rounded up, at least one (the
    sum: ``balanced_table`` then cuts near-equal items within it); None where none does."""
    gptr = np.asarray(gptr, dtype=np.int64)
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(weight, dtype=np.float64))])
    wg = cum[gptr[1:]] - cum[gptr[:-1]]
    mean = wg[wg > 0].mean() if (wg > 0).any() else 0.0
    if mean <= 0 or wg.max() <= factor * mean:
        return None
    return int(np.maximum(1, np.ceil(wg / mean - 1e-9)).sum())


def _item_budget(ngroups, m_tiles, resident):
    """Most items of dsd_grouped.cu a launch's row tile may take (one wave of ``resident``
    CTAs over ``m_tiles`` row tiles), or None (the groups fill that wave unsplit)."""
    if ngroups * m_tiles >= resident:
        return None
    return resident // m_tiles


def chunk_fill(kind, did, M):
    """Whether a dsd launch of kernel ``kind`` cuts columns short enough for about two waves of
    CTAs (``chunk_blocks``'s ``fill``): float32 on CUDA cores (v4), and float32 on the stream
    kernel for 16 < M <= 64 (v10, docs/perf-notes.md: one CTA per column left a quarter of the
    SMs idle in the tail; 16-bit streams measured slower when chunked)."""
    return did == 0 and (kind == "column" or (kind == "stream" and m_regime(M) == "small"))


#: The longest chunk of a column over the mean column length, in a launch of about one wave
#: (``chunk_blocks``), by block size (1.5 where not listed). v3 measured a cap of about twice
#: the mean (then rounded up to a power of two: 2-4x) 1.2-1.36x faster on Barabasi-Albert
#: layouts; v19's 1.5x, not rounded, cuts their hub columns to about the longest column of a
#: random layout, which it leaves whole. v21 (p18 part 2, H100, 16-bit M = 64): bs 32 reads
#: 1.25 best (Barabasi-Albert 0.0345 / 0.0337 -> 0.0322 / 0.0321 ms, random and small world
#: within 1%); at bs 64, 1.25 splits enough random columns to pass one wave (273 chunks for
#: 264 CTAs: 0.0266 -> 0.0305 ms), so 1.5 stays (docs/perf-notes.md v21). Launches of many
#: waves (large M) keep v3's cap: their tail is short.
COLUMN_CAP = {32: 1.25}


def chunk_blocks(layout, trans_w, m_tiles, g, resident, fill):
    """Longest chunk (in blocks) of a column for a launch with ``m_tiles`` row tiles.

    Where the columns' CTAs fit one wave of ``resident``, never more than the block size's
    ``COLUMN_CAP`` times the mean column length (rounded up to whole pipeline stages of ``g``
    blocks), so the hub columns of a skewed layout do not form a tail; otherwise about twice
    the mean (a power of two times ``g``). With ``fill`` (float32, where it was measured to
    pay), also short enough for about two waves of CTAs when the columns alone are too few (a
    power of two times ``g``). At least two stages.
    """
    ncols = layout.block_shape[0 if trans_w else 1]
    nnzb = max(layout.nnzb, 1)
    if ncols * m_tiles <= resident:
        cap = COLUMN_CAP.get(layout.blocksize, 1.5)
        steps = int(np.ceil(cap * nnzb / (max(ncols, 1) * g)))
    else:
        steps = pow2_up(-(-2 * nnzb // (max(ncols, 1) * g)))
    if fill:
        steps = min(steps, pow2_down(-(-nnzb * m_tiles // (2 * resident * g))))
    return max(steps, 2) * g


def _row_indptr(layout):
    """(xp, src, the layout's block-row indptr as int64)."""
    xp, src = _tables_on(layout)
    return xp, src, src.get("indptr", xp).astype(xp.int64)


def _segments_per_row(indptr, nb):
    """Segments of at most ``nb`` blocks in each block-row of CSR ``indptr``: ceil(blocks / nb)."""
    return (indptr[1:] - indptr[:-1] + nb - 1) // nb


def sddmm_segment_count(layout, nb):
    """How many segments ``sddmm_plan(layout, nb)`` has, without building it (one host sync)."""
    return int(_segments_per_row(_row_indptr(layout)[2], nb).sum())


def segment_table(indptr, nb, even, xp):
    """(n, 4) int32 rows (block-row, first block, block count, 0) of each block-row of CSR
    ``indptr`` (int64) cut into ceil(blocks / nb) segments: ``nb`` blocks each and a shorter
    last one, or with ``even`` the same number of segments near-equal in size (their counts
    differ by at most 1). Block-row order; numpy or cupy ``xp``; one transfer for the size."""
    blocks = indptr[1:] - indptr[:-1]
    nseg = _segments_per_row(indptr, nb)
    seg_end = xp.cumsum(nseg)
    total = int(seg_end[-1]) if seg_end.size else 0  # synchronize: grid size, once per layout
    seg = xp.zeros((total, 4), dtype=xp.int32)
    if total:
        s = xp.arange(total, dtype=xp.int64)
        row = xp.searchsorted(seg_end, s, side="right")
        local = s - (seg_end[row] - nseg[row])
        if even:
            base, extra = blocks[row] // nseg[row], blocks[row] % nseg[row]
            first = indptr[row] + local * base + xp.minimum(local, extra)
            count = base + (local < extra)
        else:
            first = indptr[row] + local * nb
            count = xp.minimum(nb, indptr[row + 1] - first)
        seg[:, 0], seg[:, 1], seg[:, 2] = row, first, count
    return seg


def sddmm_plan_key(nb, largest_first=False, even=False):
    """``sddmm_plan``'s key in ``layout.plan_cache`` (the GPU tests find its plans by it)."""
    return ("sddmm", int(nb), bool(largest_first), bool(even))


def sddmm_plan(layout, nb, largest_first=False, even=False):
    """(seg, cols) of sddmm.cu for segments of at most ``nb`` blocks (``segment_table``; with
    ``even`` near-equal ones), in block-row order or, with ``largest_first``, sorted by block
    count, largest first (stable: equal segments keep block-row order), so the CTAs handed out
    last are short ones (v35: 16-bit sddmm_tall.cu at M = 4096, fp16 bs 64 0.1808 -> 0.1760
    ms, bs 32 0.2872 -> 0.2814; float32 bs 16 1.5626 -> 1.5835, so float32 keeps row order);
    cached per layout under ``sddmm_plan_key``."""
    key = sddmm_plan_key(nb, largest_first, even)
    plan = layout.plan_cache.get(key)
    if plan is None and largest_first:
        import cupy

        seg, cols = sddmm_plan(layout, nb, even=even)
        seg = cupy.ascontiguousarray(seg[largest_first_order(seg[:, 2], cupy)])
        plan = layout.plan_cache[key] = _ready((seg, cols))
    if plan is None:
        xp, src, indptr = _row_indptr(layout)
        seg = segment_table(indptr, nb, even, xp)
        cols = xp.ascontiguousarray(src.get("indices", xp), dtype=xp.int32)
        plan = _to_device(seg, cols)
        layout.plan_cache[key] = _ready(plan)
    return plan


def tail_split_table(seg, split, pieces, xp):
    """sddmm_tall.cu's segment table with TSPLIT: ``seg`` ((n, 4) int32, grid order) with its
    last ``split`` segments each repeated ``pieces`` times in place, piece k of the j-th of them
    holding its workspace slot j * pieces + k in column 3, every other segment -1 there (whole).
    numpy or cupy ``xp``."""
    n = int(seg.shape[0])
    split = min(int(split), n)
    head = seg[:n - split].copy()
    head[:, 3] = -1
    tail = xp.repeat(seg[n - split:], pieces, axis=0)
    tail[:, 3] = xp.arange(split * pieces, dtype=xp.int32)
    return xp.concatenate([head, tail])


def tail_split_plan(layout, plan, key, split, pieces):
    """(seg, cols) of ``plan`` (``sddmm_plan``'s, cached under ``key``) with its last ``split``
    segments cut into ``pieces`` pieces along M (``tail_split_table``); cached per layout."""
    tkey = ("tsplit",) + tuple(key) + (int(split), int(pieces))
    hit = layout.plan_cache.get(tkey)
    if hit is None:
        import cupy

        hit = (tail_split_table(plan[0], split, pieces, cupy), plan[1])
        layout.plan_cache[tkey] = _ready(hit)
    return hit


def largest_first_order(counts, xp, ties=None):
    """Indices that sort ``counts`` (int, 1-D) largest first, equal ones in their order or, with
    ``ties`` (distinct int64 keys in [0, 2**32), one a count), by their key (numpy or cupy
    ``xp``; both argsorts are stable)."""
    neg = -counts.astype(xp.int64)
    if ties is not None:
        neg = (neg << 32) | ties
    return xp.argsort(neg, kind="stable") if xp is np else xp.argsort(neg)


def sddmm_group_table(indptr, indices, r, ncx, nblk, xp):
    """Items of sddmm_grouped.cu for a layout's CSR ``(indptr, indices)``.

    Blocks are taken by groups of ``r`` block-columns, in block-row order within a group; an
    item holds at most ``ncx`` consecutive block-rows of its group and at most ``nblk`` blocks.
    Returns ``(items, gent, crow)``: items (n_items, 4) int32 rows (group, first entry, end
    entry, x column blocks used); gent (nnzb, 2) int32 rows (stored block, (x slot << 16) |
    column in the group); crow (n_items * ncx,) int32, item i's x column blocks at
    crow[i * ncx + slot] (-1 where unused). Works with numpy or cupy; one transfer for the size.
    """
    indptr = indptr.astype(xp.int64)
    nrows = indptr.size - 1
    nnz = int(indices.shape[0])
    b = xp.arange(nnz, dtype=xp.int64)
    row = xp.searchsorted(indptr[1:], b, side="right")
    col = indices.astype(xp.int64)
    order = xp.argsort((col // r) * max(nrows, 1) + row, kind="stable")
    g, row, col = (col // r)[order], row[order], col[order]
    one = xp.ones(min(1, nnz), dtype=bool)
    new_group = xp.concatenate([one, g[1:] != g[:-1]])
    new_row = xp.concatenate([one, (g[1:] != g[:-1]) | (row[1:] != row[:-1])])
    # dense rank of the block-row within its group
    rank = xp.cumsum(new_row.astype(xp.int64)) - 1
    gid, gfirst = _runs(new_group, xp)
    rank = rank - rank[gfirst][gid]
    # runs of ncx block-rows, then at most nblk blocks each
    new_run = new_group | xp.concatenate([one, rank[1:] // ncx != rank[:-1] // ncx])
    rid, rfirst = _runs(new_run, xp)
    pos = xp.arange(nnz, dtype=xp.int64) - rfirst[rid]
    new_item = new_run | (pos % nblk == 0)
    iid, first = _runs(new_item, xp)
    nitems = first.size
    end = xp.concatenate([first[1:], xp.full(min(1, nitems), nnz, dtype=xp.int64)])
    slot = rank - rank[first][iid]
    items = xp.empty((nitems, 4), dtype=xp.int32)
    items[:, 0] = g[first]
    items[:, 1] = first
    items[:, 2] = end
    items[:, 3] = slot[end - 1] + 1 if nitems else xp.zeros(0, xp.int64)
    gent = xp.empty((nnz, 2), dtype=xp.int32)
    gent[:, 0] = b[order]
    gent[:, 1] = (slot << 16) | (col % r)
    crow = xp.full(nitems * ncx, -1, dtype=xp.int32)
    crow[iid * ncx + slot] = row
    return items, gent, crow


def _two_by_two(iid, key, minor, xp):
    """The entries sorted by (``iid``, ``key``, ``minor``) (stable; ``minor`` None: input order
    within a key), runs of equal (``iid``, ``key``) taken two by two: ``(order, even,
    has_next)``, over the sorted entries, whether each is at an even place in its run (a pair's
    first, or a run's odd last one) and whether the next entry is in its run. int64 inputs
    below 2**32 (``key``, ``minor``: 2**16), numpy or cupy."""
    n = int(iid.shape[0])
    order = xp.argsort((iid << 32) | (key if minor is None else (key << 16) | minor),
                       kind="stable")
    iid, key = iid[order], key[order]
    one = xp.ones(min(1, n), dtype=bool)
    new = xp.concatenate([one, (iid[1:] != iid[:-1]) | (key[1:] != key[:-1])])
    rid, rfirst = _runs(new, xp)
    even = (xp.arange(n, dtype=xp.int64) - rfirst[rid]) % 2 == 0
    has_next = xp.concatenate([~new[1:], xp.zeros(min(1, n), dtype=bool)])
    return order, even, has_next


def pair_units(items, gent, xp):
    """Pairs of an item's blocks that share a column (``sddmm_grouped.cu`` with PAIRS: two 8-row
    blocks fill one m16 tile). ``items``, ``gent`` as returned by ``sddmm_group_table``.

    Returns ``(items, units)``: items with first/end counted in units; units (n_units, 4) int32
    rows (block, code, partner block or -1, partner code or 0), the codes as in gent. Within an
    item, the blocks of one column are taken two by two in block-row order. Works with numpy or
    cupy; one transfer for the size.
    """
    nnz = int(gent.shape[0])
    first, end = items[:, 1].astype(xp.int64), items[:, 2].astype(xp.int64)
    iid = xp.repeat(xp.arange(items.shape[0], dtype=xp.int64), end - first)
    code = gent[:, 1].astype(xp.int64)
    # by (item, column, x slot): an item's entries keep their range; runs of one column
    order, head, has_next = _two_by_two(iid, code & 0xFFFF, code >> 16, xp)
    blk, code = gent[order, 0], gent[order, 1]
    nxt = xp.minimum(xp.arange(nnz, dtype=xp.int64) + 1, max(nnz - 1, 0))
    ucum = xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(head.astype(xp.int64))])
    n_units = int(ucum[-1])  # synchronize: the unit count, once per layout
    units = xp.zeros((n_units + 1, 4), dtype=xp.int32)   # the last row takes the non-heads
    dst = xp.where(head, ucum[:-1], n_units)
    units[dst, 0] = blk
    units[dst, 1] = code
    units[dst, 2] = xp.where(has_next, blk[nxt], -1)
    units[dst, 3] = xp.where(has_next, code[nxt], 0)
    items = items.copy()
    items[:, 1] = ucum[first]
    items[:, 2] = ucum[end]
    return items, units[:n_units]


def unit_offsets(units, bs, itemsize, xp):
    """``pair_units``'s units with their codes as byte offsets into a stage (sddmm_grouped.cu's
    SOFF): (block, first x slot * bs * itemsize | the second's << 16 (the partner's slot, or
    the first's again without one), partner block or -1, dy column * bs * itemsize), int32.
    Works with numpy or cupy."""
    units = units.copy()
    code, pcode = units[:, 1].astype(xp.int64), units[:, 3].astype(xp.int64)
    step = bs * itemsize
    s1 = (code >> 16) * step
    s2 = xp.where(units[:, 2] >= 0, pcode >> 16, code >> 16) * step
    units[:, 1] = (s1 | (s2 << 16)).astype(xp.int32)
    units[:, 3] = ((code & 0xFFFF) * step).astype(xp.int32)
    return units


def _depths(par, root):
    """Each vertex's steps to ``root`` along ``par`` (int64; ``par[root] == root``, every chain
    ending there), by pointer doubling: O(log depth) numpy passes."""
    anc = par.copy()
    depth = (np.arange(par.size) != root).astype(np.int64)
    while (anc != root).any():
        depth += depth[anc]
        anc = anc[anc]
    return depth


def _forest_pairs(us, vs, nv):
    """Pairs of edges that share a vertex, for the simple graph of edges (``us[i]``, ``vs[i]``)
    on ``nv`` vertices (int64 numpy arrays): ``(first, second, shared)`` int64 arrays, a unit
    each; ``second`` and ``shared`` are -1 for an edge left alone. Each connected part leaves
    at most one edge alone, where its edge count is odd: the fewest units there can be.

    A breadth-first forest (scipy's csgraph, one root a part), then from the deepest level up:
    an edge off the forest goes to its deeper end; a vertex that holds an odd count keeps the
    edge to its parent, else hands it to the parent. Every vertex then holds an even count but
    a root, which may hold one more, left alone; each vertex pairs its edges two by two."""
    from scipy.sparse import coo_matrix, csgraph

    ne = int(us.shape[0])
    if ne == 0:
        none = np.zeros(0, dtype=np.int64)
        return none, none, none
    top = nv                                      # a super-root over the parts' roots
    adj = coo_matrix((np.ones(ne), (us, vs)), shape=(nv + 1, nv + 1)).tocsr()
    nparts, part = csgraph.connected_components(adj, directed=False)
    ends = np.concatenate([us, vs])
    roots = np.full(nparts, top, dtype=np.int64)
    np.minimum.at(roots, part[ends], ends)        # the lowest vertex of each part with edges
    roots = roots[roots < top]
    adj = coo_matrix((np.ones(ne + roots.size), (np.concatenate([us, roots]),
                                                  np.concatenate([vs, np.full_like(roots, top)]))),
                     shape=(nv + 1, nv + 1)).tocsr()
    _, pred = csgraph.breadth_first_order(adj, top, directed=False, return_predecessors=True)
    par = pred.astype(np.int64)
    par[(par < 0) | (np.arange(nv + 1) == top)] = top   # no edge: hung on the super-root
    depth = _depths(par, top)
    child = np.flatnonzero(par != top)            # the forest's vertices below a root
    # each child's forest edge, found by its (low, high) key among the edges'
    key = np.minimum(us, vs) * (nv + 1) + np.maximum(us, vs)
    srt = np.argsort(key)
    ckey = np.minimum(child, par[child]) * (nv + 1) + np.maximum(child, par[child])
    tree = srt[np.searchsorted(key, ckey, sorter=srt)]
    off = np.ones(ne, dtype=bool)
    off[tree] = False
    holder = np.where(depth[us] >= depth[vs], us, vs)
    count = np.bincount(holder[off], minlength=nv + 1)
    # the children by depth, deepest level first: odd keeps its forest edge, even hands it up
    by_depth = child[np.argsort(-depth[child], kind="stable")]
    cuts = np.flatnonzero(np.diff(depth[by_depth])) + 1
    keeps = np.zeros(nv + 1, dtype=bool)
    for level in np.split(by_depth, cuts):
        keeps[level] = count[level] % 2 == 1
        np.add.at(count, par[level[~keeps[level]]], 1)
    holder[tree] = np.where(keeps[child], child, par[child])
    order, even, has_next = _two_by_two(holder, np.zeros(ne, dtype=np.int64), None, np)
    heads = np.flatnonzero(even & has_next)
    alone = order[even & ~has_next]
    neg = np.full(alone.size, -1, dtype=np.int64)
    return (np.concatenate([order[heads], alone]), np.concatenate([order[heads + 1], neg]),
            np.concatenate([holder[order[heads]], neg]))


def two_way_units(items, gent, ncx, bs, itemsize, xp):
    """Units of sddmm_grouped.cu with TPAIRS (and SOFF): an item's blocks paired two ways, two
    that share an x slot ("transposed": their dy columns fill the m16 tile's two halves) or two
    that share a column (as ``pair_units``). The pairs are ``_forest_pairs``' on the graph of
    each item's x slots and columns (a block an edge; all items at once, their vertices apart),
    so each connected part leaves at most one block alone: the fewest units there can be. On
    the random layout at d = 0.1 (R 64, NCX 32) 52,554 units for 104,858 blocks, against
    ``pair_units``' 60,710 (v53). Built on the host (scipy's csgraph), once per layout.

    ``items``, ``gent`` as returned by ``sddmm_group_table``; ``ncx`` the spec's NCX (a stage
    row holds x's ``ncx`` column blocks, then dy's). Returns ``(items, units)``: items with
    first/end counted in units; units (n_units, 4) int32 rows (block, first A offset | second's
    << 16, second block or -1, B offset | transposed << 16), the offsets in bytes from a stage
    row's start (x slot s at s * bs * itemsize, dy column j at (ncx + j) * bs * itemsize): A
    the x slots (or, transposed, the dy columns), B the dy column (or the x slot); numpy or
    cupy as ``xp``, an item's units in the order of their shared vertex.

    Raises: ValueError where an offset would not fit in 16 bits."""
    items_h, gent = to_host(items), to_host(gent).astype(np.int64)   # built on the host
    ncols = int((gent[:, 1] & 0xFFFF).max()) + 1 if gent.shape[0] else 0
    if (ncx + ncols - 1) * bs * itemsize >= 1 << 16:
        raise ValueError(f"two_way_units: stage rows of {ncx} x column blocks and {ncols} dy "
                         f"columns of {bs * itemsize} bytes pass 16-bit offsets")
    first, end = items_h[:, 1].astype(np.int64), items_h[:, 2].astype(np.int64)
    iid = np.repeat(np.arange(items_h.shape[0], dtype=np.int64), end - first)
    blk, slot, col = gent[:, 0], gent[:, 1] >> 16, gent[:, 1] & 0xFFFF
    step = bs * itemsize
    xoff, doff = slot * step, (ncx + col) * step
    nvi = ncx + ncols                             # an item's vertices: x slots, then columns
    one, other, shared = _forest_pairs(iid * nvi + slot, iid * nvi + ncx + col,
                                       items_h.shape[0] * nvi)
    order = np.argsort(iid[one], kind="stable")   # by item (pairs in vertex order, then alone)
    one, other, shared = one[order], other[order], shared[order]
    two = other >= 0
    other = np.where(two, other, one)
    transposed = two & (shared % nvi < ncx)       # the pair's shared vertex is an x slot
    units = np.empty((one.size, 4), dtype=np.int32)
    units[:, 0] = blk[one]
    units[:, 1] = np.where(transposed, doff[one] | (doff[other] << 16),
                           xoff[one] | (xoff[other] << 16))
    units[:, 2] = np.where(two, blk[other], -1)
    units[:, 3] = np.where(transposed, xoff[one] | (1 << 16), doff[one])
    ucum = np.concatenate([[0], np.cumsum(np.bincount(iid[one], minlength=items_h.shape[0]))])
    out = items_h.copy()
    out[:, 1] = ucum[:-1]
    out[:, 2] = ucum[1:]
    return (out, units) if xp is np else (xp.asarray(out), xp.asarray(units))


def tail_longest_first(items, crow, ncx, tail, xp):
    """``sddmm_group_table``'s items (and their ``ncx`` crow entries each) with the last
    ``tail`` of them reordered by their entry (or unit) count, most first, ties in order; the
    rest as they were. numpy or cupy."""
    n = int(items.shape[0])
    k = min(int(tail), n)
    if k <= 1:
        return items, crow
    order = xp.concatenate([xp.arange(n - k, dtype=xp.int64),
                            n - k + largest_first_order(items[n - k:, 2] - items[n - k:, 1], xp)])
    return items[order], crow.reshape(n, ncx)[order].reshape(-1)


def sddmm_grouped_plan(layout, spec, tail=0):
    """(items, gent, crow) of sddmm_grouped.cu (``sddmm_group_table``, then ``pair_units``
    with PAIRS, then ``unit_offsets`` with SOFF; ``two_way_units`` with TPAIRS; then the last
    ``tail`` items longest first, ``tail_longest_first``); cached per layout."""
    p = dict(spec)
    key = ("sddmmg", p["R"], p["NCX"], p["NBLK"], p.get("PAIRS", 0), p.get("SOFF", 0),
           p.get("TPAIRS", 0), tail)
    plan = layout.plan_cache.get(key)
    if plan is None:
        xp, src = _tables_on(layout)
        items, gent, crow = sddmm_group_table(src.get("indptr", xp), src.get("indices", xp),
                                              p["R"], p["NCX"], p["NBLK"], xp)
        if p.get("TPAIRS"):            # both kinds of pairs, as stage-row byte offsets
            items, gent = two_way_units(items, gent, p["NCX"], p["BS"], 4, xp)
        elif p.get("PAIRS"):
            items, gent = pair_units(items, gent, xp)
            if p.get("SOFF"):          # codes as stage byte offsets (float32)
                gent = unit_offsets(gent, p["BS"], 4, xp)
        items, crow = tail_longest_first(items, crow, p["NCX"], tail, xp)
        plan = _to_device(items, gent, crow)
        layout.plan_cache[key] = _ready(plan)
    return plan


def coarse_table(indptr, indices, nbc, xp, least=1):
    """The 2 x 2 coarsening of CSR (``indptr``, ``indices``) over ``nbc`` block-columns (both
    counts even): (cptr, cind, sub, rptr, rind). (cptr, cind): the coarse CSR (int32), a coarse
    block wherever at least ``least`` of its four blocks are stored. (rptr, rind): the stored
    blocks of the smaller groups, as a CSR of the same grid (int32, in the input's order).
    ``sub`` (int32, a stored block each): coarse index * 4 + quadrant (quadrant = 2 * (row & 1)
    + (column & 1)), or -1 - its place in the rest. numpy or cupy ``xp``.

    Raises: ValueError for an odd block-row or block-column count."""
    nrows = indptr.shape[0] - 1
    if nrows % 2 or nbc % 2:
        raise ValueError(f"coarse_table needs even block counts, got {nrows} x {nbc}")
    rows = entry_owners(indptr.astype(xp.int64), indices.shape[0], xp)
    cols = indices.astype(xp.int64)
    half = max(nbc // 2, 1)
    key = (rows // 2) * half + cols // 2
    ukey, group, count = xp.unique(key, return_inverse=True, return_counts=True)  # sorted keys
    group = group.reshape(-1)
    big = count >= least
    place = xp.cumsum(big) - 1                # each kept group's coarse index
    coarse = big[group]
    rest_place = xp.cumsum(~coarse) - 1
    sub = xp.where(coarse, place[group] * 4 + 2 * (rows & 1) + (cols & 1), -1 - rest_place)
    ckey = ukey[big]
    cptr = xp.zeros(nrows // 2 + 1, dtype=xp.int32)
    cptr[1:] = xp.cumsum(xp.bincount(ckey // half, minlength=nrows // 2))
    rptr = xp.zeros(nrows + 1, dtype=xp.int32)
    rptr[1:] = xp.cumsum(xp.bincount(rows[~coarse], minlength=nrows))
    return (cptr, (ckey % half).astype(xp.int32), sub.astype(xp.int32), rptr,
            indices[~coarse].astype(xp.int32))


#: ``coarse_plan``'s result: how many coarse blocks and stored blocks left on the direct kernel,
#: the coarse BlockLayout (block size 2 bs; None without coarse blocks) and the rest's (block
#: size bs; None without any) on the GPU, and ``sub`` (``coarse_table``) on the device.
CoarsePlan = collections.namedtuple("CoarsePlan", "ncoarse nrest coarse rest sub")


def coarse_plan(layout, least=1):
    """The wgrad's plan on ``layout`` coarsened 2 x 2 (``coarse_table``, groups of at least
    ``least`` stored blocks coarse), a ``CoarsePlan``; None where a block count is odd or the
    layout is empty. Cached per layout and ``least``."""
    from .block_layout import BlockLayout

    key = ("coarse", int(least))
    if key not in layout.plan_cache:
        nbr, nbc = layout.block_shape
        plan = None
        if layout.nnzb and nbr % 2 == 0 and nbc % 2 == 0:
            xp, src = _tables_on(layout)
            cptr, cind, sub, rptr, rind = coarse_table(
                src.get("indptr", xp), src.get("indices", xp), nbc, xp, least)
            ncoarse, nrest = int(cind.shape[0]), int(rind.shape[0])
            bs = layout.blocksize
            coarse = (BlockLayout._from_parts(cptr, cind, layout.shape, 2 * bs).to_gpu()
                      if ncoarse else None)
            rest = BlockLayout._from_parts(rptr, rind, layout.shape, bs).to_gpu() if nrest else None
            plan = CoarsePlan(ncoarse, nrest, coarse, rest, _to_device(sub)[0])
        layout.plan_cache[key] = _ready(plan)
    return layout.plan_cache[key]
