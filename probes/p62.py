"""p62 (perf-notes v56): the block copy mode of dsd_grouped_tma.cu's float32 bs 8 launches at
M = 4096 (C = K = 8192, d 0.1), on random and Barabasi-Albert layouts. The spec takes WCP 1
(16-byte cp.async copies from the producer's lanes) for x @ W^T and WCP 0 (a TMA bulk copy a
run of neighbouring blocks) for x @ W, a rule v12-v17 measured on 16-bit bs 8 (128-byte blocks,
H200) and v16's p13 checked on float32 before the split pass (XLO) was its default. Here each
launch's other mode too: float32 blocks are 256 bytes, and x @ W^T is 3.5% slower than x @ W on
both layouts (v55), which keeps Barabasi-Albert's bprop under E 0.45. The copy mode changes
neither the steps nor the sums (errors against the default: 0). Default, flipped, default,
flipped; fprop ms / bprop ms.

    PYTHONPATH=.:probes python3 probes/p62.py
"""
from _common import fprop_bprop, free, patched, problem, say, spec_flags, with_knobs
from cupy_bsparse import _specs, bench

say(bench.gpu_name())


def flipped():
    """dsd_grouped_tma_spec with each launch's block copy mode the other one."""
    orig = _specs.dsd_grouped_tma_spec

    def spec(bs, did, M, trans_w, *a, **k):
        p = dict(orig(bs, did, M, trans_w, *a, **k))
        return with_knobs(lambda: p, {"WCP": 0 if p.get("WCP") else 1})()
    return patched(_specs, dsd_grouped_tma_spec=spec)


default = spec_flags()
for kind in ("barabasi_albert", "random"):
    sets = problem(4096, 8192, 8192, 8, "float32", kind=kind)
    ref = {}
    for name, patch in (("default", default), ("flipped", flipped)) * 2:
        say(f"{kind} float32 bs 8 M 4096 {name}: {fprop_bprop(sets, ref, patch)}")
    free(sets)
