"""p50 (perf-notes v50): dsd_grouped_tma.cu's groups cut by weight at large M
(``_specs.GROUP_BALANCE``), against one item a group (off). For each case, x @ W (fprop) and
dy @ W^T (bprop) ms with GROUP_BALANCE None / 1.25 (the factor only gates the cut),
alternated twice, the errors against
the first run's result, and the items a row tile. The CPU model predicted float32 bs 8
Barabasi-Albert fprop 2.377 -> about 2.16 ms at 1.25 (44 items for 32 groups); random and
small world keep one item a group (the same plan: a control of the timer). C = K = 8192, d 0.1.

    PYTHONPATH=.:probes python3 probes/p50.py [quick]
"""
import sys

import cupy

from _common import err, fresh, patched, problem, say, t_dsd
from cupy_bsparse import _specs, _work_lists, bench

say(bench.gpu_name())
cases = [("barabasi_albert", "float32", 8), ("random", "float32", 8)]
if "quick" not in sys.argv:
    cases += [("small_world", "float32", 8), ("barabasi_albert", "float16", 8),
              ("barabasi_albert", "bfloat16", 16), ("random", "float16", 8)]
M = 4096
variants = [("off", None), ("1.25", 1.25)]
for kind, dtype, bs in cases:
    sets = problem(M, 8192, 8192, bs, dtype, kind=kind)
    items = {}
    orig = _work_lists.dsd_grouped_plan

    def spy(layout, trans_w, spec, m_tiles, resident, balance=None):
        out = orig(layout, trans_w, spec, m_tiles, resident, balance)
        items[balance, trans_w] = (out[0][0].shape[0], out[0][1].shape[0], out[1])
        return out
    _work_lists.dsd_grouped_plan = spy
    refs, runs = {}, []
    for label, f in variants * 2:
        fresh(sets)
        with patched(_specs, GROUP_BALANCE=f):
            cells = []
            for op in ("fprop", "bprop"):
                t, got = t_dsd(sets, op)
                ref = refs.setdefault(op, got)
                cells.append(f"{t:.4f} (err {err(got, ref):.1e})")
        runs.append(f"{label}: " + " / ".join(cells))
    _work_lists.dsd_grouped_plan = orig
    shape = "; ".join(f"{b} {'bprop' if tw else 'fprop'}: {n} items, {g} groups, {s} slots"
                      for (b, tw), (n, g, s) in sorted(items.items(), key=str))
    say(f"{kind} {dtype} bs {bs} M {M} nnzb {sets[0]['w'].nnzb}: {shape}; fprop / bprop "
        + "; ".join(runs))
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
