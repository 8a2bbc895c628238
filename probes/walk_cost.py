"""The host cost of float32 bs 8 wgrad's unit tables on this machine (v54): two_way_units by
the walk and by the two vectorised passes, and pair_units + unit_offsets, on the random
layout at d 0.1, C = K = 8192 (104,858 blocks), numpy; best of 3.

    PYTHONPATH=. python3 probes/walk_cost.py
"""
import time

import numpy as np
import scipy.sparse as sp

from cupy_bsparse import _specs, _work_lists, layouts

csr = sp.csr_matrix(layouts.random(1024, 1024, 0.1, seed=1))
p = dict(_specs.sddmm_grouped_spec(8, 0, 4096, two_way=True))
items, gent, _ = _work_lists.sddmm_group_table(csr.indptr.astype(np.int32),
                                                csr.indices.astype(np.int32),
                                                p["R"], p["NCX"], p["NBLK"], np)


def best(fn):
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3


walk = best(lambda: _work_lists.two_way_units(items, gent, p["NCX"], 8, 4, np, walk=True))
passes = best(lambda: _work_lists.two_way_units(items, gent, p["NCX"], 8, 4, np, walk=False))
pairs = best(lambda: _work_lists.unit_offsets(_work_lists.pair_units(items, gent, np)[1], 8, 4,
                                              np))
print(f"{csr.nnz} blocks: walk {walk:.0f} ms ({walk / csr.nnz * 1e3:.2f} us a block), "
      f"passes {passes:.0f} ms, pair_units + unit_offsets {pairs:.0f} ms")
