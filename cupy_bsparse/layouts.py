"""Layout generators (bool block masks) and layout statistics.

A *mask* is a 2-D numpy ``bool`` array of shape ``(n_block_rows, n_block_cols)``; ``mask[i, j]``
is True when block ``(i, j)`` is stored. Every generator returns a fresh C-contiguous mask.

For the graph-shaped layouts (``small_world``, ``barabasi_albert``) and the path statistics, the
mask is the adjacency matrix of a graph on ``n`` units (one unit per block-row and block-column):
``mask[i, j]`` is a directed edge ``i -> j``. This is the direction information flows in
``y = x @ W`` (block-row ``i`` of ``W`` reads input unit ``i``, block-column ``j`` writes output
unit ``j``), so ``propagation_steps`` counts how many applications of ``W`` it takes until every
unit has influenced every unit.

Generators take ``seed``: an ``int``, ``None`` (fresh OS entropy) or a ``np.random.Generator``
(used, and advanced, in place). The same int seed always gives the same mask.

Everything here is pure numpy/scipy and runs on the CPU; build a ``BlockLayout`` from the mask to
use it on the GPU.
"""

import math
import numbers

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from ._arrays import check_int, to_host
from .block_layout import _as_bool_mask

__all__ = [
    "random",
    "balanced",
    "small_world",
    "barabasi_albert",
    "block_diagonal",
    "density",
    "degree_stats",
    "propagation_steps",
    "average_path_length",
    "clustering_coefficient",
]

# Sources per all-pairs shortest-path call: bounds the float64 distance buffer to
# _PATH_CHUNK * n entries, so statistics on 10^4-unit graphs stay in tens of MB.
_PATH_CHUNK = 256


# ---------------------------------------------------------------------------------------------
# argument validation


def _check_fraction(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be an int, None or a numpy.random.Generator, got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng(int(seed))


def _check_diagonal(diagonal, n_block_rows, n_block_cols):
    diagonal = _check_bool("diagonal", diagonal)
    if diagonal and n_block_rows != n_block_cols:
        raise ValueError(
            f"diagonal=True needs a square block grid, got {n_block_rows} x {n_block_cols}"
        )
    return diagonal


def _as_mask(mask, *, square=False):
    """Return ``mask`` (numpy, cupy, list or BlockLayout) as a 2-D numpy bool array.

    Checked like ``BlockLayout.from_mask`` (nonzero = stored block, NaN rejected), and the grid
    must not be empty. Statistics are computed on the host: a cupy mask is copied back.
    """
    mask = _as_bool_mask(to_host(mask))  # synchronize (a cupy mask)
    if mask.shape[0] == 0 or mask.shape[1] == 0:
        raise ValueError(f"mask must have at least one block-row and block-column, got {mask.shape}")
    if square and mask.shape[0] != mask.shape[1]:
        raise ValueError(f"mask must be square (a graph on n units), got shape {mask.shape}")
    return mask


# ---------------------------------------------------------------------------------------------
# generators


def random(n_block_rows, n_block_cols, density=None, *, nnzb=None, seed=None, diagonal=False):
    """Uniform random mask with an exact number of blocks.

    Exactly one of ``density`` (a fraction in [0, 1]; the count is
    ``round(density * n_block_rows * n_block_cols)``, Python rounding) and ``nnzb`` (the count
    itself) must be given. Every set of that many positions is equally likely. With
    ``diagonal=True`` (square grids only) the diagonal is always stored and counts towards the
    total; the remaining blocks are drawn uniformly from the off-diagonal positions.

    Returns: ``(n_block_rows, n_block_cols)`` bool array with exactly that many True entries.
    Raises: ``TypeError``/``ValueError`` naming the bad argument, including a count larger than
    the grid or, with ``diagonal=True``, smaller than ``n_block_rows``.
    """
    n_block_rows = check_int(n_block_rows, "n_block_rows", 1)
    n_block_cols = check_int(n_block_cols, "n_block_cols", 1)
    diagonal = _check_diagonal(diagonal, n_block_rows, n_block_cols)
    total = n_block_rows * n_block_cols
    if (density is None) == (nnzb is None):
        raise ValueError("give exactly one of density and nnzb")
    if density is not None:
        count = round(_check_fraction("density", density) * total)
    else:
        count = check_int(nnzb, "nnzb", 0)
        if count > total:
            raise ValueError(
                f"nnzb={count} exceeds the {n_block_rows} x {n_block_cols} = {total} block grid"
            )
    rng = _rng(seed)
    mask = np.zeros((n_block_rows, n_block_cols), dtype=bool)
    if not diagonal:
        mask.ravel()[rng.choice(total, size=count, replace=False)] = True
        return mask
    n = n_block_rows
    if count < n:
        raise ValueError(
            f"diagonal=True stores the {n} diagonal blocks, but the requested count is {count}"
        )
    # Off-diagonal slot j lies in row j // (n-1), at column j % (n-1) shifted past the diagonal.
    slots = rng.choice(n * (n - 1), size=count - n, replace=False)
    rows, cols = np.divmod(slots, max(n - 1, 1))
    cols += cols >= rows
    mask[rows, cols] = True
    np.fill_diagonal(mask, True)
    return mask


def balanced(n_block_rows, n_block_cols, density, *, seed=None, diagonal=False):
    """Random mask with the same number of blocks in every block-column.

    Each block-column independently gets ``k = round(density * n_block_rows)`` blocks at
    uniformly random block-rows, so every output block-column of ``x @ W`` does the same work
    (block-row counts are not balanced). With ``diagonal=True`` (square only) block ``(j, j)`` is
    one of the ``k`` blocks of column ``j``; ``k`` must then be at least 1.

    Returns: ``(n_block_rows, n_block_cols)`` bool array, ``k`` True entries per column.
    Raises: ``TypeError``/``ValueError`` naming the bad argument.
    """
    n_block_rows = check_int(n_block_rows, "n_block_rows", 1)
    n_block_cols = check_int(n_block_cols, "n_block_cols", 1)
    k = round(_check_fraction("density", density) * n_block_rows)
    diagonal = _check_diagonal(diagonal, n_block_rows, n_block_cols)
    if diagonal and k < 1:
        raise ValueError(
            f"diagonal=True needs at least one block per column, but density={density} gives "
            f"round({density} * {n_block_rows}) = 0"
        )
    rng = _rng(seed)
    keys = rng.random((n_block_rows, n_block_cols))
    if diagonal:
        np.fill_diagonal(keys, -1.0)  # below every uniform key: always among the k smallest
    mask = np.zeros((n_block_rows, n_block_cols), dtype=bool)
    if k == n_block_rows:
        mask[:] = True
    elif k > 0:
        rows = np.argpartition(keys, k - 1, axis=0)[:k]
        np.put_along_axis(mask, rows, True, axis=0)
    return mask


def small_world(n, degree, rewire_p, *, seed=None, diagonal=False, symmetric=True):
    """Watts-Strogatz small-world mask on ``n`` units.

    Start from a ring lattice in which every unit is joined to its ``degree`` nearest
    neighbours (``degree // 2`` on each side), then visit the lattice edges (all units at ring
    offset 1, then offset 2, ...) and, with probability ``rewire_p``, move the far end of each to
    a uniformly random unit that is neither the unit itself nor already joined to it. A unit
    already joined to all others keeps its edge. ``rewire_p = 0`` is the lattice; ``rewire_p = 1``
    is close to a random graph; around 0.01-0.1 path lengths collapse to those of a random graph
    while the lattice's clustering largely survives.

    ``symmetric=True`` (default): undirected edges, the mask is symmetric, every unit keeps
    ``degree`` on average. ``symmetric=False``: each of the ``n * degree`` directed lattice edges
    ``i -> j`` is rewired on its own (its target moves); out-degrees stay exactly ``degree``.
    ``diagonal=True`` also stores every ``(i, i)`` block (self connections); rewiring never
    creates them.

    Returns: ``(n, n)`` bool array.
    Raises: ``TypeError``/``ValueError`` naming the bad argument (``degree`` must be even and
    ``< n``).
    """
    n = check_int(n, "n", 1)
    degree = check_int(degree, "degree", 0)
    if degree % 2:
        raise ValueError(f"degree must be even (degree // 2 neighbours per side), got {degree}")
    if degree >= n:
        raise ValueError(f"degree must be < n (no self loops or duplicates), got {degree} >= {n}")
    rewire_p = _check_fraction("rewire_p", rewire_p)
    diagonal = _check_bool("diagonal", diagonal)
    symmetric = _check_bool("symmetric", symmetric)
    rng = _rng(seed)

    half = degree // 2
    offsets = np.arange(1, half + 1)
    if symmetric:
        src = np.tile(np.arange(n), half)
        dst = (src + np.repeat(offsets, n)) % n
    else:
        signed = np.concatenate([offsets, -offsets])
        src = np.tile(np.arange(n), 2 * half)
        dst = (src + np.repeat(signed, n)) % n
    mask = np.zeros((n, n), dtype=bool)
    mask[src, dst] = True
    if symmetric:
        mask[dst, src] = True

    # Each rewiring depends on the edges present at that moment, so it stays a loop; the coin
    # flips are drawn up front and only the ~rewire_p fraction of edges that move is visited.
    out_degree = mask.sum(axis=1)
    for e in np.flatnonzero(rng.random(src.size) < rewire_p):
        u, v = int(src[e]), int(dst[e])
        if out_degree[u] >= n - 1:
            continue
        while True:
            w = int(rng.integers(n))
            if w != u and not mask[u, w]:
                break
        mask[u, v] = False
        mask[u, w] = True
        if symmetric:
            mask[v, u] = False
            mask[w, u] = True
            out_degree[v] -= 1
            out_degree[w] += 1
    if diagonal:
        np.fill_diagonal(mask, True)
    return mask


def barabasi_albert(n, m, *, seed=None, diagonal=False):
    """Barabasi-Albert preferential-attachment mask on ``n`` units (symmetric).

    Units ``0 .. m-1`` start unconnected; unit ``m`` joins all of them; every later unit joins
    ``m`` distinct earlier units, each picked with probability proportional to its current
    degree. The result is connected, has ``m * (n - m)`` undirected edges, and a heavy-tailed
    (power-law) degree distribution: a few hub units whose block-columns hold far more blocks
    than the mean. That imbalance is the point of this layout (load-balancing tests).

    Returns: ``(n, n)`` symmetric bool array; ``diagonal=True`` also stores every ``(i, i)``.
    Raises: ``TypeError``/``ValueError`` naming the bad argument (needs ``1 <= m < n``).
    """
    n = check_int(n, "n", 2)
    m = check_int(m, "m", 1)
    if m >= n:
        raise ValueError(f"m must be < n, got m={m}, n={n}")
    diagonal = _check_bool("diagonal", diagonal)
    rng = _rng(seed)

    n_edges = m * (n - m)
    src = np.repeat(np.arange(m, n), m)
    dst = np.empty(n_edges, dtype=np.int64)
    # Every edge end is listed once here, so a uniform pick from it is a degree-weighted pick.
    ends = np.empty(2 * n_edges, dtype=np.int64)
    n_ends = 0
    targets = np.arange(m)
    for t, source in enumerate(range(m, n)):
        dst[t * m:(t + 1) * m] = targets
        ends[n_ends:n_ends + m] = targets
        ends[n_ends + m:n_ends + 2 * m] = source
        n_ends += 2 * m
        if source + 1 == n:
            break
        picked = []
        seen = set()
        while len(picked) < m:
            for node in ends[rng.integers(n_ends, size=m - len(picked))].tolist():
                if node not in seen:
                    seen.add(node)
                    picked.append(node)
        targets = np.asarray(picked[:m])
    mask = np.zeros((n, n), dtype=bool)
    mask[src, dst] = True
    mask[dst, src] = True
    if diagonal:
        np.fill_diagonal(mask, True)
    return mask


def block_diagonal(n_block_rows, n_block_cols=None, *, width=1):
    """Block-diagonal mask: dense ``width x width`` tiles of blocks along the main diagonal.

    ``mask[i, j]`` is True when ``i // width == j // width``. ``width=1`` is the plain diagonal.
    The last tile is cut short when ``width`` does not divide the grid; on a rectangular grid the
    rows or columns past the last tile of the shorter side stay empty. ``n_block_cols`` defaults
    to ``n_block_rows``. Deterministic (no seed).

    Returns: ``(n_block_rows, n_block_cols)`` bool array.
    Raises: ``TypeError``/``ValueError`` naming the bad argument.
    """
    n_block_rows = check_int(n_block_rows, "n_block_rows", 1)
    if n_block_cols is None:
        n_block_cols = n_block_rows
    n_block_cols = check_int(n_block_cols, "n_block_cols", 1)
    width = check_int(width, "width", 1)
    rows = np.arange(n_block_rows)[:, None] // width
    cols = np.arange(n_block_cols)[None, :] // width
    return rows == cols


# ---------------------------------------------------------------------------------------------
# statistics


def density(mask):
    """Fraction of stored blocks: ``mask.sum() / mask.size`` as a Python float."""
    mask = _as_mask(mask)
    return float(np.count_nonzero(mask)) / mask.size


def degree_stats(mask):
    """Blocks per block-row and per block-column.

    Returns: dict of Python numbers with keys ``nnzb``, ``row_min``, ``row_max``, ``row_mean``,
    ``row_std``, ``col_min``, ``col_max``, ``col_mean``, ``col_std`` (population std), and
    ``empty_rows``, ``empty_cols`` (how many block-rows / block-columns store nothing).
    """
    mask = _as_mask(mask)
    stats = {"nnzb": int(np.count_nonzero(mask))}
    for name, counts in (("row", mask.sum(axis=1)), ("col", mask.sum(axis=0))):
        stats[f"{name}_min"] = int(counts.min())
        stats[f"{name}_max"] = int(counts.max())
        stats[f"{name}_mean"] = float(counts.mean())
        stats[f"{name}_std"] = float(counts.std())
    stats["empty_rows"] = int(np.count_nonzero(~mask.any(axis=1)))
    stats["empty_cols"] = int(np.count_nonzero(~mask.any(axis=0)))
    return stats


def _distance_chunks(mask):
    """Yield unweighted directed shortest-path distances, ``_PATH_CHUNK`` source rows at a time.

    Each chunk is ``(sources, n)`` float64 with ``inf`` for unreachable pairs and 0 on the
    source's own column.
    """
    graph = scipy.sparse.csr_array(mask)
    n = mask.shape[0]
    for start in range(0, n, _PATH_CHUNK):
        sources = np.arange(start, min(start + _PATH_CHUNK, n))
        yield sources, scipy.sparse.csgraph.shortest_path(
            graph, method="D", directed=True, unweighted=True, indices=sources
        )


def propagation_steps(mask):
    """Steps until information from every unit has reached every unit through ``mask``.

    ``mask`` is a square directed adjacency (``mask[i, j]``: one step carries unit ``i`` to unit
    ``j``). Returns the smallest ``s`` such that every unit reaches every unit within ``s``
    steps, i.e. the directed diameter (largest BFS eccentricity over all sources), as an int;
    ``0`` for a single unit; ``math.inf`` when some unit can never reach some other unit.
    The diagonal (self connections) does not change the result.
    Raises: ``ValueError`` if ``mask`` is not square.
    """
    mask = _as_mask(mask, square=True)
    worst = 0.0
    for _, dist in _distance_chunks(mask):
        worst = max(worst, float(dist.max()))
        if math.isinf(worst):
            return math.inf
    return int(worst)


def average_path_length(mask):
    """Mean directed shortest-path length over ordered pairs ``(i, j)``, ``i != j``, that are
    connected (unreachable pairs are left out). Returns a Python float, ``math.nan`` when no
    pair is connected. Raises: ``ValueError`` if ``mask`` is not square.
    """
    mask = _as_mask(mask, square=True)
    total = 0.0
    pairs = 0
    for sources, dist in _distance_chunks(mask):
        dist[np.arange(sources.size), sources] = np.inf  # leave out i == j
        finite = np.isfinite(dist)
        total += float(dist[finite].sum())
        pairs += int(np.count_nonzero(finite))
    return total / pairs if pairs else math.nan


def clustering_coefficient(mask):
    """Average local clustering coefficient of the undirected graph ``mask | mask.T``.

    For unit ``i`` with ``k_i >= 2`` neighbours (self connections ignored) the local
    coefficient is the fraction of the ``k_i (k_i - 1) / 2`` neighbour pairs that are joined;
    units with fewer than two neighbours count as 0 (the networkx convention). A ring lattice
    of degree ``k`` has ``3 (k - 2) / (4 (k - 1))``; a random graph of the same density about
    ``k / n``. Returns a Python float. Raises: ``ValueError`` if ``mask`` is not square.
    """
    mask = _as_mask(mask, square=True)
    undirected = mask | mask.T
    np.fill_diagonal(undirected, False)
    adj = scipy.sparse.csr_array(undirected, dtype=np.float64)
    k = np.asarray(adj.sum(axis=1)).ravel()
    # (A @ A)[i, j] * A[i, j] summed over j counts each triangle through i twice.
    triangles = np.asarray((adj @ adj).multiply(adj).sum(axis=1)).ravel() / 2
    pairs = k * (k - 1) / 2
    local = np.divide(triangles, pairs, out=np.zeros_like(triangles), where=pairs > 0)
    return float(local.mean())
