# ncu on the issue-4 rows that docs/benchmarks.md lists with no measured bound (v14 plan).
# Writes $OUT/ncu/<case>.csv (details page, raw metrics) and prints a summary per case.
# LAYOUT (default random) picks p12.py's layout; KREGEX (default bsmm_) the kernels profiled
# (bsmm_dsd: not float32's split_tf32.cu launch before a dsd_grouped_tma.cu one).
export PYTHONPATH=. PYTHONUNBUFFERED=1
out=${OUT:-gpu_out}/ncu; mkdir -p "$out"
MET=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__m_xbar2l1tex_read_bytes.sum,dram__bytes_read.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__warps_active.avg.per_cycle_active,smsp__warps_eligible.avg.per_cycle_active,sm__cycles_active.avg,sm__cycles_elapsed.avg,launch__registers_per_thread,launch__grid_size,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed.sum
CASES=${CASES:-"fprop,float16,8,64,16384 fprop,float16,16,64,16384 fprop,float16,32,64,16384 wgrad,float16,8,64,16384 wgrad,float16,16,64,16384 wgrad,float16,32,64,16384 wgrad,float16,64,64,16384 wgrad,float16,64,4096,8192 fprop,float32,16,64,16384 fprop,float32,32,64,16384 bprop,float32,16,64,16384 fprop,float32,8,64,16384 fprop,float32,8,4096,8192 wgrad,float32,32,4096,8192 fprop,bfloat16,64,64,16384"}
for c in $CASES; do
  f="$out/${LAYOUT:-random}_${c//,/_}"
  CASE=$c timeout 120 ncu --clock-control none -k regex:${KREGEX:-bsmm_} --launch-skip 2 --launch-count 1 \
    --section WarpStateStats --metrics $MET --csv --page raw python3 probes/p12.py > "$f.csv" 2> "$f.err"
  echo "== $c rc=$?"; grep -E "ERR|rror" "$f.err" | head -3
done
python3 probes/ncu_summary.py "$out"
