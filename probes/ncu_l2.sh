# ncu's L2 and shared-memory counters on the 16-bit bs 32 x @ W at M = 4096 (the queue's set)
# and on p32's copy-only kernel at the same bytes in flight (1 CTA an SM, 6 stages of 32 KB,
# 64-byte rows): what the kernel's 6.4 TB/s of tiles and the copies' 7.8 TB/s load in the L2
# (perf-notes v34). OPS (fprop bprop wgrad), DTYPES and BS pick the products (fprop, fp16 and
# bf16, bs 32 unless set); M and C (4096 and 8192 unless set) the shape; KNOBS (p12.py) #defines
# for every dsd_stream.cu spec and TAG a suffix for the case's name; COPIES=0 skips the copies.
# Writes $OUT/ncu_l2/<case>.csv and prints the named counters.
export PYTHONPATH=.:probes PYTHONUNBUFFERED=1
out=${OUT:-gpu_out}/ncu_l2; mkdir -p "$out"
MET=gpu__time_duration.sum,lts__t_sector_hit_rate.pct,lts__t_sectors.sum,lts__t_sectors_srcunit_tex.sum,lts__t_sectors_srcunit_ltcfabric.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_lookup_hit.sum,lts__t_sectors_srcunit_tex_lookup_miss.sum,lts__t_requests_srcunit_tex_op_read.sum,lts__t_requests_srcunit_tex_op_write.sum,lts__t_sectors_srcunit_tex_op_write.sum,l1tex__m_xbar2l1tex_read_bytes.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,smsp__inst_executed.sum,sm__cycles_elapsed.avg,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,launch__grid_size,launch__block_size,breakdown:lts__throughput.avg.pct_of_peak_sustained_elapsed,breakdown:l1tex__throughput.avg.pct_of_peak_sustained_active
run() {  # name, kernel filter, command...
  local n=$1 k=$2; shift 2
  timeout 150 ncu --clock-control none --cache-control none -k $k --launch-skip 2 --launch-count 1 \
    --metrics $MET --csv --page raw "$@" > "$out/$n.csv" 2> "$out/$n.err"
  echo "== $n rc=$?"; grep -E "ERR|rror" "$out/$n.err" | head -3
  python3 probes/ncu_summary.py --all "$out/$n.csv"
}
for op in ${OPS:-fprop}; do
  for dt in ${DTYPES:-float16 bfloat16}; do
    CASE=$op,$dt,${BS:-32},${M:-4096},${C:-8192} run ${op}_${dt}_bs${BS:-32}_m${M:-4096}${TAG} \
      regex:bsmm_ python3 probes/p12.py
  done
done
[ "${COPIES:-1}" = 0 ] && exit 0
run copies tma_rate python3 -c "
import cupy, p32
x = cupy.ones((4096, 2048), dtype=cupy.float16)
print(p32.rate(x, 64, 256, 2, 6, 1))"
