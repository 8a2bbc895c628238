# The device plan of docs/perf-notes.md v16, for the next session with a GPU. Run from the repo
# root on main (probes/ is tracked, nothing to carry):
# (v56 removed the entries whose kernel variants or probes were removed; they are at 06e29d5,
# and v80 / p61 with DMASK at 5a50f9a.)
#   bash probes/next.sh A   -> GPU suite, memcheck on the unmeasured kernels, p13     (<= 540 s)
#   bash probes/next.sh B   -> bench A/B of CUPY_BSPARSE_WGMMA, p14, p15              (<= 560 s)
#   bash probes/next.sh C   -> p11, p10, ncu on the rows with no measured bound       (<= 560 s)
#   (here: make default what the probes accept: see perf-notes v16, "Defaults to set")
#   bash probes/next.sh breakeven 64, then 4096  -> the break-even map on the H200
#   bash probes/next.sh suite                    -> the GPU suite on the final tree
#   bash probes/next.sh v17                      -> suite, then the M = 64 bs 64 16-bit bench
#                                                   (sddmm_stream.cu's wgmma consumers)
#   bash probes/next.sh v17b                     -> suite, then fp16 bs 16 x @ W^T at M = 4096
#                                                   (steps listed column by column), 3 layouts
#   (if time is left) bash probes/next.sh layouts -> the met M = 4096 16-bit rows on
#   Barabasi-Albert and Watts-Strogatz layouts
#   bash probes/next.sh v18                      -> p17 (perf-notes v18), then the suite (with
#                                                   the F32_SPLIT tests under memcheck)
#   bash probes/next.sh v18b                     -> v17b's bs 16 x @ W^T bench on 3 layouts,
#                                                   racecheck on the F32_SPLIT tests, and the
#                                                   float32 M = 64 bench with F32_SPLIT=pass
#   bash probes/next.sh targets M [LAYOUT [C K]] -> every target row of issue 4 at M (64 or 4096;
#                                                   63 / 4095 with C K for the non-square rows),
#                                                   one tree and device, as probes/targets.py's
#                                                   status table (<= 560 s)
#   bash probes/next.sh v19                      -> p18 (perf-notes v19: the weighted item cut
#                                                   at M = 64), then the 16-bit M = 64 bench on
#                                                   the small-world and Barabasi-Albert layouts
#   bash probes/next.sh v21                      -> the suite on v21's defaults, then p19 producer
#   bash probes/next.sh v21b                     -> targets 64 and 4096 on v21's defaults
#   bash probes/next.sh suite                    -> (v24's first call) the suite on v23's final
#                                                   tree (about 530 s on the H100)
#   bash probes/next.sh v24b                     -> targets 4096 (the float32 rows on v22's
#                                                   restored cubins), p21 (PERSIST A/B), p19
#                                                   persist (its step timelines)
#   bash probes/next.sh v24                      -> the float32 wgmma consumers' tests, p22 and
#                                                   the bench with them on (<= 350 s)
#   bash probes/next.sh v25                      -> p19 f32w (the float32 wgmma consumers' steps),
#                                                   float32 bs 32 at odd M, non-square W (<= 330 s)
#   bash probes/next.sh v25a                     -> sddmm_tall.cu's float32 wgmma consumers: their
#                                                   tests, memcheck and racecheck on a subset,
#                                                   p23, the float32 bs 64 M = 4096 bench (<= 420 s)
#   bash probes/next.sh v25b                     -> 16-bit bs 32 wgrad's 2-stage ring above M = 1024:
#                                                   its tests, the M = 4096 bench, then the
#                                                   suite (<= 560 s)
#   bash probes/next.sh v26                      -> sddmm_tall.cu's float32 bs 16 wgmma consumers
#                                                   (opt-in, built on the CPU in v26): their
#                                                   tests with bs 64's, memcheck and racecheck,
#                                                   p25 (<= 480 s)
#   bash probes/next.sh v27a                     -> the column-group GPU tests and v27's probes,
#                                                   no suite (<= 260 s)
#   bash probes/next.sh v27                      -> dsd_stream.cu column groups (R): p26, p19
#                                                   groups, memcheck on their tests, then the
#                                                   suite (<= 590 s)
#   bash probes/next.sh v28                      -> the column-group tests under a timeout, the
#                                                   suite without them, then the bench with
#                                                   STREAM_TALL 0 / 1 / 2 as time allows (<= 590 s)
#   bash probes/next.sh v29                      -> the 512-row tiles' (BM 512, XB 2, MINB) and
#                                                   the column groups' tests, p26 tall / bs32 /
#                                                   ba, memcheck (<= 330 s); then v28 (suite)
#   bash probes/next.sh v30                      -> p26 tall2 (512-row set 2 against set 1 and
#                                                   256 rows, 3 layouts, 3 times), p26 bs32 / ba
#                                                   (<= 330 s)
#   bash probes/next.sh v30b                     -> the layout rule's tests (R 4 on small world),
#                                                   the suite, the bench on 3 layouts (<= 590 s)
#   bash probes/next.sh v31b                     -> p29: the 16-bit bs 32 wgrad by CTAs an SM and
#                                                   segment size (NB, MAXNREG) (<= 570 s)
#   bash probes/next.sh v33b                     -> the third 512-row set on the queue: tests,
#                                                   p33 sets, the bs 32 bench (<= 500 s)
#   bash probes/next.sh v33q                     -> the item queue (STREAM_QUEUE): its test,
#                                                   memcheck, p31 (<= 420 s)
#   bash probes/next.sh v34s                     -> y's 16-byte stores: their tests, p33 hints,
#                                                   ncu_l2 fp16, the M = 4096 bench (<= 560 s)
#   bash probes/next.sh v35stores                -> 16-byte against 4-byte output stores (p33,
#                                                   p29 stores; <= 450 s; planned in v34, not run)
#   bash probes/next.sh v38                      -> p46 (y's L2 hint, Y_HINT), p19 wgq (the
#                                                   per-CTA records saved), the bs 64 bench
#                                                   (<= 560 s)
#   bash probes/next.sh v39                      -> the suite, then p47's short sweep (QLIST
#                                                   3 / 4 on Barabasi-Albert and random) (<= 590 s)
#   bash probes/next.sh v40                      -> the suite with QLIST_AHEAD 4 (in 4 shards),
#                                                   QLIST n = 5 / 6 and the 1.5x factor, then
#                                                   v40b's bench while time is left (<= 590 s)
#   bash probes/next.sh v46                      -> the GPU suite after TALL_EVEN_SEGMENTS on (<= 530 s)
#   bash probes/next.sh v47 [short]              -> M = 4096 bs 64 / 32: shuffled small world; ascending / hashed / hubs walks (<= 330 s; 390 with p19)
#   bash probes/next.sh v48 [T]                  -> v47 short, then the GPU tests of stream / queue / tall (<= T, 560 s)
#   bash probes/next.sh v49                      -> v47 cut down: fp16 bs 64 plain / hashed / hubs on three layouts (<= 230 s)
#   bash probes/next.sh v50                      -> the queue's walk by the layout against ascending; bs 64 16-bit bench rows, 3 layouts (<= 330 s)
#   bash probes/next.sh v51                      -> the walk by the layout on small world at other M and d (<= 200 s)
#   bash probes/next.sh v52                      -> GROUP_WALK on small world bs 32 (R 4), three walks (<= 170 s)
#   bash probes/next.sh v53                      -> small world 16-bit bs 32 / 64 target rows, then the GPU suite (<= 595 s)
#   bash probes/next.sh v54                      -> the coarse bs 32 wgrad: tests, memcheck, p48, small world rows (<= 400 s)
#   bash probes/next.sh v55                      -> the coarse float32 bs 8 wgrad: tests, p48 f32, its row, the suite (<= 595 s)
#   bash probes/next.sh v56                      -> the suite owed since 1a4c4eb, then p48 hybrid quick (<= 595 s)
#   bash probes/next.sh v57                      -> p48 hybrid f32 / f32b16, memcheck on the hybrid tests (<= 460 s)
#   bash probes/next.sh v58                      -> the hybrid on two streams: tests, memcheck, p48 overlap x3 (<= 420 s)
#   bash probes/next.sh v59                      -> the hybrid rules: coarse tests, p48 rule at other M, float32 rows (<= 420 s)
#   bash probes/next.sh v60                      -> the suite (<= 540 s)
#   bash probes/next.sh v61                      -> the hybrid with the coarse wgrad launched first: coarse tests, p48 side, the row (<= 250 s)
#   bash probes/next.sh v62                      -> the side by predicted work: coarse tests, float32 bs 8 / 16 rows (<= 250 s)
#   bash probes/next.sh v63                      -> the review mends (b1e648c): coarse tests, memcheck, the suite (<= 595 s)
#   bash probes/next.sh v64                      -> overheads (last run in v8), then the float32 bs 8 / 16 rows again (<= 200 s)
#   bash probes/next.sh v65                      -> GROUP_BALANCE (groups cut by weight at large M): its tests, p50 (<= 300 s)
#   bash probes/next.sh v66                      -> float32 wgrad row chunks in one launch (MCH): its tests, memcheck, p51 (<= 300 s)
#   bash probes/next.sh v67                      -> v65 then v66 in one call (<= 580 s)
#   bash probes/next.sh v68                      -> p50 quick, p51 quick (<= 300 s)
#   bash probes/next.sh v69                      -> the suite alone (<= 570 s)
#   bash probes/next.sh v70                      -> the changed code's GPU tests, p50 / p51 quick (<= 370 s)
#   bash probes/next.sh v71                      -> racecheck (MCH), the float32 rows on v51's defaults (<= 330 s)
#   bash probes/next.sh v72                      -> TF32_REDO (grouped bs 8, tall): tests, memcheck, p52 (<= 260 s)
#   bash probes/next.sh v73                      -> v72 then v71 (<= 595 s)
#   bash probes/next.sh v74                      -> SADDR / SOFF (bs 8 wgrad loads): their tests, p53 (<= 300 s)
#   bash probes/next.sh v76                      -> TPAIRS (bs 8 wgrad, two-way units): tests, memcheck, p56 + rows (<= 240 s)
#   bash probes/next.sh v87                      -> v58: the suite on F32_GROUP_WARPS 7, less TSPLIT's tests (<= 480 s); v87b after it
#   bash probes/next.sh v88                      -> p66: 16-bit bs 8's grouped consumers in 8-warp CTAs (<= 200 s)
#   bash probes/next.sh v87s                     -> v58's tests of float32 bs 8 on dsd_grouped_tma.cu only, 4 shards (<= V_T, 200 s)
#   bash probes/next.sh v87b                     -> float32 bs 8 benches, then p63 mid (7 against 8 warps at M 128-1024) (<= V_T, 300 s)
#   bash probes/next.sh v89                      -> v59: TSPLIT's GPU tests, memcheck on them, p67 wgrad then late (<= V_T, 420 s)
#   bash probes/next.sh v91                      -> v59's plan, call 2 of 3 (after v87): v89 in 400 s, then v90 (<= 590 s)
#   bash probes/next.sh v92                      -> v59's plan, call 3 of 3: v87b in 300 s, then v88 (<= 590 s)
#   bash probes/next.sh v90                      -> v59: p68, Barabasi-Albert float32 bs 8's wgrad in its parts (<= V_T, 200 s)
#   bash probes/next.sh v86                      -> p65: 16-bit bs 32 at the non-square shape, its fallback tiles against the queue set forced, LATE 2 / 3 (<= 200 s)
#   bash probes/next.sh v85                      -> p63 pf (the float32 bs 8 producer's table prefetch PF 1 / 2 / 3), p19 baf32 (<= 220 s)
#   bash probes/next.sh v83                      -> p19 baf32 (timelines), ncu stalls on random / BA / BA shuffled float32 bs 8 fprop (<= 300 s)
#   bash probes/next.sh v82                      -> p63 (Barabasi-Albert float32 bs 8 HBM variants), timed and under ncu (<= 450 s)
#   bash probes/next.sh v81                      -> p62 (WCP flipped), ncu of float32 bs 8 fprop / bprop, random and Barabasi-Albert (<= 440 s)
#   bash probes/next.sh v78                      -> v54's defaults (TPAIRS on the forest, the tail rule): tests, memcheck, bs 8 rows (<= 330 s)
#   bash probes/next.sh v77                      -> TPAIRS (walk) + grouped tail order: tests, memcheck, p57 + rows (<= 400 s)
#   bash probes/next.sh v46b                     -> float32 sddmm_tall wgrad: segment cut and order (<= 240 s)
#   bash probes/next.sh v45                      -> near-equal wgrad segments (TALL_EVEN_SEGMENTS): tests, times
#   bash probes/next.sh v44c                     -> v44 cut to the sddmm / wgrad tests (<= 215 s)
#   bash probes/next.sh v44                      -> the GPU suite owed since 4f325aa
#   bash probes/next.sh v44b                     -> the wgrad's segments grouped by block-row; NB 2 in 3 stages at M 384-512
#   bash probes/next.sh v43b                     -> the segment sizes at M 384-2048 on three layouts
#   bash probes/next.sh v43                      -> ncu of the NB 8 wgrad; sizes on the non-square shape, M 512-1024
#   bash probes/next.sh v42c                     -> v42b cut to <= 190 s
#   bash probes/next.sh v42b                     -> v42 after the rule refined (M <= 256, one wave)
#   bash probes/next.sh v42                      -> NB 8 BPW 2 default (bs 64 wgrad): tests, segment sizes
#   bash probes/next.sh v41d                     -> the bs 64 wgrad with BPW 2 (tests, sweep), then LATE on bs 32's queue
#   bash probes/next.sh v41b                     -> LATE 1-3 on the queue (bs 64, M = 4096 / non-square), p19 late
#   bash probes/next.sh v41                      -> the suite with QLIST_AHEAD 8 (4 shards), then
#                                                   QLIST 4 / 16 at M = 4096 and 8192, p19
#                                                   nonsquare while time is left (<= 590 s)
#   bash probes/next.sh v40b                     -> after v40: the bs 64 bench at M = 4096 on
#                                                   random, Barabasi-Albert, small world and
#                                                   M = 4095 / K 4096, 16-bit (<= 400 s)
#   bash probes/next.sh v39b                     -> short: QLIST's tests, the sweep, memcheck
#                                                   (<= 380 s)
#   bash probes/next.sh v38c                     -> QLIST (the queue as a host-ordered list,
#                                                   long columns early): its tests, p47, memcheck
#                                                   on a few (<= 380 s)
#   bash probes/next.sh v36c                     -> the queue's ILV: its tests, memcheck, p43
#                                                   (<= 520 s)
#   bash probes/next.sh v34m                     -> memcheck on the stores, the M = 64 bench,
#                                                   bs 32 Barabasi-Albert at M = 4096 (<= 330 s)
#   bash probes/next.sh v34                      -> (after the suite, its own call) the step
#                                                   timeline of the queue's 512-row set (p19
#                                                   tall), then p33 knobs (<= 400 s)
#   bash probes/next.sh v32b                     -> bs 64 wgrad segment size by the last wave:
#                                                   p29 auto, its test, the bench (<= 480 s)
#   bash probes/next.sh v32                      -> p29 bs64sweep (v32's persistent row tiles
#                                                   and p30 went with their knob in v33)
#   bash probes/next.sh v31c                     -> the suite, the bench at 16-bit bs 32 (small
#                                                   world, random), p29 bs64 (<= 600 s)
#   bash probes/next.sh v22b                     -> float32 wgrad at M = 4096 in row chunks
#                                                   (SDDMM_M_CHUNK): its test, then the bench
#   bash probes/next.sh v21short                 -> for a short budget: the fixed tests, a small
#                                                   float32 / grouped / stream subset, targets 64
# The machine is given back after 30 s idle: issue the next call at once. Each mode stays under
# the 600 s limit of one call.
#   suite    .ci/gpu without its sanitizer and bench, then memcheck on the forced float32 bs 8
#            TMA kernels, the bs 8 wgrad pairs on TMA and the wgmma consumers
#   p13      float32 bs 8 x @ W on dsd_grouped_tma.cu against dsd_grouped.cu, and variants
#   p14      sddmm_tall.cu KSUM 16 / 32 for float32 wgrad bs 16 and 32
#   p15      bs 8 wgrad pairs on sddmm_grouped_tma.cu against sddmm_grouped.cu, and variants
#   p11      sddmm_stream.cu with wgmma consumers (16-bit bs 64, M <= 64)
#   p10      dsd_stream.cu with each x tile copied as XSPLIT boxes (16-bit bs 64, M = 4096)
#   ncu      ncu_rows.sh: p12.py under Nsight Compute, summarised by ncu_summary.py
export PYTHONPATH=. PYTHONUNBUFFERED=1
out=${OUT:-gpu_out}; mkdir -p "$out"
# sanitize TOOL SECONDS LOG K: the GPU tests matching K (the sanitizer subset) under
# compute-sanitizer's TOOL, logged to $out/LOG; prints the exit status and the summary lines
sanitize() {
  CUPY_BSPARSE_GPU_SUBSET=small timeout "$2" compute-sanitizer --tool "$1" --error-exitcode 3 \
    python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider -k "$4" > "$out/$3" 2>&1
  echo "$1 rc=$?"; grep -E "ERROR SUMMARY|hazard|passed|failed" "$out/$3" | tail -3
}
# the tree that runs: the device's copy of .git can be older than its files (v45: it named
# 9002600 on 0245362's tree), so a hash of the sources, which `probes/tree_id.sh` prints here too
git log --oneline -1 2>/dev/null
echo "sources $(bash probes/tree_id.sh)"
# first_tests SECONDS K: the GPU tests matching K under a timeout, before anything else (kernels
# that have not run yet: a hang must not eat the call); sets rc
first_tests() {
  timeout "$1" python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider -k "$2" 2>&1 | tail -3
  rc=${PIPESTATUS[0]}; echo "first tests rc=$rc at ${SECONDS} s"
}
# float32_rows TAG UNTIL: the float32 bs 8 / 16 bench at M = 4096 on small world and
# Barabasi-Albert into $out/TAG_<layout>, each under a timeout ending at UNTIL s, then their
# target rows
float32_rows() {
  for lay in small_world barabasi_albert; do
    timeout $(($2 - SECONDS)) python3 -m cupy_bsparse bench --m 4096 --layout $lay \
      --dtype float32 --blocksize 8 16 --baselines dense --out "$out/$1_$lay" 2>&1 \
      | grep -v "^\[" | tail -1
  done
  python3 probes/targets.py "$out/$1_small_world.json" "$out/$1_barabasi_albert.json"
}
# probe SCRIPT T [ARGS...]: probes/SCRIPT under a timeout ending at V_T (default T) s into the
# call, where more than 5 s are left; its progress and "wrote" lines dropped
probe() {
  local script=$1 t=$((${V_T:-$2} - SECONDS))
  shift 2
  [ "$t" -gt 5 ] && PYTHONPATH=.:probes timeout "$t" python3 "probes/$script" "$@" 2>&1 \
    | grep -v "^\[" | grep -v "^wrote"
}
# checked_first SECONDS K MEMCHECK_SECONDS LOG MEMCHECK_K: first_tests SECONDS K, then, where
# they passed, memcheck on the tests matching MEMCHECK_K into LOG; sets rc (the tests')
checked_first() {
  first_tests "$1" "$2"
  if [ "$rc" = 0 ]; then sanitize memcheck "$3" "$4" "$5"; fi
}
# p26_in_time MODE...: probes/p26.py's modes in turn while 50 s of the call's T are left
p26_in_time() {
  for m in "$@"; do
    [ $SECONDS -lt $((T - 50)) ] && timeout 45 python3 probes/p26.py "$m" 2>&1 | tail -14
  done
}
# v27's probes of dsd_stream.cu's column groups (p26 round 2, p19 groups, p26 on the structured
# layouts) and memcheck on their tests (<= 170 s)
column_group_probes() {
  timeout 40 python3 probes/p26.py bs32 2>&1 | tail -11
  timeout 40 python3 probes/p19.py groups 2>&1 | grep -v "^ *free" | tail -30
  timeout 50 python3 probes/p26.py ba 2>&1 | tail -12
  sanitize memcheck 40 memcheck_groups.log "test_stream_column_groups and 32"
}
# v17's open bench: fp16 bs 16 x @ W^T at M = 4096 (steps listed column by column), 3 layouts
bs16_xwt_layouts() {
  for L in barabasi_albert small_world random; do
    timeout 40 python3 -m cupy_bsparse bench --layout $L --op fprop bprop --dtype float16 --m 4096 \
      --blocksize 16 --baselines dense --out "$out/v17b_$L" 2>&1 | grep -v "^\[" | tail -3
  done
}
# qlist_suite N: QLIST_AHEAD = N on this copy only (the repo keeps its value until the suite
# passes), then the GPU suite in GPU_SHARDS processes (4 unless set; v40: 316 s on the H100)
qlist_suite() {
  sed -i "s/^QLIST_AHEAD = [0-9]*$/QLIST_AHEAD = $1/" cupy_bsparse/_specs.py
  grep -n "^QLIST_AHEAD" cupy_bsparse/_specs.py
  GPU_SHARDS=${GPU_SHARDS:-4} SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 470 bash .ci/gpu 2>&1 | tail -12
}
# tall_nb_sweep CASES: 16-bit bs 64 wgrad (fp16) with each segment size forced against the
# launcher's pick, on CASES (a Python tuple of (layout, density, C, M[, K: C unless given])),
# until END s (325)
tall_nb_sweep() {  # CASES [END]
  PYTHONPATH=.:probes CASES="$1" timeout $((${2:-325} - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
import ast, os
import cupy
from _common import fresh, patched, problem, say, wgrad_line
from cupy_bsparse import _specs as sp, _gpu_ops as g, _work_lists as wl, bench
say(bench.gpu_name())
CASES = ast.literal_eval(os.environ["CASES"])
dev = cupy.cuda.runtime.getDevice()
for kind, d, C, M, *K in CASES:
    K = K[0] if K else C
    sets = problem(M, C, K, 64, "float16", kind=kind, density=d)
    lay = sets[0]["w"].layout
    counts = []
    for nb in sp.TALL_WGMMA16_NB_CHOICES:
        fn, nt, smem = g._sddmm_launch("tall", 64, 1, M, nb)[:3]
        counts.append(f"{nb}: {wl.sddmm_segment_count(lay, nb)}/{g._resident(fn, nt, smem, dev)}")
    auto = g._tall_nb(lay, 64, 1, M)
    parts = [f"auto (NB {auto}) {wgrad_line(sets, lambda: patched(sp), check=True)}"]
    for nb in sp.TALL_WGMMA16_NB_CHOICES:
        parts.append(f"NB {nb} " + wgrad_line(
            sets, lambda: patched(sp, sddmm_tall_segment_size=lambda c, f, nb=nb: nb,
                                  TALL_WGMMA16_NB2_M=0)))
    say(f"{kind} d {d} C {C} K {K} M {M} [{', '.join(counts)}]: " + "; ".join(parts))
    del sets
    fresh([])
PY
}
# bs64_bench_4096 END: the 16-bit bs 64 bench at M = 4096 on the four cases the issue names
# (random, Barabasi-Albert, small world, and the non-square M = 4095 C 8192 K 4096), one process
# a case, each started only while 90 s are left before the call's second END
bs64_bench_4096() {
  for L in random barabasi_albert small_world nonsquare; do
    [ $SECONDS -lt $(($1 - 90)) ] || break
    if [ $L = nonsquare ]; then shape="--m 4095 --c 8192 --k 4096"; lay=random
    else shape="--m 4096"; lay=$L; fi
    # shellcheck disable=SC2086
    timeout 88 python3 -m cupy_bsparse bench $shape --dtype float16 bfloat16 --blocksize 64 \
      --layout $lay --baselines dense --out "$out/v40_$L" 2>&1 | grep -v "^\[" | tail -7
  done
}
if [ "$1" = A ]; then
  timeout 330 bash probes/next.sh suite; timeout 200 python3 probes/p13.py 2>&1 | tail -40
elif [ "$1" = B ]; then
  for w in 0 1; do
    echo "== CUPY_BSPARSE_WGMMA=$w"
    CUPY_BSPARSE_WGMMA=$w timeout 110 python3 -m cupy_bsparse bench --dtype float16 bfloat16 --m 64 \
      --blocksize 64 --baselines dense --out "$out/bench_wgmma$w" 2>&1 | tail -10
  done
  timeout 130 python3 probes/p14.py 2>&1 | tail -12; timeout 200 python3 probes/p15.py 2>&1 | tail -30
elif [ "$1" = C ]; then
  timeout 120 python3 probes/p11.py 2>&1 | tail -20; timeout 120 python3 probes/p10.py 2>&1 | tail -20
  timeout 310 bash probes/ncu_rows.sh
elif [ "$1" = suite ]; then
  # PYTEST_K (set by v18 when p17 hung) leaves tests out of both runs
  SKIP_SANITIZER=1 SKIP_BENCH=1 bash .ci/gpu 2>&1 | tail -8
  k="test_stream_persistent_runs or test_grouped_tma_producer_knobs or test_sddmm_tall_f32_consumers or test_stream_kernel_bs64_consumers or test_sddmm_stream_bs64_consumers or (test_grouped_kernel and grouped_tma and (f32 or xWT)) or (test_sddmm_tma_kernels and grouped_tma) or f32_split or split_tf32"
  sanitize memcheck 240 memcheck.log "(${k})${PYTEST_K:+ and ($PYTEST_K)}"
elif [ "$1" = v25a ]; then
  timeout 150 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider -x \
    -k "test_sddmm_tall_f32_consumers or (test_sddmm_tma_kernels and tall and 64 and f32) or test_sddmm_tall_m_chunks" 2>&1 | tail -5
  sanitize memcheck 70 memcheck_tall.log "test_sddmm_tall_f32_consumers and wgmma"
  sanitize racecheck 70 racecheck_tall.log "test_sddmm_tall_f32_consumers and wgmma"
  timeout 120 python3 probes/p23.py 2>&1 | tail -8
  timeout 60 python3 -m cupy_bsparse bench --m 4096 --dtype float32 --blocksize 64 --baselines dense \
    --out "$out/v25_f32_bs64" 2>&1 | grep -v "^\[" | tail -6
elif [ "$1" = v27a ]; then
  timeout 90 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider \
    -k "test_stream_column_groups or test_stream_groups_by_layout" 2>&1 | tail -2
  column_group_probes
elif [ "$1" = v28 ]; then
  # The R > 1 kernels have never run as they stand: their tests first, under a timeout, so that
  # a hang cannot eat the suite; then the suite (without them), then the probes as time allows.
  # T (default 590): the seconds this call may take; the suite gets what the tests leave
  T=${T:-590}
  g="test_stream_column_groups or test_stream_groups_by_layout or test_stream_tall_tiles"
  first_tests 100 "$g"
  PYTEST_K="not ($g)" SKIP_SANITIZER=1 SKIP_BENCH=1 timeout $((T - SECONDS)) bash .ci/gpu 2>&1 | tail -6
  echo "suite done at ${SECONDS} s"
  # v29: the bench on the 512-row tiles (STREAM_TALL 1 / 2) against 256-row ones, then on BA
  for L in random barabasi_albert; do
    for t in 0 1 2; do
      [ $SECONDS -lt $((T - 45)) ] && CUPY_BSPARSE_STREAM_TALL=$t timeout 40 python3 -m cupy_bsparse \
        bench --m 4096 --op fprop bprop --dtype float16 bfloat16 --blocksize 32 --layout $L \
        --baselines dense --out "$out/v29_tall${t}_$L" 2>&1 | grep -v "^\[" | tail -5 | sed "s/^/tall $t $L: /"
    done
  done
elif [ "$1" = v29 ]; then
  # v28's untried knobs first (T, default 330 s): the 512-row tiles' and the column groups' GPU
  # tests under a timeout, then p26 tall (BM 512 / MINB), p26 bs32 (R 4 + PERSIST), p26 ba,
  # memcheck on the tall tiles; the suite is the next call (T=590 bash probes/next.sh v28)
  T=${T:-330}
  first_tests 100 "test_stream_tall_tiles or test_stream_column_groups or test_stream_groups_by_layout"
  [ "$rc" = 0 ] && p26_in_time tall tallm bs32 ba
  [ $SECONDS -lt $((T - 20)) ] && sanitize memcheck $((T - SECONDS - 5)) memcheck_tall.log "test_stream_tall_tiles and 300"
elif [ "$1" = v30 ]; then
  # v29's open questions (T, default 330 s): 512-row set 2 against set 1 and 256-row tiles, three
  # times on each layout (p26 tall2); then v27's R 4 + PERSIST and the structured layouts
  T=${T:-330}
  timeout 170 python3 probes/p26.py tall2 2>&1 | tail -36
  p26_in_time bs32 ba
elif [ "$1" = v30b ]; then
  # the layout rule on by default (GROUP_SHARE_MAX 0.5, bs 32): its tests and the column
  # groups' first, the suite, then the bench on small world and random (T, default 590 s)
  T=${T:-590}
  g="test_stream_column_groups or test_stream_groups_by_layout"
  first_tests 100 "$g"
  PYTEST_K="not ($g)" SKIP_SANITIZER=1 SKIP_BENCH=1 timeout $((T - SECONDS - 100)) bash .ci/gpu 2>&1 | tail -6
  echo "suite done at ${SECONDS} s"
  for L in small_world random barabasi_albert; do
    [ $SECONDS -lt $((T - 35)) ] && timeout 30 python3 -m cupy_bsparse bench --m 4096 \
      --dtype float16 bfloat16 --blocksize 32 --layout $L --baselines dense \
      --out "$out/v30_$L" 2>&1 | grep -v "^\[" | tail -8 | sed "s/^/$L: /"
  done
elif [ "$1" = v31b ]; then
  # the wgrad's CTAs an SM and segment sizes (p29), fp16 on three layouts, then bf16, then M
  timeout 300 python3 probes/p29.py 2>&1 | grep -v "^\[" | tail -24
  timeout 120 python3 probes/p29.py bf16 2>&1 | grep -v "^\[" | tail -10
  timeout 150 python3 probes/p29.py m 2>&1 | grep -v "^\[" | tail -22
elif [ "$1" = v33q ]; then
  # dsd_stream.cu's item queue (STREAM_QUEUE, opt-in, never run on a GPU yet): its test and
  # memcheck first (a hang must not eat the call), then p31 against the default
  checked_first 150 "test_stream_queue" 90 memcheck_queue.log "test_stream_queue and 3ctas and 1100"
  if [ "$rc" = 0 ]; then
    timeout 200 python3 probes/p31.py 2>&1 | grep -v "^\[" | tail -24
  fi
elif [ "$1" = v33b ]; then
  # the third 512-row set (6 stages on the item queue) as the default from M = 4096: the tall
  # and queue tests, p33 sets (against the first set over M, dtype, layout), the bench
  first_tests 200 "test_stream_tall_tiles or test_stream_queue"
  timeout 200 python3 probes/p33.py sets 2>&1 | grep -v "^\[" | tail -22
  for lay in random barabasi_albert; do
    timeout 60 python3 -m cupy_bsparse bench --m 4096 --dtype float16 bfloat16 --blocksize 32 \
      --layout $lay --baselines dense --out "$out/v33_$lay" 2>&1 | grep -v "^\[" | tail -7
  done
elif [ "$1" = v34s ]; then
  # y's 16-byte stores (common.cuh store_tiles): the product tests that write y first, then
  # the queue's set timed (p33 hints), ncu's L2 requests (fp16), and the M = 4096 bench
  first_tests 200 "test_x_times_w or test_stream_queue or test_alpha_beta or test_sddmm_tma_kernels"
  if [ "$rc" = 0 ]; then
    timeout 100 python3 probes/p33.py hints 2>&1 | grep -v "^\[" | tail -4
    DTYPES=float16 timeout 100 bash probes/ncu_l2.sh 2>&1 | grep -E "==|requests|tag_requests.avg|gpu__time_duration.sum|dram__bytes_(read|write).sum|hit_rate" | grep -v "max\|min"
    for bs in 32 64; do
      timeout 60 python3 -m cupy_bsparse bench --m 4096 --dtype float16 bfloat16 --blocksize $bs \
        --layout random --baselines dense --out "$out/v34_bs$bs" 2>&1 | grep -v "^\[" | tail -7
    done
  fi
elif [ "$1" = v38 ]; then
  # y's 16-byte stores with an L2 eviction policy (Y_HINT; a store's cache hint, never run on a
  # GPU before: p46's error column checks it against the default), then the queue's per-CTA
  # timeline (records saved under $out), then the bench while time is left
  timeout 240 python3 probes/p46.py 2>&1 | grep -v "^\[" | tail -6
  OUT="$out" timeout 150 python3 probes/p19.py wgq 2>&1 | grep -v "^\[" | tail -26
  [ $SECONDS -lt 470 ] && timeout $((560 - SECONDS)) python3 -m cupy_bsparse bench --m 4096 \
    --dtype float16 bfloat16 --blocksize 64 --layout random --baselines dense \
    --out "$out/v38_bs64" 2>&1 | grep -v "^\[" | tail -7
elif [ "$1" = v39 ]; then
  # the suite (owed since v38's QLIST commits; it runs QLIST's tests and the layout rule's),
  # then p47's short sweep while the call has time: fp16 bs 64 Barabasi-Albert and random at
  # M = 4096, the default against QLIST 3 and 4 (<= 590 s)
  SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 470 bash .ci/gpu 2>&1 | tail -4
  [ $SECONDS -lt $((${V39_END:-585} - 100)) ] && PYTHONPATH=.:probes timeout $((${V39_END:-585} - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep, say
from cupy_bsparse import bench
say(bench.gpu_name())
queue_knob_sweep(((64, "barabasi_albert", 4096, "float16"), (64, "random", 4096, "float16")),
                 (("default", {}), ("QLIST 3", {"QLIST": 3, "ILV": 0}),
                  ("QLIST 4", {"QLIST": 4, "ILV": 0}), ("default", {})))
PY
elif [ "$1" = v42 ]; then
  # NB 8 with BPW 2 the default of the 16-bit bs 64 wgmma wgrad (v41d: 8-15% faster at M =
  # 2048-8192 on three layouts), NB 4 / 2 where its segments fill the device badly: the tests,
  # then each size forced against the launcher's pick on layouts whose NB 8 segments fall
  # under a wave or leave a thin last one (<= 330 s)
  first_tests 150 "test_sddmm_tall_wgmma16 or test_sddmm_tall_segment_sizes or (test_sddmm_tma_kernels and 64 and tall)"
  tall_nb_sweep '(("random", 0.1, 8192, 256), ("random", 0.1, 8192, 1024), ("random", 0.05, 8192, 4096), ("barabasi_albert", 0.2, 8192, 4096), ("small_world", 0.05, 8192, 4096), ("barabasi_albert", 0.1, 8192, 4096), ("small_world", 0.1, 2048, 4096), ("random", 0.05, 2048, 4096), ("random", 0.1, 4096, 4096), ("small_world", 0.1, 4096, 1024))'
elif [ "$1" = v46 ]; then
  # the GPU suite after v45 (the plan-key test fix; TALL_EVEN_SEGMENTS the default) (<= 530 s;
  # v45's run of v44 failed 256 tests on the stale plan key and passed 435 s unfinished)
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 525 bash .ci/gpu 2>&1 | tail -14
elif [ "$1" = v47 ]; then
  # v45: small world's 1536 blocks (16-bit bs 64, M = 4096) take as long as random's 1638, and
  # the queue model (probes/sim_queue_tail.py) puts small world 5.6% ahead. Its block-rows and
  # block-columns shuffled keep every item's length (equal items, CTAs in step) and drop the
  # band's locality: fast again -> locality; as slow -> the equal items. Unshuffled layouts also
  # with QUEUE_SCRAMBLED_TIES (the fix, if locality). Its GPU tests first, then p19 swq
  # v46 (CPU model, probes/sim_queue_sharing.py): the scrambled ties leave small world's
  # sharing as it is (0.9 other CTAs on a step's tile); the hashed walk raises it to 3.2
  # (random 2.4): timed here too, with Barabasi-Albert and bs 32 (its queue sets take the
  # same plans), so a default change is measured everywhere it lands
  # v47 (CPU model): the "hubs" walk (x blocks on most columns first, then hashed) keeps
  # hashed's small world (3.1) and raises Barabasi-Albert (2.8 -> 3.0): all three walks timed,
  # one shuffled small world (<= 330 s; p19 to 390). v48: timed (scrambled ties null, removed
  # since; their cases here went with them), docs/perf-notes.md v48
  first_tests 90 "test_stream_queue_orders"
  # V47_QUICK=1 (v49): fp16 bs 64 only; V47_T: the seconds the timings end by
  PYTHONPATH=.:probes timeout $((${V47_T:-330} - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
import os
from _common import fprop_bprop, fresh, patched, problem, say
from cupy_bsparse import _specs as sp, bench
say(bench.gpu_name())
plain = lambda: patched(sp, QUEUE_WALK="ascending")   # v48: the default is by the layout
hashed = lambda: patched(sp, QUEUE_WALK="hashed")
hubs = lambda: patched(sp, QUEUE_WALK="hubs")
name = {plain: "", hashed: "hashed ", hubs: "hubs "}
walk = (plain, hashed, hubs, plain, hashed, hubs)
cases = [(64, dt, kind, perm, pats) for dt in ("float16", "bfloat16")
         for kind, perm, pats in (("small_world", None, walk),
                                  ("small_world", 1, (plain, plain)),
                                  ("random", None, walk),
                                  ("barabasi_albert", None, walk))]
cases += [(32, "float16", kind, None, walk) for kind in ("small_world", "random", "barabasi_albert")]
if os.environ.get("V47_QUICK") == "1":
    cases = [c for c in cases if c[:2] == (64, "float16")]
for bs, dt, kind, perm, pats in cases:
    sets = problem(4096, 8192, 8192, bs, dt, kind=kind, permute=perm); ref = {}
    nnzb = sets[0]["w"].layout.nnzb
    runs = [name[p] + fprop_bprop(sets, ref, p) for p in pats]
    say(f"{kind} permuted {perm} {dt} bs {bs} M 4096 nnzb {nnzb} fprop / bprop: " + "; ".join(runs))
    del sets
    fresh([])
PY
  if [ "$2" != short ]; then   # v47 short: without p19 (v46's device time was scarce)
    PYTHONPATH=.:probes timeout $((390 - SECONDS)) python3 probes/p19.py swq 2>&1 | grep -v "^\[" | tail -30
  fi
elif [ "$1" = v50 ]; then
  # v48: the queue's walk by the layout (the default: "hubs" where the CPU model gains 0.5,
  # small world) against ascending forced, 16-bit bs 64 at M = 4096, after its GPU tests;
  # then the bench's bs 64 16-bit rows on the three layouts (targets.py) (<= 330 s)
  first_tests 150 "test_stream_queue_orders or test_stream_queue_walk_by_layout"
  PYTHONPATH=.:probes timeout $((230 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import fresh, patched, problem, say, walks_default
from cupy_bsparse import _specs as sp, bench
say(bench.gpu_name())
default = lambda: patched(sp, QUEUE_WALK=None)
plain = lambda: patched(sp, QUEUE_WALK="ascending")
for dt in ("float16", "bfloat16"):
    for kind, perm in (("small_world", None), ("small_world", 1), ("random", None),
                       ("barabasi_albert", None)):
        sets = problem(4096, 8192, 8192, 64, dt, kind=kind, permute=perm)
        walks_default(sets, plain, default, f"{kind} permuted {perm} {dt} bs 64 M 4096 fprop "
                      "/ bprop, ascending; default")
        del sets
        fresh([])
PY
  for L in small_world barabasi_albert random; do
    timeout $((330 - SECONDS)) python3 -m cupy_bsparse bench --m 4096 --layout $L --dtype float16 bfloat16 \
      --blocksize 64 --baselines dense --out "$out/t50_$L" 2>&1 | grep -v "^\[" | tail -2
  done
  python3 probes/targets.py "$out"/t50_*.json
elif [ "$1" = v51 ]; then
  # v48: the walk by the layout on small world away from v50's point: M = 512-8192 at d = 0.1,
  # d = 0.05 / 0.2 at M = 4096 (fp16 bs 64, C = K = 8192; ascending forced, then the
  # default, twice) (<= 200 s)
  PYTHONPATH=.:probes timeout 200 python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import fresh, patched, problem, say, walks_default
from cupy_bsparse import _specs as sp, bench
say(bench.gpu_name())
default = lambda: patched(sp, QUEUE_WALK=None)
plain = lambda: patched(sp, QUEUE_WALK="ascending")
for M, d in ((512, 0.1), (1024, 0.1), (2048, 0.1), (8192, 0.1), (4096, 0.05), (4096, 0.2)):
    sets = problem(M, 8192, 8192, 64, "float16", kind="small_world", density=d)
    walks_default(sets, plain, default, f"small_world d {d} float16 bs 64 M {M} fprop / "
                  "bprop, ascending; default")
    del sets
    fresh([])
PY
elif [ "$1" = v52 ]; then
  # v48: GROUP_WALK (opt-in when this ran; "hubs" by default since f23a31b), the order of an
  # R 4 column group's steps: small world is the
  # layout R 4 serves (16-bit bs 32 above M = 64); ascending / hashed / hubs, twice, at
  # M = 4096 d = 0.1 (fp16, bf16), d = 0.2 and M = 1024 (fp16), after its GPU test (<= 170 s)
  first_tests 60 "test_stream_column_groups_walks"
  PYTHONPATH=.:probes timeout $((170 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import fprop_bprop, fresh, patched, problem, say
from cupy_bsparse import _specs as sp, bench
say(bench.gpu_name())
walk = {w: (lambda w=w: patched(sp, GROUP_WALK=w)) for w in sp.QUEUE_WALKS}
for M, d, dt in ((4096, 0.1, "float16"), (4096, 0.1, "bfloat16"), (4096, 0.2, "float16"),
                 (1024, 0.1, "float16")):
    sets = problem(M, 8192, 8192, 32, dt, kind="small_world", density=d); ref = {}
    order = ("ascending", "hashed", "hubs") * 2
    runs = [w + " " + fprop_bprop(sets, ref, walk[w]) for w in order]
    r = sorted({k[2] for k in sets[0]["w"].layout.plan_cache
                if isinstance(k, tuple) and k[0] == "dsd_group"})
    say(f"small_world d {d} {dt} bs 32 M {M} (R {r}) fprop / bprop: " + "; ".join(runs))
    del sets
    fresh([])
PY
elif [ "$1" = v53 ]; then
  # v48's loose ends in one call: small world's 16-bit bs 32 and 64 rows with both walks on
  # (the bs 32 wgrad predicted at 1.30x fprop), then the suite (f23a31b's two changed GPU
  # tests among it) (<= 595 s)
  timeout 70 python3 -m cupy_bsparse bench --m 4096 --layout small_world --dtype float16 bfloat16 \
    --blocksize 32 64 --baselines dense --out "$out/t53_small_world" 2>&1 | grep -v "^\[" | tail -2
  python3 probes/targets.py "$out"/t53_small_world.json
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout $((595 - SECONDS)) bash .ci/gpu 2>&1 | tail -14
elif [ "$1" = v54 ]; then
  # v49: the coarse wgrad (16-bit bs 32 on the 2 x 2 coarsened layout, COARSE_WGRAD): its GPU
  # tests and the sddmm tests of bs 32 (memcheck on a few), p48 (default against "0"), then
  # small world's 16-bit bs 32 / 64 target rows (<= 400 s)
  checked_first 150 "coarse or (test_sddmm and 32 and not f32 and not tf32)" 60 memcheck_v54.log \
      "test_sddmm_coarse and 100 and not odd"
  PYTHONPATH=.:probes timeout $((330 - SECONDS)) python3 probes/p48.py 2>&1 | grep -v "^\["
  timeout $((400 - SECONDS)) python3 -m cupy_bsparse bench --m 4096 --layout small_world \
    --dtype float16 bfloat16 --blocksize 32 64 --baselines dense --out "$out/t54_small_world" \
    2>&1 | grep -v "^\[" | tail -1
  python3 probes/targets.py "$out"/t54_small_world.json
elif [ "$1" = v55 ]; then
  # v49: the coarse wgrad for float32 bs 8 too (bs 16's sddmm_tall.cu, coarse_blocks.cu in
  # float32): the coarse and sddmm GPU tests (memcheck on a few), p48 f32, small world's
  # float32 bs 8 row; then, if the tests passed, the suite (<= 595 s)
  checked_first 120 "coarse or (test_sddmm and 8 and f32)" 50 memcheck_v55.log \
      "test_sddmm_coarse and 100 and not odd and 1.0"
  [ "$rc" = 0 ] || exit 1
  PYTHONPATH=.:probes timeout 70 python3 probes/p48.py f32 2>&1 | grep -v "^\["
  timeout 50 python3 -m cupy_bsparse bench --m 4096 --layout small_world --dtype float32 \
    --blocksize 8 --baselines dense --out "$out/t55_small_world" 2>&1 | grep -v "^\[" | tail -1
  python3 probes/targets.py "$out"/t55_small_world.json
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout $((595 - SECONDS)) bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v56 ]; then
  # v50's plan: the suite owed since 1a4c4eb (coarse_blocks.cu: the 64-bit modulo, then the
  # hybrid plans' rest blocks), with 3b0b238's and the hybrid's GPU tests among it, then
  # p48 hybrid quick (16-bit bs 32: groups of >= 2 / 4 coarse, the rest direct) (<= 595 s)
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 480 bash .ci/gpu 2>&1 | tail -7
  PYTHONPATH=.:probes timeout $((595 - SECONDS)) python3 probes/p48.py hybrid quick 2>&1 \
    | grep -v "^\["
elif [ "$1" = v57 ]; then
  # after v56: the hybrid on float32 bs 8 and bs 16 (onto bs 32; E says whole groups only),
  # then memcheck on the hybrid tests at beta 1, band and diagonal (<= 460 s)
  PYTHONPATH=.:probes timeout 150 python3 probes/p48.py hybrid f32 2>&1 | grep -v "^\["
  PYTHONPATH=.:probes timeout 150 python3 probes/p48.py hybrid f32b16 2>&1 | grep -v "^\["
  sanitize memcheck 150 memcheck_v57.log "test_sddmm_coarse_hybrid and 1.0 and (band or diagonal)"
elif [ "$1" = v58 ]; then
  # v50: the hybrid's two wgrads on two streams (COARSE_OVERLAP): its tests first (a hang must
  # not eat the call), memcheck on them, then p48 overlap on 16-bit bs 32, float32 bs 16 / 8
  first_tests 120 "coarse_hybrid"
  sanitize memcheck 120 memcheck_v58.log "coarse_hybrid_streams"
  for m in quick f32b16 f32; do
    PYTHONPATH=.:probes timeout 150 python3 probes/p48.py overlap $m 2>&1 | grep -v "^\["
  done
elif [ "$1" = v59 ]; then
  # v50: the hybrid rules (float32 bs 16 whole groups, bs 8 groups of >= 2 after the full
  # rule): the coarse GPU tests, p48 rule at other M and d, then the float32 bs 8 / 16 rows of
  # small world and Barabasi-Albert (<= 420 s)
  first_tests 100 "${V59_K:-coarse}"
  [ "$rc" = 0 ] || exit 1
  for m in f32b16 f32; do
    PYTHONPATH=.:probes timeout 90 python3 probes/p48.py rule $m m 2>&1 | grep -v "^\["
  done
  float32_rows t59 415
elif [ "$1" = v60 ]; then
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 540 bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v61 ]; then
  # v50: which of the hybrid's wgrads goes first on the side stream (COARSE_SIDE): the coarse
  # GPU tests with the coarse one first, p48 side, then small world's float32 bs 16 row with
  # it (v59: wgrad 1.2525x fprop with the rest first) (<= 250 s)
  CUPY_BSPARSE_COARSE_SIDE=coarse first_tests 60 "coarse_hybrid"
  for m in f32b16 f32; do
    PYTHONPATH=.:probes timeout 70 python3 probes/p48.py side $m 2>&1 | grep -v "^\["
  done
  for side in coarse rest; do
    CUPY_BSPARSE_COARSE_SIDE=$side timeout $((245 - SECONDS)) python3 -m cupy_bsparse bench \
      --m 4096 --layout small_world --dtype float32 --blocksize 16 --baselines dense \
      --out "$out/t61_$side" 2>&1 | grep -v "^\[" | tail -1
    python3 probes/targets.py "$out"/t61_$side.json | grep float32
  done
elif [ "$1" = v62 ]; then
  # v50: the hybrid's wgrad of more predicted work first (COARSE_SIDE None): the coarse GPU
  # tests, then the float32 bs 8 / 16 rows of small world and Barabasi-Albert (<= 250 s)
  first_tests 80 "coarse"
  [ "$rc" = 0 ] || exit 1
  float32_rows t62 245
elif [ "$1" = v63 ]; then
  # after v50's review mends (b1e648c: the join in a finally, a side stream per caller's
  # stream, no plan below min_m; the streams, by_rule, transposed and tma-case tests changed):
  # the coarse GPU tests, memcheck on the streams and by_rule tests, then the suite (<= 595 s)
  checked_first 100 "coarse" 90 memcheck_v63.log "coarse_hybrid_streams or coarse_by_rule"
  [ "$rc" = 0 ] || exit 1
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout $((595 - SECONDS)) bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v64 ]; then
  # the issue's overheads (compile, cache-hit first result, host time a call), last measured
  # in v8, then the float32 bs 8 / 16 rows of small world (bs 16 met on the line in v50) and
  # Barabasi-Albert again (<= 200 s)
  timeout 90 python3 -m cupy_bsparse overheads 2>&1 | grep -v "^\[" | tail -12
  float32_rows t64 195
elif [ "$1" = v65 ]; then
  # v50's CPU model: dsd_grouped_tma.cu's hub groups cut by weight at large M (GROUP_BALANCE,
  # off by default then): its GPU tests and the grouped kernels' split tests, then p50 (Barabasi-
  # Albert float32 bs 8 fprop predicted 2.377 -> about 2.16 ms; random / small world the same
  # plan) (<= 300 s)
  first_tests 120 "grouped_tma_balance or (test_grouped_kernel and grouped_tma and weight)"
  [ "$rc" = 0 ] || exit 1
  PYTHONPATH=.:probes timeout $((${V_T:-295} - SECONDS)) python3 probes/p50.py 2>&1 | grep -v "^\["
elif [ "$1" = v66 ]; then
  # v50's CPU model: float32 wgrad's row chunks in one launch of sddmm_tall.cu (MCH, flags a
  # segment; SDDMM_MERGE_CHUNKS, off by default then): its GPU tests (a hang must not eat the call),
  # memcheck and racecheck on them, then p51 (bs 16 predicted 3-7% faster) (<= 300 s)
  checked_first 90 "merged_chunks or tall_m_chunks" 60 memcheck_v66.log "merged_chunks"
  [ "$rc" = 0 ] || exit 1
  sanitize racecheck 60 racecheck_v66.log "merged_chunks"
  PYTHONPATH=.:probes timeout $((${V_T:-295} - SECONDS)) python3 probes/p51.py 2>&1 | grep -v "^\["
elif [ "$1" = v67 ]; then
  # v65 then v66 in one call (one start), cut to 280 / 285 s (<= 580 s)
  V_T=280 bash probes/next.sh v65
  V_T=285 bash probes/next.sh v66
elif [ "$1" = v68 ]; then
  # a scarce device's short call: p50 quick then p51 quick, no tests (the suite runs them) (<= 300 s)
  PYTHONPATH=.:probes timeout 140 python3 probes/p50.py quick 2>&1 | grep -v "^\["
  PYTHONPATH=.:probes timeout $((298 - SECONDS)) python3 probes/p51.py quick 2>&1 | grep -v "^\["
elif [ "$1" = v69 ]; then
  # the suite alone, 4 shards (<= V_T, 570 s by default); each shard's 40 slowest tests go
  # to $OUT/gpu_tests.log (where the suite's time goes: its CPU references or the GPU)
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 PYTEST_ARGS="--durations=40" \
      timeout "${V_T:-570}" bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v70 ]; then
  # the last ~380 s of a scarce session: the GPU tests of the code changed since a54cec1 (the
  # coarse mends, GROUP_BALANCE, MCH, the sddmm row maps) in 4 shards, then p50 / p51 quick
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 \
      PYTEST_K="coarse or tall or grouped_tma or balance or merged or sddmm_tma or sddmm_stream or wgrad" \
      timeout 250 bash .ci/gpu 2>&1 | tail -7
  t=$(( (${V_T:-370} - SECONDS) / 2 ))   # timeout 0 would be no limit
  [ "$t" -gt 5 ] && PYTHONPATH=.:probes timeout "$t" python3 probes/p50.py quick 2>&1 | grep -v "^\["
  t=$((${V_T:-370} - SECONDS))
  [ "$t" -gt 5 ] && PYTHONPATH=.:probes timeout "$t" python3 probes/p51.py quick 2>&1 | grep -v "^\["
elif [ "$1" = v71 ]; then
  # after v51 (GROUP_BALANCE 1.25 and merged row chunks by default, 3231a6a): racecheck on the
  # merged chunks, then the float32 bs 8 / 16 rows on small world, Barabasi-Albert and random
  # (the bs 8 hybrid's coarse chunks merged: unmeasured) (<= 330 s); the suite is v69's call
  sanitize racecheck 90 racecheck_v71.log "merged_chunks"
  float32_rows t71 300
  if [ $SECONDS -lt 300 ]; then
    timeout $((325 - SECONDS)) python3 -m cupy_bsparse bench --m 4096 --layout random \
      --dtype float32 --blocksize 8 16 --baselines dense --out "$out/t71_random" 2>&1 \
      | grep -v "^\[" | tail -7
    [ -f "$out/t71_random.json" ] && python3 probes/targets.py "$out/t71_random.json"
  fi
elif [ "$1" = v72 ]; then
  # v52's clamp-free 3xTF32 split (tf32x3.cuh TF32_CLAMP; TF32_REDO, opt-in, on sddmm_grouped.cu
  # and sddmm_tall.cu): its tests (bitwise the clamped kernel's, edge inputs included), memcheck
  # on them, then p52 (SASS: about -20% main-loop instructions) (<= 260 s)
  checked_first 100 "sddmm_f32_redo" 60 memcheck_v72.log "sddmm_f32_redo"
  [ "$rc" = 0 ] || exit 1
  probe p52.py 258
elif [ "$1" = v73 ]; then
  # v72 then v71 on one start (<= 595 s)
  V_T=258 bash probes/next.sh v72
  bash probes/next.sh v71
elif [ "$1" = v74 ]; then
  # v52's SADDR / SOFF (sddmm_grouped.cu's float32 bs 8 pairs: fragment loads from
  # shared-window addresses, SOFF with the table's byte offsets; SASS -9.4% / -15%, untimed;
  # probe knobs, so p53 gives the rows' wgrad times): their tests and the redo tests, then p53
  # (<= 300 s)
  first_tests 90 "grouped_f32_variants or sddmm_f32_redo"
  [ "$rc" = 0 ] || exit 1
  probe p53.py 298
elif [ "$1" = v76 ]; then
  # v53's TPAIRS (sddmm_grouped.cu's float32 bs 8 units paired two ways, on one-row stages; -9.9%
  # unit steps at M = 4096, untimed): the variant and redo tests, memcheck on the variants, then
  # p56 with the float32 bs 8 rows (<= 240 s)
  checked_first 90 "grouped_f32_variants or sddmm_f32_redo" 60 memcheck_v76.log "grouped_f32_variants"
  [ "$rc" = 0 ] || exit 1
  probe p56.py 238 rows
  python3 probes/targets.py "$out/p56_random.json" "$out/p56_barabasi_albert.json"
elif [ "$1" = v77 ]; then
  # v53's two-way pairs by the walk and the grouped tail order, both opt-in: their tests and
  # the tables' cupy build, memcheck on them, then p57 with the float32 bs 8 rows (<= 400 s).
  # The whole suite with them is v69's call: CUPY_BSPARSE_TWO_WAY_PAIRS=1
  # CUPY_BSPARSE_SDDMM_GROUPED_TAIL=1 V_T=570 bash probes/next.sh v69
  checked_first 120 "grouped_f32_variants or sddmm_f32_redo or grouped_tail or tables_built" \
      60 memcheck_v77.log "grouped_f32_variants or grouped_tail"
  [ "$rc" = 0 ] || exit 1
  probe p57.py 395 rows
  ls "$out"/p57_*.json > /dev/null 2>&1 && python3 probes/targets.py "$out"/p57_*.json
elif [ "$1" = v78 ]; then
  # v54: TPAIRS on by default, its units from _forest_pairs (the walk's counts, other pairs),
  # SDDMM_GROUPED_TAIL by grouped_tail_on (not grouped_tma bs 8): the GPU tests of the grouped
  # sddmm paths (the whole suite passed with both switches 1 and 0 on b57f920, on the walk's
  # units), memcheck on the float32 variants, the tables' host cost, then the bs 8 rows on
  # the new defaults (<= 330 s)
  checked_first 130 "grouped_f32_variants or sddmm_f32_redo or grouped_tail or tables_built or two_way or sddmm_grouped" \
      60 memcheck_v78.log "grouped_f32_variants or grouped_tail"
  [ "$rc" = 0 ] || exit 1
  timeout 20 python3 probes/walk_cost.py
  for lay in random barabasi_albert small_world; do
    for dt in float32 float16; do
      [ $SECONDS -lt 300 ] && timeout 40 python3 -m cupy_bsparse bench --m 4096 --layout $lay \
          --dtype $dt --blocksize 8 --baselines dense --out "$out/v78_${lay}_$dt" 2>&1 | grep -v "^\[" | tail -4
    done
  done
  python3 probes/targets.py "$out"/v78_*.json
elif [ "$1" = v81 ]; then
  # v55's lead on Barabasi-Albert's float32 bs 8 fprop / bprop (dsd_grouped_tma.cu: 1.17x
  # random's time a block, 1.12x its x slab bytes a block): p62 (v56: each launch's block copy
  # mode flipped, WCP), then ncu's L2 / HBM / tensor split of both launches on random and
  # Barabasi-Albert (<= 440 s)
  PYTHONPATH=.:probes timeout 150 python3 probes/p62.py 2>&1 | grep -v "^\["
  for lay in random barabasi_albert; do
    LAYOUT=$lay KREGEX=bsmm_dsd CASES="fprop,float32,8,4096,8192 bprop,float32,8,4096,8192" \
        timeout 140 bash probes/ncu_rows.sh
  done
elif [ "$1" = v82 ]; then
  # v56's HBM lead on Barabasi-Albert's float32 bs 8 dsd launches (perf-notes v57): p63's
  # variants timed, then ncu's HBM bytes for each; then breakeven M ($2, default none)
  PYTHONPATH=.:probes timeout 200 python3 probes/p63.py time 2>&1 | grep -v "^\["
  n=$out/ncu63; mkdir -p "$n"
  for c in "barabasi_albert default fprop" "barabasi_albert nobal fprop" "barabasi_albert whint2 fprop" \
           "barabasi_albert xhint2 fprop" "barabasi_albert perm fprop" "random default fprop" \
           "random bal1 fprop" "barabasi_albert default bprop" "barabasi_albert nobal bprop"; do
    set -- $c
    [ $SECONDS -lt 420 ] && PYTHONPATH=.:probes timeout 60 ncu --clock-control none -k regex:bsmm_dsd \
      --launch-skip 2 --launch-count 1 --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sector_hit_rate.pct,l1tex__m_xbar2l1tex_read_bytes.sum \
      --csv --page raw python3 probes/p63.py one $1 $2 $3 > "$n/$1_$2_$3.csv" 2> "$n/$1_$2_$3.err"
    echo "== $c rc=$?"; grep -E "ERR|rror" "$n/$1_$2_$3.err" | head -3
  done
  python3 probes/ncu_summary.py "$n"
elif [ "$1" = v83 ]; then
  # v57: why Barabasi-Albert's float32 bs 8 x @ W costs 12-13% more a unit of work than the
  # CTA-order model that fits random (p63): p19's step timelines (records kept as .npy), then
  # ncu's stalls, instructions and shared-memory conflicts on random / BA / BA shuffled (<= 300 s)
  PYTHONPATH=.:probes timeout 150 python3 probes/p19.py baf32 2>&1 | grep -v "^\["
  n=$out/ncu63s; mkdir -p "$n"
  for c in "random default fprop" "barabasi_albert default fprop" "barabasi_albert perm fprop"; do
    set -- $c
    PYTHONPATH=.:probes timeout 60 ncu --clock-control none -k regex:bsmm_dsd --launch-skip 2 --launch-count 1 \
      --section WarpStateStats --metrics gpu__time_duration.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__warps_eligible.avg.per_cycle_active \
      --csv --page raw python3 probes/p63.py one $1 $2 $3 > "$n/$1_$2_$3.csv" 2> "$n/$1_$2_$3.err"
    echo "== $c rc=$?"; grep -E "ERR|rror" "$n/$1_$2_$3.err" | head -3
    python3 probes/ncu_summary.py --all "$n/$1_$2_$3.csv" | grep -E "inst_executed|bank|wavefronts|issue_stalled.*per_issue_active|time_dur|issue_active|hmma|eligible"
  done
elif [ "$1" = v85 ]; then
  # v57's next: the float32 bs 8 producer's tables PF steps ahead (p63 pf: default / PF 2 / 3
  # on Barabasi-Albert and random, M = 4096; sums bitwise equal), then p19 baf32 again (<= 200 s)
  PYTHONPATH=.:probes timeout 120 python3 probes/p63.py pf 2>&1 | grep -v "^\["
  PYTHONPATH=.:probes timeout 100 python3 probes/p19.py baf32 2>&1 | grep -v "^\["
elif [ "$1" = v87 ]; then
  # v58: float32 bs 8 dsd_grouped_tma.cu on 7 consumer warps (R 28) above M = 64: the suite,
  # less v59's TSPLIT tests (a kernel path that has never run: v89 runs them first, alone)
  PYTEST_K="not tall_tail_split" V_T=${V_T:-480} bash probes/next.sh v69
elif [ "$1" = v88 ]; then
  # v58's count on 16-bit bs 8 (p66: 8-warp CTAs, 126 registers, against 10 warps at 96)
  PYTHONPATH=.:probes timeout "${V_T:-200}" python3 probes/p66.py 2>&1 | grep -v "^\["
elif [ "$1" = v89 ]; then
  # v59: sddmm_tall.cu's last wave cut along M (TSPLIT, opt-in): its GPU tests (a hang must not
  # eat the call) and memcheck on them; then p67 wgrad (the non-square 16-bit bs 32 wgrad and
  # seven other shapes, TSPLIT against the default) and p67 late (the fprop's queue and LATE 3
  # on the same row and five other shapes), within V_T seconds (420 by default)
  checked_first 100 "tall_tail_split" 60 memcheck_v89.log "tall_tail_split"
  [ "$rc" = 0 ] || exit 1
  T=${V_T:-420}
  V_T=$((SECONDS + (T - SECONDS) * 6 / 10)) probe p67.py 0 wgrad
  V_T=$T probe p67.py 0 late
elif [ "$1" = v91 ]; then
  # v59's plan for one start: call 1 is v87 (the suite); this call 2 runs v89 (TSPLIT's tests,
  # memcheck, p67) within 400 s, then v90 (p68) in what is left of 590 s
  V_T=400 bash probes/next.sh v89
  [ $SECONDS -lt 540 ] && V_T=$((590 - SECONDS)) bash probes/next.sh v90
elif [ "$1" = v92 ]; then
  # call 3: v87b (float32 bs 8's bench rows, p63 mid) within 300 s, then v88 (p66) to 590 s
  V_T=300 bash probes/next.sh v87b
  [ $SECONDS -lt 540 ] && V_T=$((590 - SECONDS)) bash probes/next.sh v88
elif [ "$1" = v90 ]; then
  # v59: Barabasi-Albert float32 bs 8's wgrad (the hybrid coarse plan) timed whole, in
  # sequence, direct, and its two parts alone (p68), within V_T seconds (200 by default)
  probe p68.py 200
elif [ "$1" = v87s ]; then
  # v58 with too little device time left for the whole suite: the GPU tests that run float32
  # bs 8 through dsd_grouped_tma.cu (its 7-warp specs above M = 64) in 4 shards, no cache
  # warm-up, within V_T (200 s by default)
  GPU_SHARDS=4 SKIP_WARM=1 SKIP_SANITIZER=1 SKIP_BENCH=1 \
      PYTEST_K="(grouped_kernel and f32) or grouped_tma_f32_split or grouped_tma_balance or (matmul and float32)" \
      timeout "${V_T:-200}" bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v87b ]; then
  # v58: the float32 bs 8 rows on three layouts at M = 4096 and the non-square shape (fprop,
  # bprop, wgrad; targets.py), then 7 against 8 consumer warps between M = 128 and 1024 (p63
  # mid), within V_T seconds (300 by default; each step skipped when too little is left)
  T=${V_T:-300}
  for L in random barabasi_albert small_world nonsq; do
    [ $((T - SECONDS)) -gt 40 ] || break
    case $L in nonsq) args="--m 4095 --c 8192 --k 4096";; *) args="--m 4096 --layout $L";; esac
    # shellcheck disable=SC2086
    timeout $((T - SECONDS - 5)) python3 -m cupy_bsparse bench $args --dtype float32 --blocksize 8 \
      --baselines dense --out "$out/f32bs8_$L" 2>&1 | grep -v "^\[" | tail -4
  done
  ls "$out"/f32bs8_*.json > /dev/null 2>&1 && python3 probes/targets.py "$out"/f32bs8_*.json
  [ $((T - SECONDS)) -gt 30 ] && PYTHONPATH=.:probes timeout $((T - SECONDS - 3)) \
      python3 probes/p63.py mid 2>&1 | grep -v "^\["
elif [ "$1" = v86 ]; then
  # v57's next for the non-square rows (M = 4095, C 8192, K 4096; 16-bit bs 32 fprop E 0.217
  # against 0.22): p65, the fallback 256-row tiles it runs (queue_fits fails) against the
  # 512-row queue set forced, with LATE 2 / 3 (<= 200 s)
  PYTHONPATH=.:probes timeout 190 python3 probes/p65.py 2>&1 | grep -v "^\["
elif [ "$1" = v49 ]; then
  # v47 cut to one start's last ~240 s (v47's session: every start but the last refused): the
  # queue-order test, then v47's fp16 bs 64 cases only (<= 230 s)
  V47_QUICK=1 V47_T=230 bash probes/next.sh v47 short
elif [ "$1" = v48 ]; then
  # v46's device time went on refused starts: v47 short, then the GPU tests of the code changed
  # since the last full suite (0245362: the queue's plans and keys, the wgrad plan key) in 4
  # shards, not the whole suite (<= T, 560 s by default)
  bash probes/next.sh v47 short
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 PYTEST_K="stream or queue or qlist or tall" \
      timeout $((${2:-560} - SECONDS)) bash .ci/gpu 2>&1 | tail -14
elif [ "$1" = v46b ]; then
  # float32 sddmm_tall.cu keeps row order and the full cut (v35: largest-first lost 1.3% on bs
  # 16). v45's even cut gained 1.2-4% on 16-bit; here float32 bs 16 / 32 / 64 at M = 4096 with
  # row order + full (default), row + even, largest-first + even, largest-first + full (<= 240 s)
  PYTHONPATH=.:probes timeout 235 python3 - <<'PY' 2>&1 | grep -v "^\["
import contextlib
from _common import fresh, patched, problem, say, wgrad_line
from cupy_bsparse import _work_lists as wl, bench
say(bench.gpu_name())
orig = wl.sddmm_plan
def forced(lf, ev):
    busy = []
    def plan(layout, nb, largest_first=False, even=False):
        if busy:
            return orig(layout, nb, largest_first, even)
        busy.append(1)
        try:
            return orig(layout, nb, lf, ev)
        finally:
            busy.pop()
    return lambda: patched(wl, sddmm_plan=plan)
variants = (("row", contextlib.nullcontext), ("row_even", forced(False, True)),
            ("lf_even", forced(True, True)), ("lf", forced(True, False)))
for kind, bs, M in (("random", 16, 4096), ("small_world", 16, 4096), ("random", 32, 4096),
                    ("random", 64, 4096), ("random", 16, 1024)):
    sets = problem(M, 8192, 8192, bs, "float32", kind=kind)
    parts = [f"{n} " + wgrad_line(sets, v, check=True) for n, v in variants + variants]
    say(f"{kind} float32 bs {bs} M {M} wgrad: " + "; ".join(parts))
    del sets
    fresh([])
PY
elif [ "$1" = v44 ]; then
  # the GPU suite owed since 4f325aa (NB 2 alone up to M = 512) (<= 440 s)
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 435 bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v45 ]; then
  # v44's CPU model (probes/segment_order_model.py): near-equal segments (a row of 13 blocks in
  # 7 + 6, not 8 + 5) let largest-first run a block-row's segments in one wave, sharing x's
  # tile: fp16 bs 64 NB 8 random d 0.1, x from HBM 1.73x -> 1.09x, makespan 18 -> 15 units.
  # Its GPU tests, then default / even / default / even on the wgrad (<= 300 s)
  first_tests 100 "test_sddmm_tall_full_segments"
  PYTHONPATH=.:probes timeout $((295 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import fresh, patched, problem, say, wgrad_line
from cupy_bsparse import _specs as sp, bench
say(bench.gpu_name())
for kind, dtype, bs, M, C, K in (("random", "float16", 64, 4096, 8192, 8192), ("small_world", "float16", 64, 4096, 8192, 8192),
                                 ("barabasi_albert", "float16", 64, 4096, 8192, 8192), ("random", "bfloat16", 64, 4096, 8192, 8192),
                                 ("random", "float16", 64, 2048, 8192, 8192), ("random", "float16", 64, 8192, 8192, 8192),
                                 ("random", "float16", 64, 4095, 8192, 4096), ("random", "float16", 32, 4096, 8192, 8192),
                                 ("small_world", "float16", 32, 4096, 8192, 8192), ("random", "float16", 64, 1024, 8192, 8192)):
    sets = problem(M, C, K, bs, dtype, kind=kind)
    parts = [f"{n} " + wgrad_line(sets, lambda v=v: patched(sp, TALL_EVEN_SEGMENTS=v), check=True)
             for n, v in (("default", False), ("even", True), ("default", False), ("even", True))]
    say(f"{kind} {dtype} bs {bs} M {M} C {C} K {K} wgrad: " + "; ".join(parts))
    del sets
    fresh([])
PY
elif [ "$1" = v44c ]; then
  # v44 cut to a short budget: the GPU tests of the sddmm paths 4f325aa and d62185c changed
  # (1734 of 5262 GPU tests) (<= 215 s)
  GPU_SHARDS=4 SKIP_SANITIZER=1 SKIP_BENCH=1 PYTEST_K="sddmm or wgrad or tall" timeout 210 bash .ci/gpu 2>&1 | tail -7
elif [ "$1" = v44b ]; then
  # after v43 (the NB 8 wgrad reads 249 MB from HBM against a 197 MB model: largest-first puts
  # each block-row's full segment in wave 1 and its short one in wave 2, so x's tile is read
  # twice): "grouped", the segments largest-first by their block-row's total, a row's segments
  # side by side; then NB 2 at M = 384-512 in 3 stages (three CTAs an SM) against the 4 its
  # spec takes (<= 200 s)
  PYTHONPATH=.:probes timeout $((195 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
import numpy as np, cupy
from _common import fresh, patched, problem, say, wgrad_line
from cupy_bsparse import _specs as sp, _work_lists as wl, bench
say(bench.gpu_name())
PLAN = wl.sddmm_plan
def grouped(layout, nb, largest_first=False):
    if not largest_first:
        return PLAN(layout, nb)
    key = ("sddmm grouped", nb)
    if key not in layout.plan_cache:
        seg, cols = PLAN(layout, nb)
        s = cupy.asnumpy(seg)
        tot = np.bincount(s[:, 0], weights=s[:, 2]) if len(s) else np.zeros(0)
        order = np.lexsort((-s[:, 2], s[:, 0], -tot[s[:, 0]])) if len(s) else np.zeros(0, int)
        layout.plan_cache[key] = (cupy.ascontiguousarray(cupy.asarray(s[order])), cols)
        cupy.cuda.Device().synchronize()
    return layout.plan_cache[key]
for kind, dtype, M, C, K in (("random", "float16", 4096, 8192, 8192), ("random", "bfloat16", 4096, 8192, 8192),
                             ("barabasi_albert", "float16", 4096, 8192, 8192), ("small_world", "float16", 4096, 8192, 8192),
                             ("random", "float16", 2048, 8192, 8192), ("random", "float16", 8192, 8192, 8192),
                             ("random", "float16", 4095, 8192, 4096)):
    sets = problem(M, C, K, 64, dtype, kind=kind)
    parts = []
    for name, r in (("default", 0), ("grouped", 1), ("default", 0), ("grouped", 1)):
        with patched(wl, **({"sddmm_plan": grouped} if r else {})):
            parts.append(f"{name} " + wgrad_line(sets, lambda: patched(sp), check=True))
    say(f"{kind} {dtype} M {M} C {C} K {K} wgrad: " + "; ".join(parts))
    del sets
    fresh([])
for kind, M in (("random", 384), ("random", 512), ("small_world", 512), ("barabasi_albert", 512), ("random", 300)):
    sets = problem(M, 8192, 8192, 64, "float16", kind=kind)
    parts = [f"{n} " + wgrad_line(sets, lambda v=v: patched(sp, TALL_WGMMA16_STAGES4_M=v), check=True)
             for n, v in (("4 stages", sp.TALL_WGMMA16_STAGES4_M), ("3 stages", (512, 4096)),
                          ("4 stages", sp.TALL_WGMMA16_STAGES4_M), ("3 stages", (512, 4096)))]
    say(f"{kind} fp16 M {M} NB 2 wgrad: " + "; ".join(parts))
    del sets
    fresh([])
PY
elif [ "$1" = v43b ]; then
  # after v43 (NB 2 won at M = 512 on the structured layouts, NB 8 on random at 768): where the
  # structured layouts stop preferring NB 2, and random at 384-512 (<= 200 s)
  tall_nb_sweep '(("random", 0.1, 8192, 512), ("random", 0.1, 8192, 384), ("small_world", 0.1, 8192, 384), ("barabasi_albert", 0.1, 8192, 768), ("small_world", 0.1, 8192, 768), ("barabasi_albert", 0.1, 8192, 2048), ("small_world", 0.1, 8192, 2048), ("random", 0.1, 8192, 2048))' 195
elif [ "$1" = v43 ]; then
  # after v42 (16-bit bs 64 wgrad in NB 8 segments, 0.138 ms at M = 4096): ncu's DRAM bytes of
  # the wgrad (v41: 329 MB at NB 4; predicted about 180 at NB 8), then the segment sizes forced
  # on the non-square shape (146 NB 8 segments: the rule keeps NB 4) and at M = 512-1024 over
  # the layouts, where the cut at M = 256 is coarse (<= 330 s)
  OPS=wgrad DTYPES=float16 BS=64 COPIES=0 timeout 120 bash probes/ncu_l2.sh 2>&1 | tail -25
  tall_nb_sweep '(("random", 0.1, 8192, 4095, 4096), ("random", 0.1, 8192, 1024, 4096), ("barabasi_albert", 0.1, 8192, 512), ("small_world", 0.1, 8192, 512), ("barabasi_albert", 0.1, 8192, 1024), ("small_world", 0.1, 8192, 1024), ("random", 0.1, 8192, 768))' 325
elif [ "$1" = v42c ]; then
  # v42b cut to a short budget (<= 190 s): the tests of the segment-size path, then the cases
  # the refinement changed (M <= 256 NB 2 alone; one wave 75% full)
  first_tests 90 "test_sddmm_tall_segment_sizes or (test_sddmm_tall_wgmma16 and default)"
  tall_nb_sweep '(("random", 0.1, 8192, 256), ("random", 0.1, 8192, 128), ("small_world", 0.05, 8192, 4096), ("random", 0.1, 4096, 4096), ("random", 0.1, 8192, 512))' 150
elif [ "$1" = v42b ]; then
  # v42 with the rule refined (one wave 75% full; NB 2 alone up to M = 256)
  # NB 8 with BPW 2 the default of the 16-bit bs 64 wgmma wgrad (v41d: 8-15% faster at M =
  # 2048-8192 on three layouts), NB 4 / 2 where its segments fill the device badly: the tests,
  # then each size forced against the launcher's pick on layouts whose NB 8 segments fall
  # under a wave or leave a thin last one (<= 330 s)
  first_tests 110 "test_sddmm_tall_wgmma16 or test_sddmm_tall_segment_sizes or (test_sddmm_tma_kernels and 64 and tall)"
  tall_nb_sweep '(("random", 0.1, 8192, 128), ("random", 0.1, 8192, 256), ("barabasi_albert", 0.2, 8192, 256), ("random", 0.1, 8192, 512), ("small_world", 0.1, 8192, 512), ("random", 0.1, 8192, 2048), ("small_world", 0.05, 8192, 4096), ("random", 0.1, 4096, 4096), ("random", 0.1, 4096, 1024), ("small_world", 0.1, 8192, 8192))'
elif [ "$1" = v41d ]; then
  # the wgrad (16-bit bs 64, M = 4096) with BPW 2 on the wgmma consumers (a warpgroup for two
  # blocks: segments of 8 / 6, an SM summing 8 / 6 blocks at once, so fewer waves of segments,
  # each re-reading dy from HBM: ncu 329 MB against 64 + 64): its tests, then the variants,
  # each also in block-row order ("rows": no largest-first sort) (<= 300 s)
  first_tests 100 "test_sddmm_tall_wgmma16"
  PYTHONPATH=.:probes timeout $((295 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import fresh, patched, problem, say, wgrad_line, with_knobs
from cupy_bsparse import _specs as sp, _work_lists as wl, bench
say(bench.gpu_name())
ORIG, PLAN = sp.sddmm_tall_spec, wl.sddmm_plan
rows = lambda layout, nb, largest_first=False: PLAN(layout, nb)
B8, B8K, B6 = {"NB": 8, "BPW": 2, "STAGES": 3}, {"NB": 8, "BPW": 2, "BK": 32, "STAGES": 5}, {"NB": 6, "BPW": 2, "STAGES": 4}
V = [("default", {}, 0), ("rows", {}, 1), ("NB 8 BPW 2", B8, 0), ("NB 8 BPW 2 rows", B8, 1),
     ("NB 8 BK 32 S5", B8K, 0), ("NB 6 BPW 2", B6, 0), ("NB 6 BPW 2 rows", B6, 1), ("default", {}, 0)]
for kind, dtype, M in (("random", "float16", 4096), ("random", "bfloat16", 4096),
                       ("barabasi_albert", "float16", 4096), ("small_world", "float16", 4096),
                       ("random", "float16", 2048), ("random", "float16", 8192)):
    sets = problem(M, 8192, 8192, 64, dtype, kind=kind)
    parts = []
    for name, knobs, r in V:
        spec = with_knobs(ORIG, knobs) if knobs else ORIG
        with patched(wl, **({"sddmm_plan": rows} if r else {})):
            line = wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=spec), check=True)
        parts.append(f"{name} {line}")
    say(f"{kind} {dtype} bs 64 M {M} wgrad: " + "; ".join(parts))
    del sets
    fresh([])
PY
  # then LATE on 16-bit bs 32's queue set (STREAM_TALL 3, mma.sync; its knob tests passed in
  # v41b), where v41 measured bs 64 only (<= 590 s)
  [ $SECONDS -lt 450 ] && PYTHONPATH=.:probes timeout $((585 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep
v = (("default", {}), ("LATE 2", {"LATE": 2}), ("LATE 3", {"LATE": 3}), ("LATE 4", {"LATE": 4}),
     ("default", {}))
queue_knob_sweep(((32, "random", 4096, "float16"), (32, "small_world", 4096, "float16"),
                  (32, "random", 4096, "bfloat16"), (32, "random", 1024, "float16"),
                  (32, "random", 8192, "float16")), v)
PY
elif [ "$1" = v41c ]; then
  # after LATE 3 (fprop 0.1266 ms at M = 4096) the bs 64 wgrad (0.1621) is 1.28x fprop: ncu's
  # DRAM and L2 bytes of fprop and wgrad (fp16 bs 64 M = 4096), then the wgrad's L2 hints (X_HINT
  # / D_HINT: 0 evict_first, 1 evict_last, the default, 2 normal) on random fp16 / bf16 (<= 420 s)
  OPS="fprop wgrad" DTYPES=float16 BS=64 COPIES=0 timeout 200 bash probes/ncu_l2.sh 2>&1 | tail -40
  PYTHONPATH=.:probes timeout $((415 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import fresh, patched, problem, say, wgrad_line, with_knobs
from cupy_bsparse import _specs as sp, bench
say(bench.gpu_name())
ORIG = sp.sddmm_tall_spec
V = [("default", {}), ("X_HINT 2", {"X_HINT": 2}), ("D_HINT 2", {"D_HINT": 2}),
     ("X 2 D 2", {"X_HINT": 2, "D_HINT": 2}), ("D_HINT 0", {"D_HINT": 0}), ("X_HINT 0", {"X_HINT": 0}),
     ("default", {})]
for kind, dtype in (("random", "float16"), ("random", "bfloat16"), ("barabasi_albert", "float16")):
    sets = problem(4096, 8192, 8192, 64, dtype, kind=kind)
    parts = []
    for name, knobs in V:
        spec = with_knobs(ORIG, knobs) if knobs else ORIG
        parts.append(f"{name} " + wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=spec), check=True))
    say(f"{kind} {dtype} bs 64 M 4096 wgrad: " + "; ".join(parts))
    del sets
    fresh([])
PY
elif [ "$1" = v41b ]; then
  # LATE (the next item claimed near the item's end, not at its start; v41's model of the
  # reservation put the non-square fprop's CTAs at 38-57 steps, as measured, against greedy's
  # 43-52): LATE 1 / 2 / 3 on the non-square shape, random, Barabasi-Albert and small world at
  # M = 4096 (fp16), then p19 late (<= 590 s); first LATE's tests (the sweep compares too)
  first_tests 150 "test_stream_queue_knobs and late"
  PYTHONPATH=.:probes timeout $((480 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep, say
from cupy_bsparse import bench
say(bench.gpu_name())
v = (("default", {}), ("LATE 1", {"LATE": 1}), ("LATE 2", {"LATE": 2}), ("LATE 3", {"LATE": 3}),
     ("default", {}))
queue_knob_sweep(((64, "random", 4095, "float16"), (64, "random", 4095, "bfloat16")), v, C=8192,
                 K=4096)
queue_knob_sweep(((64, "random", 4096, "float16"), (64, "barabasi_albert", 4096, "float16"),
                  (64, "small_world", 4096, "float16")), v[:3])
PY
  [ $SECONDS -lt 500 ] && timeout $((588 - SECONDS)) python3 probes/p19.py late 2>&1 | grep -v "^\[" | tail -40
elif [ "$1" = v41 ]; then
  # QLIST 8 (every long item first at M = 4096; v40 measured it 4% faster than the default 4)
  # set on this copy only, the sharded suite, then the count at M = 4096 and 8192 (16 row tiles,
  # where 8 is not yet "all") on fp16 / bf16 Barabasi-Albert, then p19 nonsquare (<= 590 s)
  qlist_suite 8
  [ $SECONDS -lt 470 ] && PYTHONPATH=.:probes timeout $((585 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep, say
from cupy_bsparse import bench
say(bench.gpu_name())
q = lambda n: (f"QLIST {n}", {"QLIST": n, "ILV": 0})
queue_knob_sweep(((64, "barabasi_albert", 4096, "float16"), (64, "barabasi_albert", 4096, "bfloat16")),
                 (("default", {}), q(4), q(16), ("default", {})))
queue_knob_sweep(((64, "barabasi_albert", 8192, "float16"),),
                 (("default", {}), q(4), q(16), ("default", {})))
PY
  # the non-square shape's step timelines (perf-notes v40's count), while time is left
  [ $SECONDS -lt 510 ] && timeout $((588 - SECONDS)) python3 probes/p19.py nonsquare 2>&1 | grep -v "^\[" | tail -30
elif [ "$1" = v40b ]; then
  # after v40 (the suite with QLIST 4 passed, QLIST_AHEAD 4 committed): v40's bench (<= 400 s)
  grep -n "^QLIST_AHEAD" cupy_bsparse/_specs.py
  bs64_bench_4096 400
elif [ "$1" = v40 ]; then
  # the suite with QLIST 4 by the layout (v39's measured rule, held at 0 in the repo until this
  # passes: set on this copy only), then the QLIST count on fp16 bs 64 Barabasi-Albert at
  # M = 4096: n = 5 / 6 at the 2x factor, then n = 3 / 4 at 1.5x (<= 590 s)
  qlist_suite 4
  [ $SECONDS -lt 460 ] && PYTHONPATH=.:probes timeout $((585 - SECONDS)) python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep, say, patched
from cupy_bsparse import bench, _specs
say(bench.gpu_name())
case = ((64, "barabasi_albert", 4096, "float16"),)
queue_knob_sweep(case, (("default", {}), ("QLIST 5", {"QLIST": 5, "ILV": 0}),
                        ("QLIST 6", {"QLIST": 6, "ILV": 0}), ("default", {})))
with patched(_specs, QLIST_FACTOR=1.5):
    queue_knob_sweep(case, (("1.5x QLIST 4 (the rule)", {}), ("1.5x QLIST 3", {"QLIST": 3, "ILV": 0})))
PY
  bs64_bench_4096 590
elif [ "$1" = v39b ]; then
  # for a short budget: QLIST's tests and the layout rule's, then the sweep of v39 (Barabasi-Albert
  # fp16 and bf16, random fp16), then memcheck on QLIST's 3-CTA tests while time is left (<= 380 s)
  first_tests 150 "(test_stream_queue_knobs and qlist) or test_stream_qlist_by_layout"
  if [ "$rc" = 0 ]; then
    PYTHONPATH=.:probes timeout 170 python3 - <<'PY' 2>&1 | grep -v "^\["
from _common import queue_knob_sweep, say
from cupy_bsparse import bench
say(bench.gpu_name())
queue_knob_sweep(((64, "barabasi_albert", 4096, "float16"), (64, "random", 4096, "float16"),
                  (64, "barabasi_albert", 4096, "bfloat16")),
                 (("default", {}), ("QLIST 3", {"QLIST": 3, "ILV": 0}),
                  ("QLIST 4", {"QLIST": 4, "ILV": 0}), ("default", {})))
PY
    [ $SECONDS -lt 300 ] && sanitize memcheck 75 memcheck_qlist.log "test_stream_queue_knobs and qlist and 3ctas"
  fi
elif [ "$1" = v38c ]; then
  # QLIST (never run on a GPU before): its tests under a timeout, then p47, then memcheck
  first_tests 150 "(test_stream_queue_knobs and qlist) or test_stream_qlist_by_layout"
  if [ "$rc" = 0 ]; then
    timeout 200 python3 probes/p47.py 2>&1 | grep -v "^\[" | tail -9
    [ $SECONDS -lt 300 ] && sanitize memcheck 80 memcheck_qlist.log "test_stream_queue_knobs and qlist and 3ctas"
  fi
elif [ "$1" = v36c ]; then
  # the queue's ILV (the last row tiles' items interleaved; never run on a GPU before): its
  # tests first under a generous timeout, memcheck on a few, then p43 (ILV timed)
  checked_first 200 "test_stream_queue_knobs and ilv" 100 memcheck_v36c.log \
    "test_stream_queue_knobs and ilv and 3ctas and xW"
  if [ "$rc" = 0 ]; then
    timeout 200 python3 probes/p43.py 2>&1 | grep -v "^\[" | tail -8
  fi
elif [ "$1" = v35stores ]; then
  # the 16-byte output stores against the 4-byte ones in one run (STORE_VEC 0): the dsd products
  # (p33 stores) and the wgrad (p29 stores; its bench was 1-2% slower than v33's)
  timeout 240 python3 probes/p33.py stores 2>&1 | grep -v "^\[" | tail -22
  timeout 200 python3 probes/p29.py stores 2>&1 | grep -v "^\[" | tail -16
elif [ "$1" = v34m ]; then
  # after the suite on y's 16-byte stores: memcheck on the stores' products, then the M = 64
  # bench (16-bit bs 32, 64) and bs 32 on Barabasi-Albert at M = 4096
  sanitize memcheck 120 memcheck_stores.log "(test_x_times_w and not large) or (test_stream_queue and 3ctas)"
  for bs in 32 64; do
    timeout 60 python3 -m cupy_bsparse bench --m 64 --dtype float16 bfloat16 --blocksize $bs \
      --layout random --baselines dense --out "$out/v34_m64_bs$bs" 2>&1 | grep -v "^\[" | tail -7
  done
  timeout 60 python3 -m cupy_bsparse bench --m 4096 --dtype float16 bfloat16 --blocksize 32 \
    --layout barabasi_albert --baselines dense --out "$out/v34_ba" 2>&1 | grep -v "^\[" | tail -7
elif [ "$1" = v34 ]; then
  # what keeps the queue's 512-row set (16-bit bs 32, M = 4096) at 6.4 TB/s against p32's 7.8:
  # its step timeline (p19 tall times the default, now that set), then p33 knobs again
  timeout 200 python3 probes/p19.py tall 2>&1 | grep -v "^\[" | head -16
  timeout 180 python3 probes/p33.py knobs 2>&1 | grep -v "^\[" | tail -22
elif [ "$1" = v32b ]; then
  # 16-bit bs 64 wgrad's segment size by the last wave (sddmm_tall_segment_size): the rule
  # against NB 4 and 2 forced (p29 auto), its test, then the bench's record on three layouts
  timeout 240 python3 probes/p29.py auto 2>&1 | grep -v "^\[" | tail -40
  first_tests 120 "test_sddmm_tall_segment_sizes"
  for lay in small_world random barabasi_albert; do
    timeout 60 python3 -m cupy_bsparse bench --m 4096 --dtype float16 bfloat16 --blocksize 64 \
      --layout $lay --baselines dense --out "$out/v32_$lay" 2>&1 | grep -v "^\[" | tail -7
  done
elif [ "$1" = v32 ]; then
  # bs 64 wgrad NB 2 against NB 4 over M, density and layout (p29 bs64sweep)
  timeout 150 python3 probes/p29.py bs64sweep 2>&1 | grep -v "^\[" | tail -46
elif [ "$1" = v31c ]; then
  # the suite on NB 7 (16-bit bs 32 wgrad), the bench's record of it, then p29 bs64
  SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 420 bash .ci/gpu 2>&1 | tail -3
  for lay in small_world random; do
    timeout 40 python3 -m cupy_bsparse bench --m 4096 --dtype float16 bfloat16 --blocksize 32 \
      --layout $lay --baselines dense --out "$out/v31_$lay" 2>&1 | grep -v "^\[" | tail -7
  done
  timeout 80 python3 probes/p29.py bs64 2>&1 | grep -v "^\[" | tail -14
elif [ "$1" = v27 ]; then
  column_group_probes
  SKIP_SANITIZER=1 SKIP_BENCH=1 timeout 415 bash .ci/gpu 2>&1 | tail -8
elif [ "$1" = v26 ]; then
  timeout 150 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider -x \
    -k "test_sddmm_tall_f32 or (test_sddmm_tma_kernels and tall and f32) or test_sddmm_tall_m_chunks" 2>&1 | tail -5
  sanitize memcheck 70 memcheck_tall16.log "test_sddmm_tall_f32_consumers and wgmma and 16"
  sanitize racecheck 70 racecheck_tall16.log "test_sddmm_tall_f32_consumers and wgmma and 16"
  timeout 170 python3 probes/p25.py 2>&1 | tail -8
elif [ "$1" = v25b ]; then
  timeout 60 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider \
    -k "(test_sddmm_tma_kernels and tall and 32 and (f16 or bf16)) or (test_sddmm and not tma and 4096 and 32)" 2>&1 | tail -2
  timeout 60 python3 -m cupy_bsparse bench --m 4096 --dtype float16 bfloat16 --blocksize 32 \
    --baselines dense --out "$out/v25_16bit_bs32" 2>&1 | grep -v "^\[" | tail -8
  timeout 430 bash probes/next.sh suite
elif [ "$1" = v17 ]; then
  timeout 400 bash probes/next.sh suite
  timeout 150 python3 -m cupy_bsparse bench --dtype float16 bfloat16 --m 64 --blocksize 64 \
    --baselines dense --out "$out/bench_v17_bs64" 2>&1 | grep -v "^\[" | tail -12
elif [ "$1" = v17b ]; then
  timeout 400 bash probes/next.sh suite
  bs16_xwt_layouts
elif [ "$1" = v18 ]; then
  # p17 first: if the suite runs long, the timeout cuts its memcheck, not the measurement. If
  # p17 hangs (a split kernel that never finishes), the suite leaves the split tests out.
  timeout 190 python3 probes/p17.py > "$out/p17.out" 2>&1; rc=$?; tail -60 "$out/p17.out"
  if [ $rc -eq 124 ]; then
    export PYTEST_K="not (f32_split or split_tf32)"; echo "p17 timed out: the suite leaves out the split tests"
  fi
  timeout 400 bash probes/next.sh suite
elif [ "$1" = v18b ]; then
  bs16_xwt_layouts
  sanitize racecheck 200 racecheck_split.log "f32_split or split_tf32"
  CUPY_BSPARSE_F32_SPLIT=pass timeout 200 python3 -m cupy_bsparse bench --dtype float32 --m 64 \
    --baselines dense --out "$out/v18_f32_pass" 2>&1 | grep -v "^\[" | tail -16
elif [ "$1" = v19 ]; then
  timeout 130 python3 probes/p18.py stream copies 2>&1 | tail -60
  timeout 180 python3 probes/p18.py items 2>&1 | tail -80
  for L in small_world barabasi_albert; do
    timeout 90 python3 -m cupy_bsparse bench --layout $L --dtype float16 --m 64 --blocksize 8 16 \
      --baselines dense --out "$out/v19_$L" 2>&1 | grep -v "^\[" | tail -12
  done
elif [ "$1" = v21 ]; then
  # the suite on v21's defaults (memcheck on the PW test too), then the producer's cases (p19)
  timeout 400 bash probes/next.sh suite
  timeout 150 python3 probes/p19.py producer 2>&1 | tee "$out/p19_producer.log" | tail -110
elif [ "$1" = v21b ]; then
  # the status tables on v21's defaults, one tree and device
  timeout 200 bash probes/next.sh targets 64 2>&1 | tail -16
  timeout 200 bash probes/next.sh targets 4096 2>&1 | tail -16
elif [ "$1" = v24b ]; then
  timeout 240 bash probes/next.sh targets 4096 2>&1 | tail -16
  timeout 150 python3 probes/p21.py 2>&1 | tail -26
  timeout 150 python3 probes/p19.py persist 2>&1 | tail -60
elif [ "$1" = v24 ]; then
  # v24's float32 wgmma consumers (<= 350 s): their GPU tests, p22 (their timings against
  # mma.sync), the bench with them on; then (next call) CUPY_BSPARSE_F32_WGMMA=1 ... suite
  timeout 120 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider -k f32_consumers \
    > "$out/f32w_tests.log" 2>&1; rc=$?; tail -3 "$out/f32w_tests.log"
  [ $rc -eq 0 ] || grep -E "^(FAILED|E  )" "$out/f32w_tests.log" | head -20
  timeout 130 python3 probes/p22.py 2>&1 | tail -8
  CUPY_BSPARSE_F32_WGMMA=1 timeout 100 python3 -m cupy_bsparse bench --m 64 --dtype float32 \
    --blocksize 16 32 --baselines dense --out "$out/v24_f32w" 2>&1 | grep -v "^\[" | tail -8
elif [ "$1" = v25 ]; then
  # v25's first measurements (<= 330 s): where a step of the float32 wgmma consumers goes (p19
  # f32w), then float32 bs 32 at odd M and non-square W on the v24 defaults
  timeout 200 python3 probes/p19.py f32w 2>&1 | tail -40
  timeout 120 python3 -m cupy_bsparse bench --m 33 63 --c 8192 --k 4096 --dtype float32 \
    --blocksize 32 --baselines dense --out "$out/v25_f32_odd" 2>&1 | grep -v "^\[" | tail -8
elif [ "$1" = v22b ]; then
  # float32 wgrad at M = 4096 in launches of SDDMM_M_CHUNK rows (opt-in): its GPU test, then the
  # bench without and with chunks of 256 / 512 / 1024 rows
  timeout 60 python3 -m pytest tests/test_gpu_kernels.py -q -p no:cacheprovider \
    -k test_sddmm_tall_m_chunks 2>&1 | tail -1
  for c in "" 256 512 1024; do
    echo "== CUPY_BSPARSE_SDDMM_M_CHUNK=$c"
    CUPY_BSPARSE_SDDMM_M_CHUNK=$c timeout 100 python3 -m cupy_bsparse bench --dtype float32 \
      --m 4096 --blocksize 16 64 --op fprop wgrad --baselines dense --out "$out/v22b_$c" 2>&1 \
      | grep -v "^\[" | tail -6
  done
elif [ "$1" = v21short ]; then
  # little device time: the two fixed tests, the float32 tests (the new split defaults), the
  # grouped and stream plans (the new item weight and column cap), then the M = 64 table
  t="tests/test_gpu_kernels.py"
  timeout 100 python3 -c "from cupy_bsparse import compiler, _gpu_ops, _specs; compiler.warm_cache(_specs.device_specializations(_gpu_ops._arch(0)))"
  timeout 40 python3 -m pytest -q -p no:cacheprovider "$t::test_split_tf32_planes" \
    "$t::test_sddmm[8-f32-4096-0.01]" 2>&1 | tail -1
  CUPY_BSPARSE_GPU_SUBSET=small timeout 150 python3 -m pytest $t -q -p no:cacheprovider \
    -k "f32 or grouped or stream" 2>&1 \
    | tee "$out/gpu_tests_v21.log" | grep -E "passed|failed|Error" | tail -3
  timeout 100 bash probes/next.sh targets 64 2>&1 | tail -16
elif [ "$1" = targets ]; then
  # one bench per dtype, so a timeout loses one dtype's rows, not the table; C and K (both or
  # neither) for the issue's non-square and odd-M rows, e.g. `targets 4095 random 8192 4096`
  # and `targets 63 random 16384 8192` (targets.py gives them their regime's targets)
  M=${2:-64}; L=${3:-random}; CK=${4:+--c $4 --k $5}
  for dt in float16 bfloat16 float32; do
    # shellcheck disable=SC2086
    timeout 180 python3 -m cupy_bsparse bench --m $M --layout $L --dtype $dt --baselines dense $CK \
      --out "$out/targets_M${M}_${L}${4:+_$4x$5}_$dt" 2>&1 | grep -v "^\[" | tail -3
  done
  python3 probes/targets.py "$out"/targets_M${M}_${L}${4:+_$4x$5}_*.json
elif [ "$1" = v17c ]; then
  # the GPU suite's tests in two parts, the grouped-plan ones first (a short device budget)
  python3 -c "from cupy_bsparse import compiler, _gpu_ops, _specs; compiler.warm_cache(_specs.device_specializations(_gpu_ops._arch(0)))"
  python3 -m pytest tests -m gpu -q -p no:cacheprovider -k "grouped or xWT" 2>&1 | tee "$out/gpu_tests_1.log" | tail -2
  python3 -m pytest tests -m gpu -q -p no:cacheprovider -k "not (grouped or xWT)" 2>&1 | tee "$out/gpu_tests_2.log" | tail -2
elif [ "$1" = layouts ]; then
  for L in barabasi_albert small_world; do
    timeout 280 python3 -m cupy_bsparse bench --layout $L --dtype float16 bfloat16 --m 4096 \
      --blocksize 8 16 32 --baselines dense --out "$out/layout_$L" 2>&1 | grep -v "^\[" | tail -22
  done
elif [ "$1" = ncu ]; then
  bash probes/ncu_rows.sh
elif [ "$1" = breakeven ]; then
  M=${2:-64}   # C = K: the bench default for M (16384 at M <= 256, else 8192)
  for bs in 8 16 32 64; do
    timeout 140 python3 -m cupy_bsparse bench --op fprop --dtype float16 float32 --m $M --blocksize $bs \
      --density 0.01 0.02 0.05 0.1 0.2 0.4 0.7 --baselines dense --repeat 10 --warmup 2 \
      --out "$out/breakeven_M${M}_bs${bs}" 2>&1 | grep -v "^\[" | tail -24
  done
else
  echo "usage: bash probes/next.sh A|B|C|suite|v17|v17b|v17c|v18|v18b|v19|v20|v21|v21b|v21short|targets M [L]|layouts|ncu|breakeven M" >&2; exit 2
fi
# $OUT brings back at most 8 files: keep the logs and the bench JSON (tables and plots can be
# made again from it: bench.format_table, bench.plot)
rm -f "$out"/*.csv "$out"/*.png
