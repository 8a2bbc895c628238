"""Probe 22: dsd_stream.cu's float32 consumers on wgmma (3xTF32 on wgmma m64nNk8 .tf32, A from
registers, W's block split in shared memory; F32_WGMMA, docs/perf-notes.md v24) against the
mma.sync consumers, float32 bs 16 / 32 at M = 64 (C = K = 16384), each on the chunked plan and
on PERSIST.

v21's timeline put float32 at M = 64 on its consumers (bs 64: c.busy 2.0 us a step, the
producer waiting for them); bs 32 fprop takes 0.093 ms against 0.036 ms for W at HBM speed.

    PYTHONPATH=. python probes/p22.py          (random and Barabasi-Albert layouts)

Each line: ms of the mma.sync consumers on chunks / PERSIST, then wgmma on chunks / PERSIST,
with the wgmma results' relative error (norm-wise, float64 reference of the first set) beside
the mma.sync one.
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, patched  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402

say(bench.gpu_name())


def rel64(out, s, op):
    x = (s["x"] if op == "fprop" else s["dy"]).astype(cupy.float64)
    w = s["w"].toarray().astype(cupy.float64)
    ref = x @ (w if op == "fprop" else w.T)
    return float(cupy.linalg.norm(out.astype(cupy.float64) - ref) / cupy.linalg.norm(ref))


def main():
    for L in ("random", "barabasi_albert"):
        for bs in (32, 16):
            sets = problem(64, 16384, 16384, bs, "float32", kind=L)
            for op in ("fprop", "bprop"):
                line = []
                for f32w in ("0", "1"):
                    for persist in ("0", "1"):
                        fresh(sets)
                        with patched(sp, F32_WGMMA=f32w, STREAM_PERSIST=persist):
                            t, out = t_dsd(sets, op)
                        e = rel64(out, sets[0], op) if persist == "0" else None
                        line.append(f"{t:.4f}" + (f" (err {e:.1e})" if e is not None else ""))
                say(f"M 64 {L} float32 bs {bs} {op}: mma.sync {line[0]} / {line[1]}; "
                    f"wgmma {line[2]} / {line[3]}")
            del sets
            cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
