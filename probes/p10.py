"""Probe 10: large-M 16-bit bs 64 x @ W with each x tile
copied as XSPLIT TMA boxes of BM / XSPLIT rows (template text patched at run time), for the
mma.sync kernel (BM 128) and the wgmma one (BM 256, 2 warpgroups, 5 stages). Tests v13's
reading that the kernel is latency-bound per SM (a box lands only with its last row)."""
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, clear, t_dsd, err  # noqa: E402
from cupy_bsparse import _specs as sp, bench, compiler, _tensor_maps

orig_t = compiler._template
OLD = """tma_2d(a0 + ring.s * A_BYTES + h * (BM * RB), &tmap_x, cur.x * BS + h * HC, m0, full,
                           x_hint);"""
NEW = """for (int r = 0; r < XSPLIT; ++r)
                        tma_2d(a0 + ring.s * A_BYTES + h * (BM * RB) + r * (BM / XSPLIT) * RB, &tmap_x,
                               cur.x * BS + h * HC, m0 + r * (BM / XSPLIT), full, x_hint);"""


def _patched(name):
    text = orig_t(name)
    if name == "dsd_stream.cu":
        assert OLD in text
        text = "#ifndef XSPLIT\n#define XSPLIT 1\n#endif\n" + text.replace(OLD, NEW)
    return text


_patched.cache_clear = orig_t.cache_clear
compiler._template = _patched
orig_map = _tensor_maps.tile_map
CUR = {"v": None}


def tile_map(ptr, rows, cols, row_bytes, itemsize, box_rows, box_cols):
    v = CUR["v"]
    if v is not None and box_rows == v[0] and box_cols == 64 and v[3] > 1:
        box_rows //= v[3]
    return orig_map(ptr, rows, cols, row_bytes, itemsize, box_rows, box_cols)


_tensor_maps.tile_map = tile_map
orig_spec = sp.dsd_stream_spec


def spec(bs, did, M, trans_w, wgmma=False):
    p = dict(orig_spec(bs, did, M, trans_w, False))
    v = CUR["v"]
    if v is not None and did in (1, 2) and bs == 64:
        bm, nwg, st, xs = v
        if nwg:
            p.update(BM=bm, WARPS_M=4 * nwg, WARPS_N=1, STAGES=st, WGMMA=1)
        else:
            p.update(BM=bm, STAGES=st)
        p["XSPLIT"] = xs
    return tuple(sorted(p.items()))


sp.dsd_stream_spec = spec
say(bench.gpu_name())
sets = problem(4096, 8192, 8192, 64, np.float16)
for op in ("fprop", "bprop"):
    ref = None
    for v in (None, (128, 0, 3, 1), (128, 0, 3, 2), (128, 0, 3, 4), (128, 0, 4, 2),
              (256, 2, 5, 1), (256, 2, 5, 2), (256, 2, 5, 4), (256, 4, 5, 4)):
        CUR["v"] = v
        clear(sets)
        _tensor_maps._cache.clear()
        ts = [t_dsd(sets, op) for _ in range(2)]
        if ref is None:
            ref = ts[0][1]
        say(f"fp16 bs 64 M 4096 {op} {v or 'base'} (BM, warpgroups or 0 for mma.sync, stages, XSPLIT): "
            f"{min(x[0] for x in ts):.4f} ms (err {err(ts[0][1], ref):.1e})")
