"""p67 (perf-notes v59, for the next device session): the 16-bit bs 32 row at M = 4095 with
W 8192 x 4096 (v56: fprop E 0.217, wgrad E 0.192-0.199 at 1.29x fprop; unmet on both).

``wgrad``: TSPLIT, sddmm_tall.cu's last wave cut along M (``_specs.tall_tail_split``, opt-in).
That shape has 584 segments of NB 7 for 528 resident CTAs (four an SM), so 56 run alone after
the first wave, each a latency-bound pass over all 4095 rows. For each shape: the rule's
answer, then the default and TSPLIT (pieces at most 4, then at most 2) alternated twice, wgrad
ms (error against float64 on the first of each); where the rule splits nothing, every segment
cut into 3 instead. Prediction (perf-notes v59, probes/tall_wave_model.py): the non-square
shape 0.18 -> about 0.15 ms; C = K = 2048 (81 segments, under a wave) 2-3x faster; C = K =
4096 (293, 3 pieces by the rule) 102 -> 74 us; the square and transposed shapes unchanged.

``late``: the fprop's item queue for the same row. v58 (p65) timed the queue set forced with
LATE 3 at E 0.235 against the fallback's 0.218; a rule needs the other shapes. Per shape: the
default, STREAM_TALL forced to the 512-row set without the queue ("1") and with it ("3"), then
"3" with LATE 3, and LATE 3 wherever the default takes the queue; x @ W / x @ W^T ms, fprop E.

    PYTHONPATH=.:probes python3 probes/p67.py wgrad
    PYTHONPATH=.:probes python3 probes/p67.py late
"""
import contextlib
import sys

from _common import (fprop_bprop, free, patched, problem, reset, say, wgrad_line,
                     stream_tall_patch as stream_tall)
from cupy_bsparse import _gpu_ops, _specs, _work_lists, bench


def tsplit(on, cap=4):
    @contextlib.contextmanager
    def patch():
        with patched(_specs, TALL_TSPLIT="1" if on else None, TALL_TSPLIT_MAX=cap):
            yield
    return patch


def all_in(pieces):
    """TSPLIT with every segment cut into ``pieces`` (whatever the rule says)."""
    @contextlib.contextmanager
    def patch():
        def cut(segments, resident, m, bk):
            return _specs.tall_pieces(m, pieces, bk) + (segments,)
        with patched(_specs, TALL_TSPLIT="1", tall_tail_split=cut):
            yield
    return patch


def rule_line(sets, M):
    """The segments, resident CTAs and the rule's (pieces, rows, split) on the first set."""
    import cupy

    layout = sets[0]["w"].layout
    reset()
    nb = _gpu_ops._tall_nb(layout, 32, 1, M)
    fn, nt, smem, spec, _ = _gpu_ops._sddmm_launch("tall", 32, 1, M, nb, tsplit=True)
    segs = _work_lists.sddmm_segment_count(layout, spec["NB"])
    res = _gpu_ops._resident(fn, nt, smem, cupy.cuda.runtime.getDevice())
    with patched(_specs, TALL_TSPLIT="1"):
        rule = _specs.tall_tail_split(segs, res, M, spec["BK"])
    return f"segments {segs}, resident {res}, rule {rule}"


def wgrad():
    shapes = [(4095, 8192, 4096, "random"), (4096, 8192, 4096, "random"),
              (2048, 8192, 4096, "random"), (8192, 8192, 4096, "random"),
              (4096, 2048, 2048, "random"), (4096, 4096, 4096, "random"),
              (4095, 4096, 8192, "random"), (4096, 8192, 8192, "random")]
    for M, C, K, kind in shapes:
        for dtype in (("float16", "bfloat16") if (M, C, K) == (4095, 8192, 4096) else ("float16",)):
            sets = problem(M, C, K, 32, dtype, kind=kind)
            head = f"{dtype} bs 32 {kind} M {M} C {C} K {K} ({rule_line(sets, M)})"
            runs = []
            variants = (("default", tsplit(False)), ("TSPLIT", tsplit(True)),
                        ("TSPLIT max 2", tsplit(True, 2)))
            if "(1," in head:          # the rule keeps them whole: every segment in 3 instead
                variants = (("default", tsplit(False)), ("all in 3", all_in(3)))
            for i, (name, patch) in enumerate(variants * 2):
                runs.append(f"{name} {wgrad_line(sets, patch, check=i < 3)}")
            say(f"{head}: " + "; ".join(runs))
            free(sets)


def late():
    full = (("default", stream_tall()), ("set 1", stream_tall("1")), ("set 3", stream_tall("3")),
            ("set 3 LATE 3", stream_tall("3", LATE=3)))
    short = (("default", stream_tall()), ("LATE 3", stream_tall(None, LATE=3)))
    cases = [(4095, 8192, 4096, "random", full), (4096, 8192, 4096, "random", full),
             (4096, 8192, 8192, "barabasi_albert", full), (4096, 8192, 8192, "random", short),
             (4096, 8192, 8192, "small_world", short), (1024, 8192, 8192, "random", short),
             (2048, 8192, 8192, "random", short), (8192, 8192, 8192, "random", short)]
    for M, C, K, kind, variants in cases:
        sets = problem(M, C, K, 32, "float16", kind=kind)
        td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
        ref = {}
        for name, patch in variants * 2:
            line = fprop_bprop(sets, ref, patch)
            f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
            say(f"float16 bs 32 {kind} M {M} C {C} K {K} {name}: {line} E {0.1 * td / f:.3f}"
                f" (dense {td:.4f})")
        free(sets)


say(bench.gpu_name())
{"wgrad": wgrad, "late": late}[sys.argv[1] if len(sys.argv) > 1 else "wgrad"]()
