"""Probe 47: the queue as a host-ordered list, long columns handed out early (QLIST, v38).

16-bit bs 64 at M = 4096 on a Barabasi-Albert layout reads E 0.377 (v38) against random's
0.46: its hub columns (up to 53-58 blocks against a mean of 11.4) are single items of the
queue, and the queue hands the items out row tile after row tile, so the last row tile's hub
items start about 15 us before the launch would end and run 65-70 us. The CPU model
(`probes/sim_queue_tail.py` with the bench's layouts, 1.24 us a step) puts the makespan at
148-155 us against 118 us of work a CTA; with the long items (over 2x the mean) handed out
n row tiles early: n = 2 141-147, 3 129-136, 4 128-129 us. QLIST n (`dsd_stream.cu`, the list
from `_work_lists.queue_list`) does that, the other items in the default's order (ILV 2 kept
by the list, the kernel's ILV off). The cost the model leaves out: the hub items of n tiles
ahead read x tiles of those tiles, outside the live row tile (ILV 4 was 6% slower on random).
Prediction: Barabasi-Albert 5-12% faster at n = 3-4; random and small world (no column over
2x the mean) the same as the default.

    PYTHONPATH=.:probes python probes/p47.py

Each line: the case, then x @ W / x @ W^T median ms (max error against the first) per variant,
fprop E against dense in the same run."""
from _common import queue_knob_sweep, say
from cupy_bsparse import bench

say(bench.gpu_name())
queue_knob_sweep(
    ((64, "barabasi_albert", 4096, "float16"), (64, "barabasi_albert", 4096, "bfloat16"),
     (64, "random", 4096, "float16"), (64, "small_world", 4096, "float16")),
    (("default", {}), ("QLIST 2", {"QLIST": 2, "ILV": 0}), ("QLIST 3", {"QLIST": 3, "ILV": 0}),
     ("QLIST 4", {"QLIST": 4, "ILV": 0}), ("default", {}), ("QLIST 4", {"QLIST": 4, "ILV": 0})))
