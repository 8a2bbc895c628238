"""The GPU kernels' work lists, built with numpy: every entry covered once, slots consistent."""
import collections

import numpy as np
import pytest

from cupy_bsparse import _specs, _work_lists


def _ptr(counts):
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@pytest.mark.parametrize("chunk", [1, 2, 3, 8, 1000])
@pytest.mark.parametrize("counts", [[0], [5], [0, 7, 0, 1, 16, 3], [40, 1, 1, 0, 9]])
def test_chunk_table_covers_each_column_once(counts, chunk):
    ptr = _ptr(counts)
    table, colinfo, nslots = _work_lists.chunk_table(ptr, chunk, np)
    assert table.dtype == np.int32 and colinfo.dtype == np.int32
    assert colinfo.shape == (len(counts), 2)
    slots = []
    for j, n in enumerate(counts):
        rows = table[table[:, 0] == j]
        nch = max(1, -(-n // chunk))
        assert len(rows) == nch == colinfo[j, 1]
        # contiguous, in order, covering ptr[j]..ptr[j+1], each at most `chunk` long
        assert rows[0, 1] == ptr[j] and rows[-1, 2] == ptr[j + 1]
        assert np.all(rows[1:, 1] == rows[:-1, 2])
        assert np.all(rows[:, 2] - rows[:, 1] <= chunk)
        if nch == 1:
            assert rows[0, 3] == -1
        else:
            assert list(rows[:, 3]) == list(range(colinfo[j, 0], colinfo[j, 0] + nch))
            slots += list(rows[:, 3])
    assert sorted(slots) == list(range(nslots))
    # chunks of one column are adjacent in the grid
    assert np.all(np.diff(table[:, 0]) >= 0)


@pytest.mark.parametrize("counts", [[0], [5], [0, 7, 0, 1, 16, 3], [40, 1, 1, 0, 9], [2, 9, 2, 9]])
def test_queue_table_orders_whole_columns_longest_first(counts):
    """dsd_stream.cu's QUEUE plan: one unsplit chunk a column (an empty one with no entries),
    each covering its column's entries, in order of entry count, longest first, ties by
    column."""
    ptr = _ptr(counts)
    table, colinfo, nslots = _work_lists.queue_table(ptr, np)
    assert table.dtype == np.int32 and nslots == 0
    assert sorted(table[:, 0]) == list(range(len(counts)))
    assert np.all(table[:, 1] == ptr[table[:, 0]]) and np.all(table[:, 2] == ptr[table[:, 0] + 1])
    assert np.all(table[:, 3] == -1) and np.all(colinfo[:, 1] == 1)
    assert [tuple(r) for r in table[:, :1]] == sorted(
        [(j,) for j in range(len(counts))], key=lambda r: (-counts[r[0]], r[0]))


def test_scrambled_index():
    """``scrambled_index`` (the "hashed" walk's key): distinct keys in [0, 2**32) that put
    neighbouring indices far apart."""
    key = _work_lists.scrambled_index(64, np)
    assert key.dtype == np.int64 and len(set(key.tolist())) == 64
    assert key.min() >= 0 and key.max() < 2 ** 32
    order = np.argsort(key)
    assert np.all(np.abs(np.diff(order)) > 1)


@pytest.mark.parametrize("walk", ["hashed", "hubs"])
@pytest.mark.parametrize("counts", [[0], [3, 0, 5], [12] * 16 + [0, 13, 11]])
def test_walk_entries(counts, walk):
    """QUEUE_WALK: every column keeps its entries (the same (x block, stored block) pairs, ptr
    unchanged), ordered by one rank of the x block for every column: ``scrambled_key``
    ("hashed"), or the blocks on more entries (in powers of two) first, ties by it ("hubs");
    the input is not modified. A band's neighbouring columns then walk their shared x blocks in
    one order; "ascending" is the stored order."""
    rng = np.random.default_rng(len(counts))
    ptr = _ptr(counts)
    ent = np.stack([np.concatenate([np.sort(rng.choice(64, n, replace=False)) for n in counts]),
                    rng.permutation(int(ptr[-1]))], axis=1).astype(np.int32)
    before = ent.copy()
    assert _work_lists.walk_entries(ptr, ent, "ascending", np) is ent
    walked = _work_lists.walk_entries(ptr, ent, walk, np)
    assert np.array_equal(ent, before) and walked.dtype == np.int32
    assert walked.shape == ent.shape and walked.flags.c_contiguous
    uses = np.bincount(ent[:, 0], minlength=64) if len(ent) else np.zeros(64, int)
    for j in range(len(counts)):
        a, b = walked[ptr[j]:ptr[j + 1]], ent[ptr[j]:ptr[j + 1]]
        assert sorted(map(tuple, a)) == sorted(map(tuple, b))
        key = [(-int(np.log2(uses[k])) if walk == "hubs" else 0,
                int(_work_lists.scrambled_key(np.array([k]))[0])) for k in a[:, 0]]
        assert key == sorted(key) and len(set(key)) == len(key)
    if len(counts) > 3:    # two columns sharing x blocks take them in the same order
        band = np.stack([np.r_[0:12, 1:13], np.arange(24)], axis=1).astype(np.int32)
        w = _work_lists.walk_entries(_ptr([12, 12]), band, walk, np)
        shared = set(range(1, 12))
        first = [k for k in w[:12, 0] if k in shared]
        second = [k for k in w[12:, 0] if k in shared]
        assert first == second and w[:12, 0].tolist() != list(range(12))


def test_walk_hubs_first():
    """The "hubs" walk: an x block held by many columns comes first in every column (block 21,
    on 8 of 10 columns, before blocks on 1-3 columns), where "hashed", which ignores the
    counts, puts it last (the largest ``scrambled_key`` of 0..39) and ascending in between;
    bad arguments raise ValueError naming them; an empty walk is a new array."""
    rng = np.random.default_rng(3)
    others = np.r_[0:21, 22:40]
    cols = [np.sort(np.r_[[21] if j < 8 else [], rng.choice(others, 3, replace=False)])
            for j in range(10)]
    ptr = _ptr([len(c) for c in cols])
    ent = np.stack([np.concatenate(cols), np.arange(int(ptr[-1]))], axis=1).astype(np.int32)
    key = _work_lists.scrambled_key(np.arange(40))
    assert int(np.argmax(key)) == 21
    hubs = _work_lists.walk_entries(ptr, ent, "hubs", np)
    hashed = _work_lists.walk_entries(ptr, ent, "hashed", np)
    assert all(hubs[ptr[j], 0] == 21 for j in range(8))
    assert all(hashed[ptr[j + 1] - 1, 0] == 21 for j in range(8))
    assert any(ent[ptr[j], 0] != 21 for j in range(8))     # ascending: not first everywhere
    rank = _work_lists.walk_rank(ent[:, 0], "hashed", np)
    nk = int(ent[:, 0].max()) + 1
    assert rank.shape == (nk,) and sorted(rank.tolist()) == list(range(nk))
    # counts at powers of two fall in the bucket above: 4 uses lead 3, 2 lead 1
    k = np.array([7] * 4 + [3] * 3 + [9] * 2 + [1], dtype=np.int32)
    rank = _work_lists.walk_rank(k, "hubs", np)
    assert rank[7] < min(rank[3], rank[9]) and max(rank[3], rank[9]) < rank[1]
    with pytest.raises(ValueError, match="walk must be one of"):
        _work_lists.walk_entries(ptr, ent, "rotated", np)
    with pytest.raises(ValueError, match="walk must be one of"):
        _work_lists.column_group_table(ptr, ent, 4, np, "rotated")
    with pytest.raises(ValueError, match="walk must be 'hashed' or 'hubs'"):
        _work_lists.walk_rank(ent[:, 0], "ascending", np)
    with pytest.raises(ValueError, match="k must hold"):
        _work_lists.walk_rank(ent[:0, 0], "hubs", np)
    empty = ent[:0]
    assert _work_lists.walk_entries(_ptr([0, 0]), empty, "hubs", np) is not empty
    assert _specs.QUEUE_WALK in (None,) + _work_lists.WALKS


def test_queue_plans_cache_the_walk_apart(monkeypatch):
    """The queue's plans (the counter's and QLIST's) are cached apart for each walk: each call
    gets the walk it asked for, the same items and entries in another order (the plans' device
    copy stubbed out, so this runs on the CPU)."""
    from cupy_bsparse.block_layout import BlockLayout

    monkeypatch.setattr(_work_lists, "_to_device", lambda *a: tuple(a))
    monkeypatch.setattr(_work_lists, "_ready", lambda plan: plan)
    mask = np.random.default_rng(0).random((40, 30)) < 0.4
    mask[:3] = True                     # three hubs, so "hubs" differs from "hashed"
    layout = BlockLayout.from_mask(mask, 8)
    ptr, plain_ent = _work_lists._dsd_entries(layout, False, np)
    want = {w: _work_lists.walk_entries(ptr, plain_ent, w, np) for w in _work_lists.WALKS}
    assert not np.array_equal(want["hashed"], want["hubs"])
    for _ in range(2):    # the second pass reads the cache
        for walk in _work_lists.WALKS:
            queued = _work_lists.dsd_queue_plan(layout, False, walk=walk)
            listed = _work_lists.dsd_queue_list_plan(layout, False, 3, 0, 0, walk=walk)
            assert np.array_equal(queued[2], want[walk]), walk
            assert np.array_equal(listed[2], want[walk]), walk
            assert np.array_equal(queued[0], _work_lists.dsd_queue_plan(layout, False)[0])


def _sharing_reference(mask, walk, nctas, ntiles, cap):
    """``queue_sharing``'s model written out step by step: items tile after tile, a tile's
    columns longest first; each to the CTA free first; every pair of steps compared."""
    step, epi = _work_lists.QUEUE_MODEL_STEP, _work_lists.QUEUE_MODEL_EPILOGUE
    k_all = np.nonzero(mask)[0]
    rank = None if walk == "ascending" else _work_lists.walk_rank(k_all, walk, np)
    counts = mask.sum(0)
    free, events = [0] * nctas, []
    for r in range(ntiles):
        for j in sorted(range(mask.shape[1]), key=lambda j: (-counts[j], j)):
            c = min(range(nctas), key=lambda c: free[c])
            rows = sorted(np.flatnonzero(mask[:, j]), key=lambda k: k if rank is None else rank[k])
            events += [(free[c] + s * step, r, k) for s, k in enumerate(rows)]
            free[c] += max(len(rows), 1) * step + epi
    shared = [sum(1 for u, r2, k2 in events if (r2, k2) == (r, k) and abs(u - t) < step) - 1
              for t, r, k in events]
    return float(np.mean(np.minimum(shared, cap)))


def test_queue_sharing():
    """The queue model (``queue_sharing``): as written out step by step on a random layout with
    an empty block-row and block-column, several waves of items, each walk, both ops and two
    caps; exact on layouts whose answer is known (identical columns all shared; a staircase
    shares nothing ascending, some in "hubs"' hashed order); 0.0 on an empty layout, cached;
    bad arguments raise ValueError."""
    from cupy_bsparse.block_layout import BlockLayout

    mask = np.random.default_rng(5).random((14, 11)) < 0.35
    mask[4], mask[:, 7] = False, False
    layout = BlockLayout.from_mask(mask, 8)
    for trans, m in ((False, mask), (True, mask.T)):
        for walk in _work_lists.WALKS:
            for cap in (2, 100):
                got = _work_lists.queue_sharing(layout, trans, walk, 5, ntiles=3, cap=cap)
                assert got == pytest.approx(_sharing_reference(m, walk, 5, 3, cap)), (walk, cap)
    same = np.zeros((8, 16), dtype=bool)
    same[1:6] = True                    # 16 columns on blocks 1-5: 16 CTAs in step
    lay = BlockLayout.from_mask(same, 8)
    assert _work_lists.queue_sharing(lay, False, "ascending", 16, ntiles=1, cap=100) == 15.0
    assert _work_lists.queue_sharing(lay, False, "ascending", 16, ntiles=1, cap=8) == 8.0
    stair = np.zeros((19, 16), dtype=bool)
    for j in range(16):
        stair[j:j + 4, j] = True        # column j on x blocks j..j+3: a step apart ascending
    lay = BlockLayout.from_mask(stair, 8)
    assert _work_lists.queue_sharing(lay, False, "ascending", 16, ntiles=1) == 0.0
    assert _work_lists.queue_sharing(lay, False, "hubs", 16, ntiles=1) > 0.5
    assert ("queue_sharing", False, "hubs", 16, 1, 8) in lay.plan_cache
    assert _work_lists.queue_sharing(lay, False, "hubs", 16, ntiles=1, cap=0) == 0.0
    empty = BlockLayout.from_mask(np.zeros((3, 4), dtype=bool), 8)
    assert _work_lists.queue_sharing(empty, True, "hubs", 4) == 0.0
    assert empty.plan_cache[("queue_sharing", True, "hubs", 4, 8, 8)] == 0.0
    for bad in ({"nctas": 0}, {"nctas": 4, "ntiles": 0}, {"nctas": 4, "cap": -1}):
        with pytest.raises(ValueError, match="nctas and ntiles must be >= 1"):
            _work_lists.queue_sharing(layout, False, "ascending", **bad)


@pytest.mark.parametrize("trans", [False, True])
def test_walk_by_layout_as_measured(monkeypatch, trans):
    """The queue's walk by the layout on v47's timed problems (the bench's seed-0 masks,
    128 x 128 blocks at d = 0.1, bs 64, 132 CTAs; small world 8% faster on "hubs",
    Barabasi-Albert 1% slower, random even): "hubs" on small world only; bs 32 ascending."""
    from cupy_bsparse import bench
    from cupy_bsparse.block_layout import BlockLayout

    monkeypatch.setattr(_specs, "QUEUE_WALK", None)     # (CUPY_BSPARSE_QUEUE_WALK may be set)
    for kind, want in (("small_world", "hubs"), ("random", "ascending"),
                       ("barabasi_albert", "ascending")):
        layout = BlockLayout.from_mask(bench.make_mask(kind, 128, 128, 0.1, seed=0), 64)
        share = lambda w: _work_lists.queue_sharing(layout, trans, w, 132,
                                                    cap=_specs.WALK_SHARE_CAP)
        assert _specs.walk_by_share(64, share) == want, kind
        assert _specs.walk_by_share(32, share) == "ascending"


def _kernel_ilv_order(counts, ntiles, ilv):
    """(tile, column) of each item in the order dsd_stream.cu's ILV hands them out."""
    cols = sorted(range(len(counts)), key=lambda j: (-counts[j], j))
    nt = min(ilv, ntiles) if ilv >= 2 else 0
    order = [(t, j) for t in range(ntiles - nt) for j in cols]
    return order + [(t, j) for j in cols for t in range(ntiles - nt, ntiles)]


def _queue_list_order(counts, ntiles, ahead, ilv):
    """QLIST's order, written out as the docstring states it: (tile, column) items."""
    cols = sorted(range(len(counts)), key=lambda j: (-counts[j], j))
    long_ = [j for j in cols if ahead and counts[j] > 2.0 * np.mean(counts)]
    others = [j for j in cols if j not in long_]
    nt = min(ilv, ntiles) if ilv >= 2 else 0
    order, led = [], set()
    for t in range(min(ahead, ntiles)):
        order += [(t, j) for j in long_]
        led.add(t)
    for t in range(ntiles - nt):
        if ahead and t + ahead < ntiles:
            order += [(t + ahead, j) for j in long_]
            led.add(t + ahead)
        order += [(t, j) for j in others]
    order += [(t, j) for t in range(ntiles) if t not in led for j in long_]
    return order + [(t, j) for j in others for t in range(ntiles - nt, ntiles)]


@pytest.mark.parametrize("ilv", [0, 2, 3])
@pytest.mark.parametrize("ahead", [0, 1, 2, 5])
@pytest.mark.parametrize("ntiles", [1, 2, 3, 8])
@pytest.mark.parametrize("counts", [[0], [5], [0, 7, 0, 1, 16, 3], [40, 1, 1, 0, 9, 2, 2, 3],
                                    [30, 25, 1, 1, 0, 2, 1, 1, 1, 1]])
def test_queue_list_items(counts, ntiles, ahead, ilv):
    """QLIST's list: every (row tile, column) item once, each row queue_table's chunk of its
    column, in the stated order: ahead 0 is ILV's order exactly; with ahead, the long columns'
    (over 2x the mean) items of tile t go out, longest first, just before tile t - ahead's
    others, and the others keep ILV's order."""
    ptr = _ptr(counts)
    table, colinfo, nslots = _work_lists.queue_list(ptr, ntiles, ahead, ilv, 2.0, np)
    base, _, _ = _work_lists.queue_table(ptr, np)
    assert table.dtype == np.int32 and nslots == 0 and table.shape == (ntiles * len(counts), 4)
    items = [(int(r[3]), int(r[0])) for r in table]
    assert sorted(items) == sorted((t, j) for t in range(ntiles) for j in range(len(counts)))
    for r in table:
        assert tuple(r[:3]) == tuple(base[base[:, 0] == r[0]][0, :3])
    assert items == _queue_list_order(counts, ntiles, ahead, ilv)
    long_ = {j for j, n in enumerate(counts) if ahead and n > 2 * np.mean(counts)}
    assert [it for it in items if it[1] not in long_] == [
        it for it in _kernel_ilv_order(counts, ntiles, ilv) if it[1] not in long_]
    pos = {it: k for k, it in enumerate(items)}
    for t, j in items:
        if j in long_ and t - ahead >= 0:
            assert all(pos[(t, j)] < pos[(t - ahead, c)] for c in range(len(counts))
                       if c not in long_)


@pytest.mark.parametrize("trans_w", [False, True])
def test_longest_column(trans_w):
    """The most blocks of an output block-column: W's block-columns for x @ W, its block-rows
    for x @ W^T; and the layout's block count."""
    from cupy_bsparse.block_layout import BlockLayout

    mask = np.zeros((6, 4), bool)
    mask[:, 1] = True
    mask[2, :] = True
    mask[5, 3] = True
    got = _work_lists.longest_column(BlockLayout.from_mask(mask, 8), trans_w)
    assert got == ((4 if trans_w else 6), int(mask.sum()))


@pytest.mark.parametrize("trans_w", [False, True])
@pytest.mark.parametrize("factor", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("seed", range(4))
def test_has_long_column_matches_queue_list(seed, factor, trans_w):
    """The QLIST layout rule's test of a long column agrees with the list's own: true exactly
    where queue_list moves some column's items ahead of the tile order."""
    from cupy_bsparse.block_layout import BlockLayout

    rng = np.random.default_rng(seed)
    mask = rng.random((7, 9)) < 0.3
    mask[:, seed] = seed % 2 == 0          # a full column on even seeds
    mask[seed, :] |= seed == 3             # a full row on one
    layout = BlockLayout.from_mask(mask, 8)
    counts = mask.sum(axis=1) if trans_w else mask.sum(axis=0)
    want = bool((counts > factor * counts.mean()).any())
    assert _work_lists.has_long_column(layout, trans_w, factor) == want
    ptr = _ptr(list(counts))
    order = _work_lists.queue_list(ptr, 4, 1, 2, factor, np)[0][:, [3, 0]]
    plain = _work_lists.queue_list(ptr, 4, 0, 2, factor, np)[0][:, [3, 0]]
    assert (not np.array_equal(order, plain)) == want


def test_has_long_column_empty():
    """No block: no long column."""
    from cupy_bsparse.block_layout import BlockLayout

    layout = BlockLayout.from_mask(np.zeros((3, 4), bool), 16)
    assert not _work_lists.has_long_column(layout, False, 2.0)


@pytest.mark.parametrize("nctas", [1, 2, 3, 7, 64, 1000])
@pytest.mark.parametrize("counts", [[5], [0, 7, 0, 1, 16, 3], [40, 1, 1, 0, 9], [0, 0, 3, 0],
                                    [9] * 30])
def test_cta_cut_gives_each_cta_an_equal_run(counts, nctas):
    """dsd_stream.cu's PERSIST plan as the kernel walks it: CTA c's chunks are consecutive
    rows whose entries run contiguously (its producer streams them as one run), each column
    covered once in order, a split column's chunks on distinct CTAs with its slots, and no
    CTA over ceil(S / P) entries."""
    ptr = _ptr(counts)
    table, colinfo, nslots, cta = _work_lists.cta_cut(ptr, nctas, np)
    S = int(ptr[-1])
    P = max(1, min(nctas, S))
    assert cta.dtype == np.int32 and cta.shape == (P + 1,)
    assert cta[0] == 0 and cta[-1] == len(table) and np.all(np.diff(cta) >= 0)
    owner = np.repeat(np.arange(P), np.diff(cta))
    assert np.all(table[1:, 1] == table[:-1, 2]) and table[0, 1] == 0 and table[-1, 2] == S
    for c in range(P):
        rows = table[cta[c]:cta[c + 1]]
        assert (rows[:, 2] - rows[:, 1]).sum() <= -(-S // P)
    slots = []
    for j, n in enumerate(counts):
        mine = np.flatnonzero(table[:, 0] == j)
        rows = table[mine]
        assert len(rows) == colinfo[j, 1] >= 1
        assert rows[0, 1] == ptr[j] and rows[-1, 2] == ptr[j + 1]
        if len(rows) == 1:
            assert rows[0, 3] == -1
        else:
            assert np.all(rows[:, 2] > rows[:, 1])                 # no empty piece
            assert len(set(owner[mine])) == len(rows)              # one piece a CTA
            assert list(rows[:, 3]) == list(range(colinfo[j, 0], colinfo[j, 0] + len(rows)))
            slots += list(rows[:, 3])
    assert sorted(slots) == list(range(nslots))


def test_cta_cut_balances_a_skewed_layout():
    """One hub column of 500 entries among 99 of 5: 8 CTAs of at most ceil(995 / 8) = 125
    entries each (cuts at 124, 248, 373, 497, ...: the hub in five pieces), where one CTA a
    column would leave the hub's 500 as the tail."""
    ptr = _ptr([500] + [5] * 99)
    table, colinfo, nslots, cta = _work_lists.cta_cut(ptr, 8, np)
    loads = [int((table[cta[c]:cta[c + 1], 2] - table[cta[c]:cta[c + 1], 1]).sum())
             for c in range(8)]
    assert max(loads) == 125 and sum(loads) == 995
    assert colinfo[0, 1] == 5 and nslots >= 5
    with pytest.raises(ValueError, match="nctas"):
        _work_lists.cta_cut(ptr, 0, np)


def test_chunk_table_no_columns():
    table, colinfo, nslots = _work_lists.chunk_table(np.zeros(1, np.int64), 4, np)
    assert table.shape == (0, 4) and colinfo.shape == (0, 2) and nslots == 0


def _check_cut(table, colinfo, nslots, ptr):
    """chunk_table's contract: each column's entries once, in order, in adjacent rows; slots
    numbered 0 .. nslots - 1 over the split columns."""
    counts = np.diff(ptr)
    assert table.dtype == np.int32 and colinfo.dtype == np.int32
    assert colinfo.shape == (len(counts), 2) and np.all(np.diff(table[:, 0]) >= 0)
    slots = []
    for j, n in enumerate(counts):
        rows = table[table[:, 0] == j]
        assert len(rows) == colinfo[j, 1] >= 1
        assert rows[0, 1] == ptr[j] and rows[-1, 2] == ptr[j + 1]
        assert np.all(rows[1:, 1] == rows[:-1, 2])
        assert np.all(rows[:, 2] > rows[:, 1]) or (n == 0 and len(rows) == 1)
        if len(rows) == 1:
            assert rows[0, 3] == -1
        else:
            assert list(rows[:, 3]) == list(range(colinfo[j, 0], colinfo[j, 0] + len(rows)))
            slots += list(rows[:, 3])
    assert sorted(slots) == list(range(nslots))


def _best_largest_item(ptr, weight, budget):
    """The smallest largest-item weight over every cut into at most ``budget`` items of
    consecutive steps (brute force, for small cases)."""
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    best = []          # per group: best[g][p - 1] with p items
    for a, b in zip(ptr[:-1], ptr[1:]):
        n = b - a
        f = [[np.inf] * (n + 1) for _ in range(n + 1)]      # f[p][i]: first i steps, p items
        f[0][0] = 0.0
        for q in range(1, n + 1):
            for i in range(1, n + 1):
                f[q][i] = min(max(f[q - 1][t], cum[a + i] - cum[a + t]) for t in range(i))
        best.append([f[q][n] for q in range(1, n + 1)] or [0.0])
    candidates = sorted({v for f in best for v in f})
    for t in candidates:
        if sum(next((q + 1 for q, v in enumerate(f) if v <= t), budget + 1) for f in best) <= budget:
            return t
    raise AssertionError("no cut fits")


@pytest.mark.parametrize("budget", [5, 6, 9, 14, 40])
@pytest.mark.parametrize("counts", [[0, 0, 0, 0, 0], [7, 0, 12, 1, 9], [20, 3, 3, 3, 3],
                                    [1, 1, 1, 1, 1]])
def test_balanced_table_cuts_near_the_best(counts, budget):
    rng = np.random.default_rng(sum(counts) + budget)
    ptr = _ptr(counts)
    # steps of very unequal weight: a band of full steps among nearly empty ones
    weight = np.where(rng.random(int(ptr[-1])) < 0.3, 3.0, 1.0) + rng.random(int(ptr[-1])) * 0.1
    table, colinfo, nslots = _work_lists.balanced_table(ptr, weight, budget)
    _check_cut(table, colinfo, nslots, ptr)
    assert len(table) <= budget
    if sum(max(n, 1) for n in counts) <= budget:
        assert np.array_equal(colinfo[:, 1], np.maximum(counts, 1))   # one item per step
    if ptr[-1]:
        cum = np.concatenate([[0.0], np.cumsum(weight)])
        largest = (cum[table[:, 2]] - cum[table[:, 1]]).max()
        best = _best_largest_item(ptr, weight, budget)
        # the target is at most the best cut's; cutting at steps adds at most one step
        assert best - 1e-9 <= largest <= best * (1 + 1e-6) + weight.max()


def test_balanced_table_follows_weight():
    # one group: 10 heavy steps, then 30 light ones; 2 items split the weight, not the steps
    ptr = _ptr([40])
    weight = np.array([4.0] * 10 + [1.0] * 30)
    table, _, _ = _work_lists.balanced_table(ptr, weight, 2)
    assert table[:, 1:3].tolist() == [[0, 9], [9, 40]]
    # two groups, one three times the other's weight: 4 items go 3 + 1
    ptr = _ptr([12, 12])
    table, colinfo, _ = _work_lists.balanced_table(ptr, np.array([3.0] * 12 + [1.0] * 12), 4)
    assert colinfo[:, 1].tolist() == [3, 1]
    with pytest.raises(ValueError, match="budget"):
        _work_lists.balanced_table(ptr, np.ones(24), 1)
    with pytest.raises(ValueError, match="positive"):
        _work_lists.balanced_table(ptr, np.r_[np.ones(23), 0.0], 4)
    with pytest.raises(ValueError, match="positive"):
        _work_lists.balanced_table(ptr, np.ones(23), 4)


def test_step_blocks_by_element_code_and_block_size():
    # 16-bit bs 8: 50, bs 16: 25; float32 (3xTF32) bs 8: 28; TF32 and pairs not listed 100
    from cupy_bsparse import _specs
    assert _work_lists.step_blocks(_specs.dsd_grouped_tma_spec(8, 1, 64, False)) == 50
    assert _work_lists.step_blocks(_specs.dsd_grouped_tma_spec(8, 2, 64, True)) == 50
    assert _work_lists.step_blocks(_specs.dsd_grouped_tma_spec(16, 1, 64, False)) == 25
    assert _work_lists.step_blocks(_specs.dsd_grouped_tma_spec(16, 2, 4096, True)) == 25
    assert _work_lists.step_blocks(_specs.dsd_grouped_tma_spec(8, 0, 64, False)) == 28
    assert _work_lists.step_blocks(_specs.dsd_grouped_spec(8, 0, 7, False)) == 28
    assert _work_lists.step_blocks(_specs.dsd_grouped_spec(8, _specs._TF32, 7, False)) == 100


def test_item_budget():
    # split only when the groups leave part of one wave of resident CTAs idle
    assert _work_lists._item_budget(64, 1, 264) == 264
    assert _work_lists._item_budget(64, 4, 264) == 66
    assert _work_lists._item_budget(64, 5, 264) is None
    assert _work_lists._item_budget(264, 1, 264) is None


def test_balance_budget():
    """Items a row tile where the heaviest group outweighs the mean by more than the factor:
    each group its weight over the mean, rounded up, at least one; None where none does."""
    ptr = np.array([0, 2, 4, 6, 16])                 # group weights 2, 2, 2, 10: mean 4
    w = np.ones(16)
    assert _work_lists.balance_budget(ptr, w, 1.25) == 1 + 1 + 1 + 3
    assert _work_lists.balance_budget(ptr, w, 2.5) is None        # 10 <= 2.5 x 4
    assert _work_lists.balance_budget(ptr, w, 2.49) == 6
    assert _work_lists.balance_budget(np.array([0, 4, 8]), np.ones(8), 1.0) is None
    # empty groups: one item each, out of the mean (two equal groups stay whole)
    assert _work_lists.balance_budget(np.array([0, 0, 0, 10, 20]), np.ones(20), 1.25) is None
    assert _work_lists.balance_budget(np.array([0, 0, 2, 4, 12]), np.ones(12), 1.25) == 5
    assert _work_lists.balance_budget(np.array([0]), np.ones(0), 1.25) is None


def test_grouped_plan_balance(monkeypatch):
    """dsd_grouped_plan with ``balance`` where the groups fill a wave unsplit: a layout whose
    first columns are full (hubs) gets its heavy groups cut into items (and split-combine
    slots), each of a group's items consecutive steps covering the group; without hubs,
    without ``balance``, or where the partials would pass BALANCE_MAX_WORKSPACE, one item a
    group and no slots."""
    from cupy_bsparse.block_layout import BlockLayout

    monkeypatch.setattr(_work_lists, "_to_device", lambda *a: tuple(a))
    monkeypatch.setattr(_work_lists, "_ready", lambda plan: plan)
    spec = _specs.dsd_grouped_tma_spec(8, 0, 4096, False)
    rng = np.random.default_rng(5)
    for hubs in (True, False):
        mask = rng.random((151, 300)) < 0.05
        if hubs:
            mask[:, :12] = True
        lay = BlockLayout.from_mask(mask, 8)
        # a workspace cap the cut would pass: unsplit
        monkeypatch.setattr(_work_lists, "BALANCE_MAX_WORKSPACE", 0)
        (capped, _, _, _), ns = _work_lists.dsd_grouped_plan(lay, False, spec, 64, 264, 1.25)
        assert ns == 0 and capped.shape[0] == -(-300 * 8 // (dict(spec)["R"] * 8))
        monkeypatch.setattr(_work_lists, "BALANCE_MAX_WORKSPACE", 256 << 20)
        (item, ginfo, steps, _), nslots = _work_lists.dsd_grouped_plan(lay, False, spec, 64,
                                                                      264, 1.25)
        ngroups = ginfo.shape[0]
        (item0, _, _, _), nslots0 = _work_lists.dsd_grouped_plan(lay, False, spec, 64, 264)
        assert item0.shape[0] == ngroups and nslots0 == 0
        if not hubs:
            assert item.shape[0] == ngroups and nslots == 0
            continue
        assert item.shape[0] > ngroups and nslots > 0
        assert (item[:, 2] - item[:, 1]).sum() == steps.shape[0]
        for g in range(ngroups):                       # a group's items tile its steps
            rows = item[item[:, 0] == g]
            rows = rows[np.argsort(rows[:, 1])]
            assert (rows[1:, 1] == rows[:-1, 2]).all() and (rows[:, 2] > rows[:, 1]).all()
            assert ginfo[g, 1] == rows.shape[0] and ((rows[:, 3] >= 0) == (rows.shape[0] > 1)).all()
        assert item[item[:, 0] == 0].shape[0] > 1      # the hubs' group cut


def test_chunk_fill_rule():
    # float32 cuts columns for two waves on CUDA cores at every M, on the stream kernel only for
    # 16 < M <= 64; 16-bit kernels never (docs/perf-notes.md v4, v10)
    assert _work_lists.chunk_fill("column", 0, 4096) and _work_lists.chunk_fill("column", 0, 1)
    assert _work_lists.chunk_fill("stream", 0, 64) and _work_lists.chunk_fill("stream", 0, 17)
    assert not _work_lists.chunk_fill("stream", 0, 16)
    assert not _work_lists.chunk_fill("stream", 0, 65)
    for kind in ("column", "stream", "grouped", "grouped_tma"):
        assert not _work_lists.chunk_fill(kind, 1, 64) and not _work_lists.chunk_fill(kind, 2, 64)


class _Layout:
    def __init__(self, nnzb, ncols, blocksize=64):
        self.nnzb, self.block_shape, self.blocksize = nnzb, (ncols, ncols), blocksize


@pytest.mark.parametrize("nnzb,ncols,resident,expect", [
    (6554, 256, 264, 8),       # float32 bs 64, M = 64 on the H200: 2 CTAs per SM
    (26214, 512, 660, 16),     # bs 32: 5 CTAs per SM
    (104858, 1024, 1188, 32),  # bs 16: 9 CTAs per SM
    (100, 256, 264, 2),        # too few blocks: the two-stage floor
])
def test_chunk_blocks_fill_two_waves(nnzb, ncols, resident, expect):
    lay = _Layout(nnzb, ncols)
    assert _work_lists.chunk_blocks(lay, False, 1, 1, resident, True) == expect
    for g in (1, 2, 4):
        # without fill, one wave: 1.5 times the mean column length, in whole stages of g blocks
        plain = _work_lists.chunk_blocks(lay, False, 1, g, max(resident, ncols), False)
        cap = 1.5 * nnzb / ncols
        assert plain % g == 0 and plain >= 2 * g
        assert plain >= cap and (plain < cap + g or plain == 2 * g)
        # more columns than resident CTAs: about twice the mean, a power of two times g
        plain = _work_lists.chunk_blocks(lay, False, 2, g, ncols, False)
        mean2 = -(-2 * nnzb // (ncols * g))
        steps = plain // g
        assert plain % g == 0 and steps >= mean2 and steps < 2 * max(mean2, 2)
        assert steps & (steps - 1) == 0


def test_chunk_blocks_cap_by_block_size():
    # one wave: bs 32 caps at 1.25x the mean column, bs 64 (and sizes not listed) at 1.5x
    for bs, cap in ((32, 1.25), (64, 1.5), (16, 1.5)):
        lay = _Layout(26214, 512, bs)
        assert _work_lists.chunk_blocks(lay, False, 1, 1, 1024, False) == int(
            np.ceil(cap * 26214 / 512))


def _random_entries(rng, ncols, kin, density):
    """dsd.cu look-up entries of a random layout: per column, sorted x column blocks."""
    cols = [np.flatnonzero(rng.random(kin) < density) for _ in range(ncols)]
    ptr = _ptr([len(c) for c in cols])
    ent = np.zeros((int(ptr[-1]), 2), np.int32)
    if ptr[-1]:
        ent[:, 0] = np.concatenate(cols)
        ent[:, 1] = rng.permutation(int(ptr[-1]))
    return ptr, ent


@pytest.mark.parametrize("by_column", [False, True])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("r,kwb,cap", [(4, 8, 64), (3, 2, 1), (8, 1, 4), (1, 5, 2)])
def test_group_table_covers_each_entry_once(r, kwb, cap, density, by_column):
    rng = np.random.default_rng(7)
    ncols, kin, bs = 13, 23, 8
    ptr, ent = _random_entries(rng, ncols, kin, density)
    steps, gent, gptr = _work_lists.group_table(ptr, ent, r, kwb, cap, kin, bs, np,
                                                by_column=by_column)
    ref = _work_lists.group_table(ptr, ent, r, kwb, cap, kin, bs, np) if by_column else None
    ngroups = -(-ncols // r)
    assert steps.dtype == np.int32 and gent.dtype == np.int32 and gptr.dtype == np.int64
    assert gptr.shape == (ngroups + 1,) and gptr[0] == 0 and gptr[-1] == len(steps)
    assert np.all(np.diff(gptr) >= 0)
    got = set()
    for g in range(ngroups):
        prev_end = None
        for s in range(gptr[g], gptr[g + 1]):
            k0, e0, e1, kcols = steps[s]
            assert 0 < e1 - e0 <= cap
            assert prev_end is None or e0 == prev_end   # a group's entries are contiguous
            prev_end = e1
            # one slab's block-rows, exactly those of the step's first and last entries
            c0, nc = k0 // bs, kcols // bs
            assert k0 % bs == 0 and kcols % bs == 0 and 0 < nc <= kwb
            assert c0 // kwb == (c0 + nc - 1) // kwb and c0 + nc <= kin
            cls = gent[e0:e1, 1] >> 16
            assert cls.min() == 0 and cls.max() == nc - 1
            if by_column:
                # the same entries as without, column by column (each column's order kept)
                want_rows = ref[1][e0:e1]
                order = np.lexsort((want_rows[:, 1] >> 16, want_rows[:, 1] & 0xFFFF))
                assert np.array_equal(gent[e0:e1], want_rows[order])
                assert np.array_equal(steps, ref[0]) and np.array_equal(gptr, ref[2])
            prev = None
            for e in range(e0, e1):
                b, code = gent[e]
                cl, jl = code >> 16, code & 0xFFFF
                assert cl < nc and jl < r
                # block-row by block-row, so a step's blocks spread over the group's columns;
                # by_column: column by column
                assert prev is None or ((jl, cl) if by_column else (cl, jl)) > prev
                prev = (jl, cl) if by_column else (cl, jl)
                got.add((g * r + jl, c0 + cl, int(b)))
    want = {(j, int(ent[e, 0]), int(ent[e, 1]))
            for j in range(ncols) for e in range(ptr[j], ptr[j + 1])}
    assert got == want and len(gent) == len(want)


@pytest.mark.parametrize("by_column", [False, True])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("cap", [3, 40, 100])
def test_bulk_copies_as_the_producer_issues_them(cap, density, by_column):
    # dsd_grouped_tma.cu's producer: per step, per pass of 32 entries (one a lane), a copy
    # starts at lane 0 and wherever a block is not its lane neighbour's next in storage
    rng = np.random.default_rng(5)
    ncols, kin, bs = 40, 70, 8
    ptr, ent = _random_entries(rng, ncols, kin, density)
    # stored blocks as W's storage orders them: for x @ W, W's CSR (by x column block, then
    # output column); for x @ W^T, whose output columns are W's rows, by output column
    col = np.repeat(np.arange(ncols), np.diff(ptr))
    order = np.lexsort((ent[:, 0], col) if by_column else (col, ent[:, 0]))
    ent[order, 1] = np.arange(len(ent))
    steps, gent, gptr = _work_lists.group_table(ptr, ent, 8, 16, cap, kin, bs, np,
                                                by_column=by_column)
    want = 0
    for _, e0, e1, _ in steps:
        for p0 in range(e0, e1, 32):
            blk = gent[p0:min(p0 + 32, e1), 0]
            want += 1 + int(np.count_nonzero(blk[1:] != blk[:-1] + 1))
    assert _work_lists.bulk_copies(steps, gent, np) == want
    assert want >= len(steps) and (want <= len(gent))
    if density == 1.0 and cap == 100:     # a step's dense rows (or columns): long runs
        assert want < len(gent) / 4


@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("r,ncx,nblk", [(4, 3, 8), (32, 32, 128), (1, 1, 1), (3, 5, 2)])
def test_sddmm_group_table_covers_each_block_once(r, ncx, nblk, density):
    rng = np.random.default_rng(11)
    nrows, ncols = 17, 13
    mask = rng.random((nrows, ncols)) < density
    indptr = _ptr(mask.sum(axis=1))
    indices = np.concatenate([np.flatnonzero(m) for m in mask]).astype(np.int32)
    items, gent, crow = _work_lists.sddmm_group_table(indptr, indices, r, ncx, nblk, np)
    assert items.dtype == gent.dtype == crow.dtype == np.int32
    assert crow.shape == (len(items) * ncx,)
    got = []
    for i, (g, e0, e1, nc) in enumerate(items):
        assert 0 < e1 - e0 <= nblk and 0 < nc <= ncx
        assert i == 0 or e0 == items[i - 1][2]
        rows = crow[i * ncx:(i + 1) * ncx]
        assert np.all(rows[:nc] >= 0) and np.all(rows[nc:] == -1)
        assert np.all(np.diff(rows[:nc]) > 0)            # block-rows in order, each once
        slots = set()
        for b, code in gent[e0:e1]:
            slot, jl = code >> 16, code & 0xFFFF
            assert slot < nc and jl < r
            slots.add(int(slot))
            got.append((int(b), int(rows[slot]), g * r + jl))
        assert slots == set(range(nc))                   # every slot used
    row_of = np.repeat(np.arange(nrows), np.diff(indptr))
    want = [(b, int(row_of[b]), int(indices[b])) for b in range(len(indices))]
    assert sorted(got) == sorted(want) and len(got) == len(gent)

    # pair_units: the same blocks, two by two within one column of an item
    pitems, units = _work_lists.pair_units(items, gent, np)
    assert pitems.dtype == units.dtype == np.int32 and units.shape[1] == 4
    np.testing.assert_array_equal(pitems[:, [0, 3]], items[:, [0, 3]])
    paired = []
    for i, (g, u0, u1, nc) in enumerate(pitems):
        assert 0 < u1 - u0 <= nblk and (i == 0 or u0 == pitems[i - 1][2])
        item_blocks = set(gent[items[i][1]:items[i][2], 0].tolist())
        for b, code, b2, code2 in units[u0:u1]:
            paired.append(int(b))
            assert b in item_blocks
            if b2 >= 0:
                assert b2 in item_blocks and (code2 & 0xFFFF) == (code & 0xFFFF)
                assert (code2 >> 16) > (code >> 16)                 # block-row order
                paired.append(int(b2))
            else:
                assert code2 == 0
        cols = [c & 0xFFFF for c in gent[items[i][1]:items[i][2], 1]]
        singles = sum(1 for u in units[u0:u1] if u[2] < 0)
        assert singles == sum(cols.count(j) % 2 for j in set(cols))   # one per odd column
    assert sorted(paired) == sorted(gent[:, 0].tolist())


@pytest.mark.parametrize("walk", ["ascending", "hashed", "hubs"])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("r,ncols", [(2, 13), (4, 13), (4, 16), (2, 1), (4, 3)])
def test_column_group_table_as_the_kernel_walks_it(r, ncols, density, walk):
    """dsd_stream.cu's R > 1 steps: a group's steps are its columns' x blocks, each once,
    ascending or by ``walk_rank`` (GROUP_WALK); a step's slot q holds column q's block there
    (-1 where none) and the mask has exactly the filled slots; every entry lands once, and y
    from the steps equals y from the columns."""
    rng = np.random.default_rng(11)
    kin = 23
    ptr, ent = _random_entries(rng, ncols, kin, density)
    gptr, gent = _work_lists.column_group_table(ptr, ent, r, np, walk)
    rank = (np.arange(kin) if walk == "ascending" or not len(ent)
            else _work_lists.walk_rank(ent[:, 0], walk, np))
    ngroups = -(-ncols // r)
    width = 4 * -(-(r + 2) // 4)
    assert gptr.dtype == np.int64 and gent.dtype == np.int32 and gent.shape[1] == width
    assert gptr.shape == (ngroups + 1,) and gptr[0] == 0 and gptr[-1] == len(gent)
    assert np.all(np.diff(gptr) >= 0)
    x = rng.standard_normal((3, kin))
    blocks = rng.standard_normal(max(len(ent), 1))
    want_y = np.zeros((3, ncols))
    for j in range(ncols):
        for e in range(ptr[j], ptr[j + 1]):
            want_y[:, j] += x[:, ent[e, 0]] * blocks[ent[e, 1]]
    got, y = set(), np.zeros((3, ncols))
    for g in range(ngroups):
        rows = gent[gptr[g]:gptr[g + 1]]
        assert np.all(np.diff(rank[rows[:, 0]]) > 0)           # in the walk, each once
        assert np.all(rows[:, 2 + r:] == -1)                   # padding
        for i, mask, *blk in rows:
            blk = blk[:r]
            assert mask == sum(1 << q for q in range(r) if blk[q] >= 0) and mask
            for q in range(r):
                if blk[q] >= 0:
                    assert g * r + q < ncols
                    got.add((g * r + q, int(i), int(blk[q])))
                    y[:, g * r + q] += x[:, i] * blocks[blk[q]]
    want = {(j, int(ent[e, 0]), int(ent[e, 1]))
            for j in range(ncols) for e in range(ptr[j], ptr[j + 1])}
    assert got == want and sum(bin(m).count("1") for m in gent[:, 1]) == len(ent)
    np.testing.assert_allclose(y, want_y, atol=1e-12)


def test_group_step_share_follows_the_layout():
    """The share of x tile copies 4-column groups leave: about 1 - 0.9^4 / (4 x 0.1) = 0.86 on
    a random layout at d = 0.1, far less on a banded one; 1 with one output column, 1/4 where
    every group of 4 columns has its blocks in one block-row; the same under every walk, whose
    steps are cached for the plan."""
    from cupy_bsparse import layouts
    from cupy_bsparse.block_layout import BlockLayout

    rnd = BlockLayout.from_mask(layouts.random(256, 256, 0.1, seed=0), 32)
    assert 0.8 < _work_lists.group_step_share(rnd, False, 4) < 0.9
    ptr, ent = _work_lists._dsd_entries(rnd, True, np)
    for walk in ("hashed", "hubs"):
        assert (_work_lists.group_step_share(rnd, True, 4, walk)
                == _work_lists.group_step_share(rnd, True, 4))
        steps = _work_lists._group_steps(rnd, True, 4, walk)[2]
        assert np.array_equal(steps, _work_lists.column_group_table(ptr, ent, 4, np, walk)[1])


def test_group_plan_walks(monkeypatch):
    """dsd_group_plan's steps in each walk's order (``column_group_table``'s), cached apart
    (the plans' device copy stubbed out, so this runs on the CPU)."""
    from cupy_bsparse import layouts
    from cupy_bsparse.block_layout import BlockLayout

    monkeypatch.setattr(_work_lists, "_to_device", lambda *a: tuple(a))
    monkeypatch.setattr(_work_lists, "_ready", lambda plan: plan)
    band = BlockLayout.from_mask(layouts.small_world(64, 8, 0.1, seed=0), 32)   # a band
    ptr, ent = _work_lists._dsd_entries(band, False, np)
    for _ in range(2):                  # the second pass reads the cache
        for walk in _work_lists.WALKS:
            gent = _work_lists.dsd_group_plan(band, False, 4, walk=walk)[2]
            assert np.array_equal(gent, _work_lists.column_group_table(ptr, ent, 4, np, walk)[1])
    assert not np.array_equal(_work_lists.dsd_group_plan(band, False, 4)[2],
                              _work_lists.dsd_group_plan(band, False, 4, walk="hubs")[2])
    band = BlockLayout.from_mask(np.abs(np.subtract.outer(np.arange(64), np.arange(64))) < 4, 32)
    assert _work_lists.group_step_share(band, False, 4) < 0.5
    col = BlockLayout.from_mask(np.ones((8, 1), bool), 32)
    assert _work_lists.group_step_share(col, False, 4) == 1.0    # one output column
    assert _work_lists.group_step_share(col, True, 4) == 0.25    # 4 columns share x block 0


@pytest.mark.parametrize("nb", [1, 2, 4, 7])
def test_sddmm_segment_count(nb):
    """sddmm_segment_count counts sddmm_plan's segments (each block-row cut into ceil(blocks /
    nb); both count by ``_segments_per_row``), empty block-rows and an empty layout included."""
    from cupy_bsparse.block_layout import BlockLayout

    mask = np.random.default_rng(nb).random((40, 30)) < 0.3
    mask[[3, 17]] = False                                    # empty block-rows
    for m in (mask, np.zeros((5, 6), bool)):
        layout = BlockLayout.from_mask(m, 16)
        want = int(sum(-(-int(r) // nb) for r in m.sum(1)))
        assert _work_lists.sddmm_segment_count(layout, nb) == want


def test_largest_first_order():
    """The wgrad's segment order for 16-bit sddmm_tall.cu: block counts largest first, equal
    counts in their first order (a stable sort), every segment once."""
    counts = np.array([4, 4, 1, 4, 3, 2, 4, 1, 3])
    order = _work_lists.largest_first_order(counts, np)
    assert counts[order].tolist() == [4, 4, 4, 4, 3, 3, 2, 1, 1]
    assert order.tolist() == [0, 1, 3, 6, 4, 8, 5, 2, 7]
    assert _work_lists.largest_first_order(np.zeros(0, np.int32), np).size == 0
    ties = np.array([5, 0, 9, 7, 1, 2, 3, 8, 6])          # equal counts by these keys
    order = _work_lists.largest_first_order(counts, np, ties)
    assert order.tolist() == [1, 6, 0, 3, 4, 8, 5, 7, 2]


@pytest.mark.parametrize("even", [False, True])
@pytest.mark.parametrize("nb", [1, 2, 7, 8])
def test_segment_table(nb, even):
    """segment_table cuts every block-row into ceil(blocks / nb) segments of at most nb blocks
    that cover its blocks once, in order: nb each and a shorter last one, or with ``even``
    counts that differ by at most 1 within the row; empty block-rows have none."""
    rng = np.random.default_rng(nb + 10 * even)
    blocks = rng.integers(0, 3 * nb + 2, 50)
    blocks[[0, 7, 49]] = 0
    blocks[3], blocks[4] = nb, nb + 1
    indptr = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64)
    seg = _work_lists.segment_table(indptr, nb, even, np)
    assert seg.dtype == np.int32 and seg.shape == (int(sum(-(-b // nb) for b in blocks)), 4)
    assert (seg[:, 2] >= 1).all() and (seg[:, 2] <= nb).all() and (seg[:, 3] == 0).all()
    assert (np.diff(seg[:, 0]) >= 0).all()                       # block-row order
    for row, b in enumerate(blocks):
        mine = seg[seg[:, 0] == row]
        assert len(mine) == -(-b // nb)
        if not b:
            continue
        assert mine[0, 1] == indptr[row] and (mine[1:, 1] == mine[:-1, 1] + mine[:-1, 2]).all()
        assert mine[-1, 1] + mine[-1, 2] == indptr[row + 1]
        if even:
            assert mine[:, 2].max() - mine[:, 2].min() <= 1
        else:
            assert (mine[:-1, 2] == nb).all()
    assert _work_lists.segment_table(np.zeros(4, np.int64), nb, even, np).shape == (0, 4)


@pytest.mark.parametrize("least", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape,density", [((2, 2), 1.0), ((8, 6), 0.3), ((40, 30), 0.1),
                                           ((40, 30), 0.6), ((4, 10), 0.0)])
def test_coarse_table(shape, density, least):
    """The 2 x 2 coarsening of the wgrad: a coarse block exactly where at least ``least`` of its
    four blocks are stored (an empty block-row and -column included), in CSR order; the other
    stored blocks in a CSR of their own, in order; each stored block's index * 4 + quadrant, or
    -1 - its place in the rest, pointing back at its own place."""
    rng = np.random.default_rng(7)
    mask = rng.random(shape) < density
    if shape[0] > 5:
        mask[5, :] = False
        mask[:, 3] = False
    rows, cols = np.nonzero(mask)
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    cptr, cind, sub, rptr, rind = _work_lists.coarse_table(indptr, cols.astype(np.int32),
                                                           shape[1], np, least)
    assert all(a.dtype == np.int32 for a in (cptr, cind, sub, rptr, rind))
    counts = mask.reshape(shape[0] // 2, 2, shape[1] // 2, 2).sum(axis=(1, 3))
    crows, ccols = np.nonzero(counts >= least)
    assert list(cptr) == [0] + list(np.cumsum((counts >= least).sum(axis=1)))
    assert list(cind) == list(ccols)
    left = counts[rows // 2, cols // 2] < least
    assert list(rptr) == [0] + list(np.cumsum(np.bincount(rows[left], minlength=shape[0])))
    assert list(rind) == list(cols[left])
    assert np.array_equal(sub < 0, left)
    c, q = sub[~left] >> 2, sub[~left] & 3
    assert np.array_equal(crows[c] * 2 + (q >> 1), rows[~left])
    assert np.array_equal(ccols[c] * 2 + (q & 1), cols[~left])
    assert list(-1 - sub[left]) == list(range(int(left.sum())))
    assert len(set(sub.tolist())) == len(sub)


def test_coarse_table_odd_counts():
    """``coarse_table`` refuses an odd block-row or block-column count (``coarse_plan`` leaves
    such layouts uncoarsened)."""
    for nrows, nbc in ((3, 4), (4, 3)):
        indptr = np.zeros(nrows + 1, np.int32)
        with pytest.raises(ValueError, match="even block counts"):
            _work_lists.coarse_table(indptr, np.zeros(0, np.int32), nbc, np)


def test_unit_offsets():
    """unit_offsets (sddmm_grouped.cu's SOFF): each unit's codes become byte offsets into a
    stage, bs * itemsize per x slot and per dy column: the first slot's in the low 16 bits of
    field 1 and the partner's (its own slot again without one) in the high, the dy column's in
    field 3; blocks and partners unchanged; the input left as it was."""
    rng = np.random.default_rng(5)
    mask = rng.random((40, 70)) < 0.3
    mask[3] = False
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
    indices = np.nonzero(mask)[1].astype(np.int32)
    items, gent, crow = _work_lists.sddmm_group_table(indptr, indices, 8, 16, 64, np)
    items, units = _work_lists.pair_units(items, gent, np)
    before = units.copy()
    out = _work_lists.unit_offsets(units, 8, 4, np)
    assert np.array_equal(units, before) and out.dtype == np.int32
    assert np.array_equal(out[:, [0, 2]], units[:, [0, 2]])
    slot, col = units[:, 1] >> 16, units[:, 1] & 0xFFFF
    slot2 = np.where(units[:, 2] >= 0, units[:, 3] >> 16, slot)
    assert np.array_equal(out[:, 1] & 0xFFFF, slot * 32)
    assert np.array_equal(out[:, 1] >> 16, slot2 * 32)
    assert np.array_equal(out[:, 3], col * 32)
    assert (units[:, 2] >= 0).any() and (units[:, 2] < 0).any()   # both kinds of unit


@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
def test_two_way_units(density):
    """two_way_units (sddmm_grouped.cu's TPAIRS): every stored block of an item in exactly one of
    its units; a transposed unit's two blocks share their x slot, its A offsets their dy columns
    (after the row's ncx x slots) and its B offset the slot, flag 1 << 16; a plain pair shares
    its column, a single unit repeats its slot and has no partner; the items' unit ranges cover
    the units in order; no more units than pair_units gives; the fewest there can be (one
    alone in a connected part of odd size); the inputs left as they were."""
    rng = np.random.default_rng(11)
    mask = rng.random((40, 70)) < density
    if density > 0:
        mask[3] = False
        mask[:, 5] = False
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
    indices = np.nonzero(mask)[1].astype(np.int32)
    ncx, bs, isz = 16, 8, 4
    items, gent, crow = _work_lists.sddmm_group_table(indptr, indices, 8, ncx, 64, np)
    ib, gb = items.copy(), gent.copy()
    it2, units = _work_lists.two_way_units(items, gent, ncx, bs, isz, np)
    assert np.array_equal(items, ib) and np.array_equal(gent, gb)
    assert units.dtype == np.int32 and it2.dtype == np.int32 and units.shape[1] == 4
    if not indices.size:                             # density 0: no items, no units
        assert len(it2) == 0 and len(units) == 0
        return
    assert it2[0, 1] == 0 and it2[-1, 2] == len(units)
    assert np.array_equal(it2[1:, 1], it2[:-1, 2]) and np.array_equal(it2[:, [0, 3]], items[:, [0, 3]])
    step = bs * isz
    code = {int(b): int(c) for b, c in gent}
    item_of = {int(b): i for i, (e0, e1) in enumerate(items[:, 1:3]) for b in gent[e0:e1, 0]}
    seen = []
    for i, (u0, u1) in enumerate(it2[:, 1:3]):
        for b1, a, b2, bb in units[u0:u1]:
            seen += [b1] + ([b2] if b2 >= 0 else [])
            assert item_of[b1] == i and (b2 < 0 or item_of[b2] == i)
            s1, c1 = code[b1] >> 16, code[b1] & 0xFFFF
            if bb >> 16:                             # transposed: a shared x slot
                s2, c2 = code[b2] >> 16, code[b2] & 0xFFFF
                assert s1 == s2 and (bb & 0xFFFF) == s1 * step
                assert (a & 0xFFFF) == (ncx + c1) * step and (a >> 16) == (ncx + c2) * step
            elif b2 >= 0:                            # a shared column
                s2, c2 = code[b2] >> 16, code[b2] & 0xFFFF
                assert c1 == c2 and bb == (ncx + c1) * step
                assert (a & 0xFFFF) == s1 * step and (a >> 16) == s2 * step
            else:
                assert bb == (ncx + c1) * step and (a & 0xFFFF) == (a >> 16) == s1 * step
    assert sorted(seen) == sorted(gent[:, 0].tolist())
    assert len(units) <= len(_work_lists.pair_units(items, gent, np)[1])
    # the fewest units: each item's connected parts of x slots and columns leave <= 1 alone
    for i, (e0, e1) in enumerate(items[:, 1:3]):
        parent = {}

        def find(a):
            while parent.setdefault(a, a) != a:
                a = parent[a]
            return a
        for c in gent[e0:e1, 1]:
            parent[find(("s", c >> 16))] = find(("c", c & 0xFFFF))
        parts = collections.Counter(find(("s", c >> 16)) for c in gent[e0:e1, 1])
        assert it2[i, 2] - it2[i, 1] == sum((n + 1) // 2 for n in parts.values())
    if density == 0.3:
        assert (units[:, 3] >> 16).any() and (units[:, 2] < 0).any()
        assert ((units[:, 3] >> 16 == 0) & (units[:, 2] >= 0)).any()   # all three kinds


@pytest.mark.parametrize("edges,nv,singles", [
    ([], 3, 0),                                            # no edge
    ([(0, 1)], 2, 1),                                      # one edge
    ([(0, 3), (0, 4), (0, 5)], 6, 1),                      # a star of three
    ([(0, 2), (1, 2), (1, 3), (0, 3)], 4, 0),              # a 4-cycle
    ([(0, 4), (1, 4), (1, 5), (2, 5), (2, 6)], 7, 1),      # a path of five
    ([(0, 3), (1, 4), (2, 5)], 6, 3),                      # three parts of one edge
    ([(0, 2), (0, 3), (1, 2), (1, 3), (0, 4), (1, 4)], 5, 0),   # K(2, 3)
    ([(5, 6), (0, 1)], 8, 2)])                             # vertices of no edge between
def test_forest_pairs(edges, nv, singles):
    """_forest_pairs: every edge once, each pair's two edges meet at the vertex named, and one
    edge alone a connected part of odd edge count, none for an even one."""
    us = np.asarray([u for u, _ in edges], dtype=np.int64)
    vs = np.asarray([v for _, v in edges], dtype=np.int64)
    one, other, shared = _work_lists._forest_pairs(us, vs, nv)
    assert sorted(one.tolist() + other[other >= 0].tolist()) == list(range(len(edges)))
    for a, b, v in zip(one, other, shared):
        if b >= 0:
            assert v in edges[a] and v in edges[b] and a != b
        else:
            assert v == -1
    assert (other < 0).sum() == singles


def test_forest_pairs_fewest():
    """_forest_pairs on 300 random bipartite graphs (x slots and columns, some vertices of no
    edge, several parts, deep ones among them): every edge once, pairs meet at their shared
    vertex, and exactly one edge alone for each connected part of odd edge count."""
    rng = np.random.default_rng(5)
    for t in range(300):
        ns, nc = int(rng.integers(1, 14)), int(rng.integers(1, 24))
        if t % 3 == 0:                                   # a band: long paths, deep forests
            mask = np.abs(np.arange(ns)[:, None] * nc // ns - np.arange(nc)) <= rng.integers(0, 3)
        else:
            mask = rng.random((ns, nc)) < rng.random() * 0.5
        u, c = np.nonzero(mask)
        us, vs = u.astype(np.int64), (c + ns).astype(np.int64)
        one, other, shared = _work_lists._forest_pairs(us, vs, ns + nc)
        assert sorted(one.tolist() + other[other >= 0].tolist()) == list(range(len(us)))
        two = other >= 0
        for e in (one[two], other[two]):
            assert ((us[e] == shared[two]) | (vs[e] == shared[two])).all()
        parent = list(range(ns + nc))

        def find(a):
            while parent[a] != a:
                a = parent[a]
            return a
        for a, b in zip(us, vs):
            parent[find(int(a))] = find(int(b))
        parts = collections.Counter(find(int(a)) for a in us)
        assert (~two).sum() == sum(n % 2 for n in parts.values())


def test_two_way_units_offsets_checked():
    """two_way_units: a stage row past 16-bit offsets is a ValueError."""
    rng = np.random.default_rng(3)
    mask = rng.random((40, 64)) < 0.3
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
    indices = np.nonzero(mask)[1].astype(np.int32)
    items, gent, _ = _work_lists.sddmm_group_table(indptr, indices, 8, 16, 64, np)
    with pytest.raises(ValueError, match="16-bit offsets"):
        _work_lists.two_way_units(items, gent, 2048, 8, 4, np)


@pytest.mark.parametrize("tail", [0, 1, 3, 1000])
def test_tail_longest_first(tail):
    """tail_longest_first: the last ``tail`` items sorted by entry count, most first (ties in
    order), each with its own crow row; the items before them unchanged; the inputs left as
    they were."""
    rng = np.random.default_rng(2)
    mask = rng.random((60, 48)) < 0.2
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
    indices = np.nonzero(mask)[1].astype(np.int32)
    items, gent, crow = _work_lists.sddmm_group_table(indptr, indices, 8, 16, 12, np)
    ib, cb_ = items.copy(), crow.copy()
    got, gcrow = _work_lists.tail_longest_first(items, crow, 16, tail, np)
    assert np.array_equal(items, ib) and np.array_equal(crow, cb_)
    n, k = len(items), min(tail, len(items))
    assert n > 3 and np.array_equal(got[:n - k], items[:n - k])
    rows = {tuple(r): tuple(c) for r, c in zip(items.tolist(), crow.reshape(n, 16).tolist())}
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, items.tolist()))
    for r, c in zip(got.tolist(), gcrow.reshape(n, 16).tolist()):
        assert rows[tuple(r)] == tuple(c)
    count = got[n - k:, 2] - got[n - k:, 1]
    assert (np.diff(count) <= 0).all()
    # ties keep their order: the entries' first index (increasing in the input) increases
    # within equal counts
    first = got[n - k:, 1]
    assert all(first[i] < first[i + 1] for i in range(k - 1) if count[i] == count[i + 1])


@pytest.mark.parametrize("split,pieces", [(0, 3), (2, 3), (5, 4), (9, 2)])
def test_tail_split_table(split, pieces):
    """tail_split_table (TSPLIT): the first n - split segments whole (column 3 -1), each of the
    last ``split`` repeated ``pieces`` times in place, piece k of the j-th holding slot
    j * pieces + k; columns 0-2 untouched, the input unchanged."""
    rng = np.random.default_rng(split * 10 + pieces)
    seg = np.zeros((9, 4), np.int32)
    seg[:, :3] = rng.integers(0, 100, (9, 3))
    keep = seg.copy()
    out = _work_lists.tail_split_table(seg, split, pieces, np)
    n = 9 - split
    assert np.array_equal(seg, keep) and out.dtype == np.int32
    assert out.shape == (n + split * pieces, 4)
    assert np.array_equal(out[:n, :3], seg[:n, :3]) and (out[:n, 3] == -1).all()
    tail = out[n:].reshape(split, pieces, 4)
    for j in range(split):
        assert (tail[j, :, :3] == seg[n + j, :3]).all()
        assert list(tail[j, :, 3]) == [j * pieces + k for k in range(pieces)]


@pytest.mark.parametrize("M,resident,tail", [(4095, 40, False), (1500, 64, False),
                                              (700, 500, False), (257, 9, True)])
def test_tail_split_covers_m(M, resident, tail):
    """TSPLIT's plan end to end on the CPU: segments (``segment_table``) split by
    ``_specs.tall_tail_split`` (``tail_split_table``), each entry summed over the rows
    sddmm_tall.cu gives it (a whole segment all of M; piece k of ``pieces`` rows k * rows ..
    min(M, (k + 1) * rows)), pieces added in order per segment: every stored block equals
    x^T dy on its block, each written once. Under one wave every segment is split; over it
    (``tail``), only the last wave's."""
    from cupy_bsparse import _specs

    rng = np.random.default_rng(M + resident)
    bs, nbr, nbc = 2, 12, 9
    mask = rng.random((nbr, nbc)) < 0.4
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64)
    cols = np.nonzero(mask)[1]
    x = rng.standard_normal((M, nbr * bs))
    dy = rng.standard_normal((M, nbc * bs))
    seg = _work_lists.segment_table(indptr, 3, True, np)
    old = (_specs.TALL_TSPLIT, _specs.TALL_TSPLIT_MIN_ROWS)
    _specs.TALL_TSPLIT, _specs.TALL_TSPLIT_MIN_ROWS = "1", 64
    try:
        pieces, rows, split = _specs.tall_tail_split(seg.shape[0], resident, M, 32)
    finally:
        _specs.TALL_TSPLIT, _specs.TALL_TSPLIT_MIN_ROWS = old
    assert 0 < split and (split < seg.shape[0]) == tail
    table = _work_lists.tail_split_table(seg, split, pieces, np)
    out = np.full((indptr[-1], bs, bs), np.nan)
    parts = {}
    for c, first, count, slot in table:
        r0, r1 = (0, M) if slot < 0 else (slot % pieces * rows, min(M, (slot % pieces + 1) * rows))
        assert r0 < r1                                    # no piece is empty
        for b in range(first, first + count):
            k = cols[b]
            prod = x[r0:r1, c * bs:(c + 1) * bs].T @ dy[r0:r1, k * bs:(k + 1) * bs]
            if slot < 0:
                assert np.isnan(out[b]).all()
                out[b] = prod
            else:
                parts.setdefault(b, {})[slot % pieces] = prod
    for b, by_piece in parts.items():
        assert sorted(by_piece) == list(range(pieces)) and np.isnan(out[b]).all()
        out[b] = sum(by_piece[k] for k in range(pieces))
    ref = np.stack([x[:, c * bs:(c + 1) * bs].T @ dy[:, k * bs:(k + 1) * bs]
                    for c in range(nbr) for k in np.nonzero(mask[c])[0]])
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
