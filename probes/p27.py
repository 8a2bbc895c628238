"""Probe 27: dsd_stream.cu's column groups (R output block-columns a CTA) at M = 64, 16-bit bs 32,
C = K = 16384, d = 0.1 (docs/perf-notes.md v30). The default takes R 1 up to M = 64; at M = 64 a
bs 32 block's x tile (64 x 32) is twice its bytes, and v5 measured bs 32 with W copies only
at 0.034 ms against 0.063 with x's too. A small-world layout's 4-column groups copy 0.39 of
the x tiles (v30), a random one's 0.86.

    PYTHONPATH=. python probes/p27.py

Each line: the case's knobs, fprop / bprop median ms, and the max error against the default's
result (fp16 rounding: the same products summed in another order where R > 1)."""
import contextlib
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import fprop_bprop, fresh, patched, problem, say, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, _work_lists as wl, bench  # noqa: E402

say(bench.gpu_name())

R4 = {"R": 4, "BM": 64, "WARPS_M": 4, "WARPS_N": 1, "STAGES": 8}
#: a case's "CHUNK": the group plan's steps a chunk (None: about twice a group's mean, which at
#: M = 64 leaves one CTA a group, 128 of them at C = K = 16384; smaller chunks split groups, as
#: R 1's chunks split columns, summed through the workspace)
CASES = [{}, R4, dict(R4, CHUNK=32), dict(R4, CHUNK=16), dict(R4, CHUNK=8),
         dict(R4, WARPS_M=2, CHUNK=16), dict(R4, R=2, CHUNK=16), {}]


def run(kind, dtype="float16", m=64, n=16384):
    sets = problem(m, n, n, 32, dtype, kind=kind)
    orig = sp.dsd_stream_spec
    say(f"{dtype} bs 32 {kind}, M {m}, C = K = {n}: default spec "
        f"{dict(orig(32, sp.dtype_id(dtype), m, False, True))}")
    ref = {}
    plan = wl.dsd_group_plan
    for knobs in CASES:
        knobs = dict(knobs)
        steps = knobs.pop("CHUNK", None)

        def chunked(layout, trans_w, r, chunk=None, steps=steps, **kw):
            return plan(layout, trans_w, r, steps if chunk is None and steps else chunk, **kw)
        @contextlib.contextmanager
        def patch(knobs=knobs, chunked=chunked):
            with patched(sp, dsd_stream_spec=with_knobs(orig, knobs)), \
                    patched(wl, dsd_group_plan=chunked):
                yield
        line = fprop_bprop(sets, ref, patch)
        say(f"   {knobs or 'default'}{f' chunk {steps}' if steps else ''}: {line}")
    del sets, ref
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    for kind in ("small_world", "random"):
        run(kind)
