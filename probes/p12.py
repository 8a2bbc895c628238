"""Probe 12: one product, launched 4 times, for ncu (--launch-skip 2
--launch-count 1 -k regex:bsmm_). CASE env: op,dtype,bs,M,C (C = K), e.g. fprop,float16,16,64,16384.
Random layout (LAYOUT env: another of the bench's, e.g. barabasi_albert), d = 0.1, as the bench. KNOBS env (optional): a JSON dict of #defines set in every
dsd_stream.cu spec, e.g. '{"QUEUE": 1, "STAGES": 12}'."""
import os, sys
import cupy, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp  # noqa: E402
from cupy_bsparse._arrays import BFLOAT16
from cupy_bsparse.ops import matmul, sddmm

if os.environ.get("KNOBS"):
    import json
    sp.dsd_stream_spec = with_knobs(sp.dsd_stream_spec, json.loads(os.environ["KNOBS"]))
op, dt, bs, M, C = os.environ["CASE"].split(",")
bs, M, C = int(bs), int(M), int(C)
dtype = BFLOAT16 if dt == "bfloat16" else np.dtype(dt)
s = problem(M, C, C, bs, dtype, kind=os.environ.get("LAYOUT", "random"))[0]
w = s["w"]
if op == "fprop":
    out = cupy.empty((M, C), dtype)
    f = lambda: matmul(s["x"], w, out=out)
elif op == "bprop":
    out = cupy.empty((M, C), dtype)
    wt = w.T
    f = lambda: matmul(s["dy"], wt, out=out)
else:
    out = w.copy()
    xt = s["x"].T
    f = lambda: sddmm(xt, s["dy"], out.layout, out=out)
for _ in range(4):
    f()
cupy.cuda.Device().synchronize()
print("ok", os.environ["CASE"])
