"""p60 (perf-notes v55): the item order and cut of dsd_grouped_tma.cu's float32 bs 8 launches
(x @ W and x @ W^T at M = 4096, C = K = 8192), where Barabasi-Albert's bprop is 2.7% short
of E 0.45 (v54). The grid is (items, row tiles), items fastest, so each row tile walks the
items in table order and the last row tile forms the tail. Variants, alternated twice:
default; LPT (each row tile's items heaviest first: the table reordered by step weight,
host-side only, the same sums); GROUP_BALANCE 1.0 (every group above the mean weight cut);
both. Random as the control. The dense time is measured in the same run (E = 0.1 x dense /
sparse; Barabasi-Albert's d is 0.095 at bs 8, targets.py's E uses the layout's own d).

    PYTHONPATH=.:probes python3 probes/p60.py
"""
import contextlib

import cupy
import numpy as np

from _common import fprop_bprop, free, patched, problem, say
from cupy_bsparse import _specs, _work_lists as wl, bench

say(bench.gpu_name())
ORIG = wl.dsd_grouped_plan


def lpt_plan(layout, trans_w, spec, m_tiles, resident, balance=None):
    """dsd_grouped_plan's tables with the items heaviest first (stable)."""
    (item, ginfo, steps, gent), nslots = ORIG(layout, trans_w, spec, m_tiles, resident, balance)
    _, (_, _, _, blocks) = wl._grouped_steps(layout, trans_w, spec)
    cum = np.concatenate([[0.0], np.cumsum(1.0 + blocks / wl.step_blocks(spec))])
    h = cupy.asnumpy(item)
    order = np.argsort(-(cum[h[:, 2]] - cum[h[:, 1]]), kind="stable")
    return (item[cupy.asarray(order)], ginfo, steps, gent), nslots


def variant(lpt, balance):
    @contextlib.contextmanager
    def patch():
        with patched(_specs, GROUP_BALANCE=balance), \
                patched(wl, dsd_grouped_plan=lpt_plan if lpt else ORIG):
            yield
    return patch


VARIANTS = [("default", variant(False, _specs.GROUP_BALANCE)),
            ("LPT", variant(True, _specs.GROUP_BALANCE)),
            ("BAL1.0", variant(False, 1.0)),
            ("LPT+BAL1.0", variant(True, 1.0))]

for kind in ("barabasi_albert", "random"):
    sets = problem(4096, 8192, 8192, 8, "float32", kind=kind)
    d = sets[0]["w"].layout.nnzb / (1024 * 1024)
    td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
    say(f"{kind} float32 bs 8 M 4096 d {d:.4f} dense {td:.4f} ms (E = d x dense / t)")
    ref = {}
    for name, patch in VARIANTS * 2:
        line = fprop_bprop(sets, ref, patch)
        try:
            f, b = (float(p.split()[0]) for p in line.split(" / "))
            e = f"E {d * td / f:.3f} / {d * td / b:.3f}"
        except ValueError:
            e = ""
        say(f"  {name}: {line}  {e}")
    free(sets)
