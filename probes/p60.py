"""p60 (perf-notes v55): the item order and cut of dsd_grouped_tma.cu's launches at M = 4096,
C = K = 8192 (x @ W and x @ W^T), where Barabasi-Albert's float32 bs 8 bprop is 2.7% short of
E 0.45 (v54). The grid is (items, row tiles), items fastest, so each row tile walks the items
in table order and the last row tile forms the tail. Variants, alternated twice: default;
HEAVY (GROUPED_HEAVY_FIRST "1": the items heaviest first, the same sums); BAL1.0
(GROUP_BALANCE 1.0: every group above the mean weight cut); both. Random as the control; then
default against HEAVY on the 16-bit bs 8 / 16 launches (the switch's scope). The dense time is
measured in the same run (E = d x dense / sparse, d the layout's own).

    PYTHONPATH=.:probes python3 probes/p60.py
"""
import contextlib

from _common import fprop_bprop, free, patched, problem, say
from cupy_bsparse import _specs, bench

say(bench.gpu_name())


def variant(heavy, balance):
    @contextlib.contextmanager
    def patch():
        with patched(_specs, GROUP_BALANCE=balance, GROUPED_HEAVY_FIRST=heavy):
            yield
    return patch


BAL = _specs.GROUP_BALANCE
FULL = [("default", variant("0", BAL)), ("HEAVY", variant("1", BAL)),
        ("BAL1.0", variant("0", 1.0)), ("HEAVY+BAL1.0", variant("1", 1.0))]
CASES = [("barabasi_albert", "float32", 8, FULL), ("random", "float32", 8, FULL[:2])]
CASES += [(kind, dt, bs, FULL[:2]) for bs in (8, 16) for dt in ("float16", "bfloat16")
          for kind in ("barabasi_albert", "random")]

for kind, dtype, bs, variants in CASES:
    sets = problem(4096, 8192, 8192, bs, dtype, kind=kind)
    nb = 8192 // bs
    d = sets[0]["w"].layout.nnzb / (nb * nb)
    td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
    say(f"{kind} {dtype} bs {bs} M 4096 d {d:.4f} dense {td:.4f} ms "
        f"(kernel {_specs.dsd_kernel(bs, {'float32': 0, 'float16': 1, 'bfloat16': 2}[dtype], 4096)})")
    ref = {}
    for name, patch in variants * 2:
        line = fprop_bprop(sets, ref, patch)
        try:
            f, b = (float(p.split()[0]) for p in line.split(" / "))
            e = f"E {d * td / f:.3f} / {d * td / b:.3f}"
        except ValueError:
            e = ""
        say(f"  {name}: {line}  {e}")
    free(sets)
