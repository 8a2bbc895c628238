"""p54 (perf-notes v53): sddmm_grouped.cu's float32 bs 8 pairs on SOFF (the default since v53):
item shapes at M = 4096 (steps, stages, group width), wgrad ms alternated, bitwise checked.

    PYTHONPATH=.:probes python3 probes/p54.py
"""
from _common import free, patched, problem, say, wgrad_ab, with_knobs
from cupy_bsparse import _specs, bench

say(bench.gpu_name())


def knob(knobs):
    return lambda: patched(_specs, sddmm_grouped_spec=with_knobs(_specs.sddmm_grouped_spec, knobs))


import os
ab = [("default", knob({})), ("MK16 S3", knob({"MK": 16, "STAGES": 3})),
      ("MK16 S4", knob({"MK": 16, "STAGES": 4})), ("MK32 S3", knob({"MK": 32, "STAGES": 3})),
      ("R32", knob({"R": 32})), ("NBLK128", knob({"NBLK": 128}))]
if os.environ.get("P54") == "2":
    ab = [("default", knob({})), ("R128", knob({"R": 128})), ("NCX16", knob({"NCX": 16})),
          ("NCX64", knob({"NCX": 64})), ("MK64 S2", knob({"MK": 64})),
          ("NBLK512", knob({"NBLK": 512})), ("NW8", knob({"NW": 8}))]
for kind in ("random", "barabasi_albert"):
    sets = problem(4096, 8192, 8192, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M 4096")
    free(sets)
