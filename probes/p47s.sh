# p47's short form for a small device budget (v38): QLIST's tests on 3 CTAs, then fp16
# Barabasi-Albert and random at M = 4096, the default against QLIST 3 and 4 (<= 200 s)
export PYTHONPATH=.:probes PYTHONUNBUFFERED=1
timeout 90 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider -k "test_stream_queue_knobs and qlist and 3ctas" 2>&1 | tail -2
[ "${PIPESTATUS[0]}" = 0 ] && timeout 100 python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep, say
from cupy_bsparse import bench
say(bench.gpu_name())
queue_knob_sweep(((64, "barabasi_albert", 4096, "float16"), (64, "random", 4096, "float16")),
                 (("default", {}), ("QLIST 3", {"QLIST": 3, "ILV": 0}),
                  ("QLIST 4", {"QLIST": 4, "ILV": 0}), ("default", {})))
PY
