"""Probe 28: 16-bit bs 32 wgrad on sddmm_tall.cu in 2-D items (GR block-columns by NCX
block-rows, at most NB blocks an item; docs/perf-notes.md v30) against one block-row's segments
(the default), M = 4096, C = K = 8192, d = 0.1. On small world the wgrad is 1.28x the fprop
since v30's column groups; its items share dy tiles between neighbouring block-rows.

    PYTHONPATH=. python probes/p28.py [timeline]

Each line: the knobs, median ms, and the error against float64 (norm-wise over the blocks).
timeline: the step stamps of the segments and of the items (_common.tall_timeline: the
consumers' MMAs "3-4", their wait for the next buffer "5-3'", the producer's wait for a free
one, a copy's issue to full), fp16 on small world and random: is a step bound by its copies'
latency or by the consumers (v30's next question)?"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import (fresh, patched, problem, say, tall_timeline, wgrad_line,  # noqa: E402
                     with_knobs)
from cupy_bsparse import _specs as sp, bench  # noqa: E402

say(bench.gpu_name())

CASES = [{}, {"GR": 4, "NCX": 2}, {"GR": 4, "NCX": 4, "NB": 16}, {"GR": 8, "NCX": 2, "NB": 16},
         {"GR": 4, "NCX": 2, "STAGES": 3}, {"GR": 4, "NCX": 4, "NB": 16, "STAGES": 3}, {}]


def run(kind, dtype="float16", m=4096, n=8192):
    sets = problem(m, n, n, 32, dtype, kind=kind)
    orig = sp.sddmm_tall_spec
    say(f"{dtype} bs 32 {kind}, M {m}, C = K = {n}: wgrad, default spec "
        f"{dict(orig(32, sp.dtype_id(dtype), m))}")
    for knobs in CASES:
        line = wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=with_knobs(orig, knobs)),
                          check=True)
        say(f"   {knobs or 'default'}: {line}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    if sys.argv[1:] == ["timeline"]:
        for kind in ("small_world", "random"):
            for knobs in ({}, {"GR": 4, "NCX": 2}):
                tall_timeline(32, knobs, dtype="float16", kind=kind)
    else:
        for kind in ("small_world", "random", "barabasi_albert"):
            run(kind)
