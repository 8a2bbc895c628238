"""p63 (perf-notes v57): where Barabasi-Albert's float32 bs 8 dsd launches get their extra HBM
bytes (v56's ncu: 2.24 GB read against random's 0.52 GB, the same 10.4 GB from L2 to the SMs).
dsd_grouped_tma.cu at M = 4096, C = K = 8192, d 0.1. Variants (each a patch of the specs):

    default   the shipped plan (Barabasi-Albert: GROUP_BALANCE's 44 items a row tile, 23 split)
    nobal     GROUP_BALANCE off (32 items, one a group, none split)
    bal1      random with GROUP_BALANCE 1.0 (groups above the mean split: partials on random)
    whint2    the blocks' bulk copies evict_normal (W_HINT 2; the default is evict_last)
    xhint2    x's boxes evict_normal (X_HINT 2; the default is evict_last)
    perm      Barabasi-Albert with its block-rows and block-columns shuffled (same counts)
    pf2, pf3  the producer's tables 2 / 3 steps ahead (PF; the default 1): v57's timelines put
              Barabasi-Albert's producer table loop at 471 ns a step against random's 273, with
              its L2 hit rate 71% against 91% (v20 found PF 3 null at M = 64, 16-bit)
    w8, w7, w6  8 / 7 / 6 consumer warps of 4 block-columns (R 32 / 28 / 24; 8 was the default
              until v58, 7 is since above M = 64): 9 / 8 / 7 warps a CTA; at 8 or 7, two CTAs
              put at most 4 warps on each of an SM's four register partitions and ptxas takes
              128 registers (v58, NVRTC: a block's four 3xTF32 chains then issue round-robin,
              where at 96 they run one at a time)

    PYTHONPATH=.:probes python3 probes/p63.py time            fprop / bprop ms, every variant
    PYTHONPATH=.:probes python3 probes/p63.py pf              the same for default / pf2 / pf3
    PYTHONPATH=.:probes python3 probes/p63.py warps           w8 / w7 / w6, M = 4096 and 64
    PYTHONPATH=.:probes python3 probes/p63.py mid             default (7 since v58) / w8, M 128-1024
    PYTHONPATH=.:probes python3 probes/p63.py one LAYOUT VARIANT OP   4 launches, for ncu
"""
import sys

import cupy

from _common import fprop_bprop, free, problem, say, spec_flags, spec_knobs
from cupy_bsparse import bench
from cupy_bsparse.ops import matmul


def knob(**k):
    return spec_knobs("dsd_grouped_tma_spec", k)


VARIANTS = {
    "default": spec_flags(),
    "nobal": spec_flags(GROUP_BALANCE=None),
    "bal1": spec_flags(GROUP_BALANCE=1.0),
    "whint2": knob(W_HINT=2),
    "xhint2": knob(X_HINT=2),
    "perm": spec_flags(),
    "pf2": knob(PF=2),
    "pf3": knob(PF=3),
    "w7": knob(WARPS_N=7, R=28),
    "w6": knob(WARPS_N=6, R=24),
    "w8": knob(WARPS_N=8, R=32),
}


def sets_for(layout, variant, M=4096):
    C = 8192 if M > 64 else 16384
    return problem(M, C, C, 8, "float32", kind=layout, permute=5 if variant == "perm" else None)


if sys.argv[1] == "one":
    layout, variant, op = sys.argv[2:5]
    sets = sets_for(layout, variant)
    with VARIANTS[variant]():
        s = sets[0]
        for _ in range(4):
            matmul(s["x"], s["w"]) if op == "fprop" else matmul(s["dy"], s["w"].T)
    cupy.cuda.Device().synchronize()
    print("ok", layout, variant, op)
else:
    say(bench.gpu_name())
    warps = ("w8", "w7", "w6")
    runs = {"pf": (("barabasi_albert", ("default", "pf2", "pf3")),
                   ("random", ("default", "pf2", "pf3"))),
            "warps": (("barabasi_albert", warps), ("random", warps), ("random", warps, 64),
                      ("small_world", warps)),
            "mid": tuple(("random", ("default", "w8"), m) for m in (128, 512, 1024))
            + (("barabasi_albert", ("default", "w8"), 1024),)}.get(sys.argv[1], (
        ("barabasi_albert", ("default", "nobal", "whint2", "xhint2")),
        ("random", ("default", "bal1", "whint2")), ("barabasi_albert", ("perm",))))
    for layout, names, *m in runs:
        M = m[0] if m else 4096
        sets = sets_for(layout, names[0], M)
        ref = {}
        for name in names + names[:1] * (len(names) > 1):
            say(f"{layout} float32 bs 8 M {M} {name}: {fprop_bprop(sets, ref, VARIANTS[name])}")
        free(sets)
