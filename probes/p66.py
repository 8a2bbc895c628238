"""p66 (perf-notes v58, for the next device session): v58's partition count on 16-bit bs 8.
dsd_grouped_tma.cu's 16-bit bs 8 specs are 8 consumer warps and 2 producer warps (PW 2, v22),
10 warps a CTA. Two CTAs an SM put 5 warps on each of the four register partitions, so
`__launch_bounds__(320, 2)` caps a thread at 96 registers. ptxas would take 142 with one CTA
an SM. Variants, each 8 warps a CTA (4 a partition at two CTAs, so 126 registers, 0 spills by
NVRTC):

    default   8 consumer warps, R 32, PW 2
    w6        6 consumer warps, R 24, PW 2 (a third more groups, both producers kept)
    w7p1      7 consumer warps, R 28, PW 1 (14% more groups, one producer: v22 found PW 2
              1-8% faster at bs 8)

x @ W / x @ W^T ms at M = 64 (C = K = 16384, E 0.20-0.25 against 0.6) and M = 4096 (C = K =
8192, met), random and Barabasi-Albert, float16; errors against the default. Prediction:
smaller than float32's 8-12%, since each block is one HMMA a tile here, not a 3-deep chain;
within 3% either way at M = 64, where v21 put the step on the producer's copy issue.

    PYTHONPATH=.:probes python3 probes/p66.py
"""
from _common import fprop_bprop, free, problem, say, spec_knobs
from cupy_bsparse import bench


def knob(**k):
    return spec_knobs("dsd_grouped_tma_spec", k)


VARIANTS = {"default": knob(), "w6": knob(WARPS_N=6, R=24),
            "w7p1": knob(WARPS_N=7, R=28, PW=1)}

say(bench.gpu_name())
for M, C in ((64, 16384), (4096, 8192)):
    for layout in ("random", "barabasi_albert"):
        sets = problem(M, C, C, 8, "float16", kind=layout)
        ref = {}
        for name in ("default", "w6", "w7p1", "default"):
            say(f"{layout} float16 bs 8 M {M} {name}: {fprop_bprop(sets, ref, VARIANTS[name])}")
        free(sets)
