"""p65 (perf-notes v57, for the next device session): 16-bit bs 32 x @ W at the non-square shape
(M = 4095, C 8192, K 4096; fprop E 0.217 against the target 0.22 in v56). Its layout fails
``_specs.queue_fits`` (the longest output column, 42 blocks, outlasts a CTA's share of a row
tile, 3277 / 132), so it runs the fallback of 256-row tiles without the queue, where the square
shapes run the 512-row queue set. Here: the fallback (default), the queue set forced
(STREAM_TALL "3"), and the queue set with LATE 2 / 3 (v41d: LATE 3-4% faster where the queue's
items are few). x @ W / x @ W^T ms, alternated twice, and fprop E against dense in the same run;
errors against the first variant (different cuts sum in different orders: small, not 0).

    PYTHONPATH=.:probes python3 probes/p65.py
"""
from _common import fprop_bprop, free, problem, say, stream_tall_patch as variant
from cupy_bsparse import bench

VARIANTS = (("fallback (default)", variant()), ("queue set", variant("3")),
            ("queue LATE 2", variant("3", LATE=2)), ("queue LATE 3", variant("3", LATE=3)))
say(bench.gpu_name())
for dtype in ("float16", "bfloat16"):
    sets = problem(4095, 8192, 4096, 32, dtype)
    td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
    ref = {}
    for name, patch in VARIANTS * 2:
        line = fprop_bprop(sets, ref, patch)
        f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
        say(f"{dtype} bs 32 M 4095 C 8192 K 4096 {name}: {line} E {0.1 * td / f:.3f} (dense {td:.4f})")
    free(sets)
