"""What float32 bs 8 wgrad's items load per block, by layout (v54, CPU only): the bench's
masks at C = K = 8192 (1024 block-rows, d 0.1), sddmm_grouped.cu's default spec at M = 4096
(R 64 dy columns a group, NCX 32 x slots, NBLK 256), units from two_way_units. An item
stages all R dy column tiles of its group and its used x slots, so tiles / block measures the
load side; unit rounds (ceil(units / NW)) the compute side.

    PYTHONPATH=. python3 probes/item_loads.py
"""
import numpy as np
import scipy.sparse as sp

from cupy_bsparse import _specs, _work_lists, bench

p = dict(_specs.sddmm_grouped_spec(8, 0, 4096))
for kind in ("random", "barabasi_albert", "small_world"):
    csr = sp.csr_matrix(bench.make_mask(kind, 1024, 1024, 0.1, seed=0))
    items, gent, _ = _work_lists.sddmm_group_table(csr.indptr.astype(np.int32),
                                                    csr.indices.astype(np.int32),
                                                    p["R"], p["NCX"], p["NBLK"], np)
    it2, units = _work_lists.two_way_units(items, gent, p["NCX"], 8, 4, np)
    blocks = items[:, 2] - items[:, 1]
    col = gent[:, 1] & 0xFFFF
    used = np.array([np.unique(col[a:b]).size for a, b in items[:, 1:3]])
    tiles = int((p["R"] + items[:, 3]).sum())
    rounds = int(np.ceil((it2[:, 2] - it2[:, 1]) / p["NW"]).sum())
    print(f"{kind}: {csr.nnz} blocks, {len(items)} items, {len(units)} units, {rounds} rounds "
          f"({rounds / csr.nnz * 1e3:.1f} per 1000 blocks); tiles staged {tiles} "
          f"({tiles / csr.nnz:.3f} a block); an item's dy columns used {used.mean():.1f} of "
          f"{p['R']}, x slots {items[:, 3].mean():.1f}; blocks an item mean {blocks.mean():.0f}, "
          f"p10 {np.percentile(blocks, 10):.0f}, p90 {np.percentile(blocks, 90):.0f}")
