"""The host cost of float32 bs 8 wgrad's unit tables on this machine (v54): two_way_units
(``_forest_pairs``) and pair_units + unit_offsets, on the random layout at d 0.1, C = K = 8192
(104,858 blocks) and C = K = 16384 (419,430), numpy, best of 3, with the unit counts.

    PYTHONPATH=. python3 probes/walk_cost.py
"""
import time

import numpy as np
import scipy.sparse as sp

from cupy_bsparse import _specs, _work_lists, layouts


def best(fn):
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3, out


for nb, M in ((1024, 4096), (2048, 64)):
    csr = sp.csr_matrix(layouts.random(nb, nb, 0.1, seed=1))
    p = dict(_specs.sddmm_grouped_spec(8, 0, M, two_way=True))
    items, gent, _ = _work_lists.sddmm_group_table(csr.indptr.astype(np.int32),
                                                    csr.indices.astype(np.int32),
                                                    p["R"], p["NCX"], p["NBLK"], np)
    t2, (_, u2) = best(lambda: _work_lists.two_way_units(items, gent, p["NCX"], 8, 4, np))
    t1, u1 = best(lambda: _work_lists.unit_offsets(_work_lists.pair_units(items, gent, np)[1],
                                                   8, 4, np))
    print(f"{csr.nnz} blocks (M {M} spec): two_way_units {t2:.0f} ms "
          f"({t2 / csr.nnz * 1e3:.2f} us a block), {len(u2)} units; pair_units + "
          f"unit_offsets {t1:.0f} ms, {len(u1)} units")
