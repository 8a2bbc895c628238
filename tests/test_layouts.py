import math

import numpy as np
import pytest

from cupy_bsparse import layouts


def ring_lattice(n, degree):
    """The Watts-Strogatz starting lattice, written independently of the generator."""
    i, j = np.indices((n, n))
    ring = np.minimum(np.abs(i - j), n - np.abs(i - j))
    return (ring >= 1) & (ring <= degree // 2)


def directed_cycle(n):
    mask = np.zeros((n, n), dtype=bool)
    mask[np.arange(n), (np.arange(n) + 1) % n] = True
    return mask


# ---------------------------------------------------------------------------------------------
# random


@pytest.mark.parametrize(
    "rows, cols, dens",
    [(1, 1, 0.0), (1, 1, 1.0), (7, 5, 0.0), (7, 5, 0.3), (7, 5, 1.0), (64, 32, 0.1), (33, 1, 0.5)],
)
def test_random_density_gives_exact_count(rows, cols, dens):
    mask = layouts.random(rows, cols, dens, seed=0)
    assert mask.shape == (rows, cols)
    assert mask.dtype == np.bool_
    assert mask.sum() == round(dens * rows * cols)


@pytest.mark.parametrize("nnzb", [0, 1, 17, 50])
def test_random_nnzb_gives_exact_count(nnzb):
    assert layouts.random(5, 10, nnzb=nnzb, seed=3).sum() == nnzb


def test_random_diagonal_is_forced_and_counted():
    for seed in range(5):
        mask = layouts.random(12, 12, nnzb=20, seed=seed, diagonal=True)
        assert mask.diagonal().all()
        assert mask.sum() == 20
    assert layouts.random(6, 6, nnzb=6, seed=0, diagonal=True).sum() == 6
    assert np.array_equal(layouts.random(6, 6, nnzb=6, seed=0, diagonal=True), np.eye(6, dtype=bool))
    assert layouts.random(6, 6, 1.0, seed=0, diagonal=True).all()
    assert layouts.random(1, 1, nnzb=1, diagonal=True).all()


def test_random_diagonal_draws_every_off_diagonal_slot_uniformly():
    # One free block per draw among the 12 off-diagonal slots of a 4x4 grid: 2400 draws give
    # ~200 hits per slot (std ~14); a slot mapping bug leaves slots at 0 or doubles others.
    rng = np.random.default_rng(0)
    hits = sum(
        layouts.random(4, 4, nnzb=5, seed=rng, diagonal=True).astype(int) for _ in range(2400)
    )
    off = hits[~np.eye(4, dtype=bool)]
    assert off.sum() == 2400
    assert off.min() > 140 and off.max() < 260


def test_random_is_uniform_over_positions():
    rng = np.random.default_rng(1)
    hits = sum(layouts.random(3, 4, nnzb=3, seed=rng).astype(int) for _ in range(2400))
    assert hits.sum() == 3 * 2400
    assert hits.min() > 500 and hits.max() < 700  # expected 600 each, std ~23


def test_random_argument_errors():
    with pytest.raises(ValueError, match="exactly one"):
        layouts.random(4, 4)
    with pytest.raises(ValueError, match="exactly one"):
        layouts.random(4, 4, 0.5, nnzb=8)
    with pytest.raises(ValueError, match="nnzb"):
        layouts.random(4, 4, nnzb=17)
    with pytest.raises(ValueError, match="nnzb"):
        layouts.random(4, 4, nnzb=-1)
    with pytest.raises(TypeError, match="nnzb"):
        layouts.random(4, 4, nnzb=3.0)
    with pytest.raises(TypeError, match="n_block_rows must be an int, got bool"):
        layouts.random(True, 4, 0.5)
    with pytest.raises(ValueError, match="density"):
        layouts.random(4, 4, 1.5)
    with pytest.raises(ValueError, match="density"):
        layouts.random(4, 4, float("nan"))
    with pytest.raises(TypeError, match="density"):
        layouts.random(4, 4, "0.5")
    with pytest.raises(ValueError, match="diagonal"):
        layouts.random(4, 4, nnzb=3, diagonal=True)
    with pytest.raises(ValueError, match="square"):
        layouts.random(4, 5, 0.5, diagonal=True)
    with pytest.raises(TypeError, match="diagonal"):
        layouts.random(4, 4, 0.5, diagonal=1)


# ---------------------------------------------------------------------------------------------
# balanced


@pytest.mark.parametrize("rows, cols, dens", [(16, 8, 0.25), (10, 30, 0.35), (5, 5, 0.0), (5, 5, 1.0)])
def test_balanced_every_column_has_the_same_count(rows, cols, dens):
    mask = layouts.balanced(rows, cols, dens, seed=0)
    assert mask.shape == (rows, cols)
    assert np.all(mask.sum(axis=0) == round(dens * rows))


def test_balanced_rows_are_random_not_banded():
    mask = layouts.balanced(64, 64, 0.125, seed=0)
    stats = layouts.degree_stats(mask)
    assert stats["col_std"] == 0
    assert stats["row_std"] > 1  # a deterministic band or stripe would give 0
    assert not np.array_equal(mask, layouts.balanced(64, 64, 0.125, seed=1))


def test_balanced_diagonal():
    for seed in range(5):
        mask = layouts.balanced(12, 12, 0.25, seed=seed, diagonal=True)
        assert mask.diagonal().all()
        assert np.all(mask.sum(axis=0) == 3)
    assert np.array_equal(layouts.balanced(8, 8, 0.125, seed=0, diagonal=True), np.eye(8, dtype=bool))
    with pytest.raises(ValueError, match="at least one"):
        layouts.balanced(8, 8, 0.05, diagonal=True)
    with pytest.raises(ValueError, match="square"):
        layouts.balanced(8, 9, 0.5, diagonal=True)


# ---------------------------------------------------------------------------------------------
# seeds


SEEDED = [
    lambda seed: layouts.random(20, 20, 0.2, seed=seed),
    lambda seed: layouts.balanced(20, 20, 0.2, seed=seed),
    lambda seed: layouts.small_world(60, 4, 0.3, seed=seed),
    lambda seed: layouts.small_world(60, 4, 0.3, seed=seed, symmetric=False),
    lambda seed: layouts.barabasi_albert(60, 2, seed=seed),
]


@pytest.mark.parametrize("make", SEEDED)
def test_seed_reproducible_and_seeds_differ(make):
    assert np.array_equal(make(7), make(7))
    assert np.array_equal(make(np.int64(7)), make(7))
    assert not np.array_equal(make(7), make(8))
    rng = np.random.default_rng(7)
    first, second = make(rng), make(rng)  # a Generator is advanced, not reset
    assert not np.array_equal(first, second)
    assert not np.array_equal(make(None), make(None))  # None: fresh entropy each call


@pytest.mark.parametrize("seed, exc", [(1.5, TypeError), ("1", TypeError), (True, TypeError),
                                       (np.random.RandomState(0), TypeError), (-1, ValueError)])
def test_bad_seed(seed, exc):
    with pytest.raises(exc, match="seed"):
        layouts.random(4, 4, 0.5, seed=seed)


# ---------------------------------------------------------------------------------------------
# small_world


@pytest.mark.parametrize("n, degree", [(5, 2), (20, 4), (21, 6), (100, 10), (7, 6), (1, 0)])
def test_small_world_without_rewiring_is_the_ring_lattice(n, degree):
    mask = layouts.small_world(n, degree, 0.0, seed=0)
    assert np.array_equal(mask, ring_lattice(n, degree))
    assert np.array_equal(layouts.small_world(n, degree, 0.0, seed=0, symmetric=False), mask)
    if n > 1:
        # Ring distance n // 2, covered degree // 2 units per step.
        assert layouts.propagation_steps(mask) == math.ceil((n // 2) / (degree // 2))


def test_lattice_propagation_scales_like_n_over_degree():
    mask = layouts.small_world(400, 8, 0.0)
    assert layouts.propagation_steps(mask) == 50
    assert layouts.average_path_length(mask) == pytest.approx(25.5, abs=0.5)


@pytest.mark.parametrize("p", [0.05, 0.3, 1.0])
def test_small_world_symmetric_keeps_edge_count_without_loops(p):
    mask = layouts.small_world(200, 6, p, seed=2)
    assert np.array_equal(mask, mask.T)
    assert not mask.diagonal().any()
    assert mask.sum() == 200 * 6
    assert not np.array_equal(mask, ring_lattice(200, 6))


def test_small_world_directed_keeps_out_degree():
    mask = layouts.small_world(200, 6, 0.3, seed=2, symmetric=False)
    assert not mask.diagonal().any()
    assert np.all(mask.sum(axis=1) == 6)
    assert not np.array_equal(mask, mask.T)
    assert layouts.degree_stats(mask)["col_std"] > 0.5


def test_small_world_fully_connected_cannot_rewire():
    mask = layouts.small_world(7, 6, 1.0, seed=0)
    assert np.array_equal(mask, ~np.eye(7, dtype=bool))


def test_small_world_diagonal():
    mask = layouts.small_world(50, 4, 0.2, seed=1, diagonal=True)
    plain = layouts.small_world(50, 4, 0.2, seed=1)
    assert mask.diagonal().all()
    assert np.array_equal(mask & ~np.eye(50, dtype=bool), plain)
    assert layouts.propagation_steps(mask) == layouts.propagation_steps(plain)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_world_property(seed):
    """Watts & Strogatz 1998: a few shortcuts collapse path lengths to random-graph values
    while clustering stays close to the lattice's."""
    n, k = 500, 10
    lattice = layouts.small_world(n, k, 0.0)
    sw = layouts.small_world(n, k, 0.1, seed=seed)
    rand = layouts.small_world(n, k, 1.0, seed=seed)

    l_lattice, l_sw, l_rand = map(layouts.average_path_length, (lattice, sw, rand))
    c_lattice, c_sw, c_rand = map(layouts.clustering_coefficient, (lattice, sw, rand))
    assert l_lattice == pytest.approx(25.45, abs=0.01)
    assert c_lattice == pytest.approx(3 * (k - 2) / (4 * (k - 1)))
    assert l_sw < 0.2 * l_lattice
    assert l_sw < 1.5 * l_rand
    assert c_sw > 0.6 * c_lattice
    assert c_sw > 10 * c_rand
    assert layouts.propagation_steps(sw) <= 0.2 * layouts.propagation_steps(lattice)
    assert np.all(sw.sum(axis=1) >= 5) and sw.sum() == n * k  # sparse as before


def test_small_world_argument_errors():
    with pytest.raises(ValueError, match="even"):
        layouts.small_world(10, 3, 0.1)
    with pytest.raises(ValueError, match="degree"):
        layouts.small_world(10, 10, 0.1)
    with pytest.raises(ValueError, match="degree"):
        layouts.small_world(10, -2, 0.1)
    with pytest.raises(ValueError, match="rewire_p"):
        layouts.small_world(10, 2, -0.1)
    with pytest.raises(TypeError, match="rewire_p"):
        layouts.small_world(10, 2, None)
    with pytest.raises(ValueError, match="n "):
        layouts.small_world(0, 0, 0.1)
    with pytest.raises(TypeError, match="symmetric"):
        layouts.small_world(10, 2, 0.1, symmetric="yes")


# ---------------------------------------------------------------------------------------------
# barabasi_albert


def test_barabasi_albert_structure():
    n, m = 300, 3
    mask = layouts.barabasi_albert(n, m, seed=0)
    assert mask.shape == (n, n)
    assert np.array_equal(mask, mask.T)
    assert not mask.diagonal().any()
    assert mask.sum() == 2 * m * (n - m)
    assert np.all(mask[m:].sum(axis=1) >= m)
    assert layouts.propagation_steps(mask) < math.inf  # connected
    assert layouts.barabasi_albert(n, m, seed=0, diagonal=True).diagonal().all()


def test_barabasi_albert_first_joins():
    # Unit m joins all initial units; later units only pick earlier units.
    mask = layouts.barabasi_albert(40, 4, seed=5)
    assert mask[4, :4].all()
    assert not mask[:4, :4].any()
    for t in range(5, 40):
        assert mask[t, :t].sum() == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_barabasi_albert_is_heavy_tailed(seed):
    n, m = 1000, 3
    stats = layouts.degree_stats(layouts.barabasi_albert(n, m, seed=seed))
    assert stats["col_mean"] == pytest.approx(2 * m * (n - m) / n)
    assert stats["col_max"] > 8 * stats["col_mean"]  # hubs
    assert stats["col_std"] > stats["col_mean"]
    # Same mean degree, no preferential attachment: no hubs.
    sw = layouts.degree_stats(layouts.small_world(n, 6, 1.0, seed=seed))
    assert sw["col_max"] < 3 * sw["col_mean"]
    assert stats["col_max"] > 4 * sw["col_max"]


def test_barabasi_albert_argument_errors():
    with pytest.raises(ValueError, match="m must be < n"):
        layouts.barabasi_albert(5, 5)
    with pytest.raises(ValueError, match="m "):
        layouts.barabasi_albert(5, 0)
    with pytest.raises(ValueError, match="n "):
        layouts.barabasi_albert(1, 1)
    with pytest.raises(TypeError, match="m "):
        layouts.barabasi_albert(5, 2.0)


# ---------------------------------------------------------------------------------------------
# block_diagonal


def test_block_diagonal():
    assert np.array_equal(layouts.block_diagonal(5), np.eye(5, dtype=bool))
    expected = np.array(
        [[1, 1, 0, 0, 0, 0, 0],
         [1, 1, 0, 0, 0, 0, 0],
         [0, 0, 1, 1, 0, 0, 0],
         [0, 0, 1, 1, 0, 0, 0],
         [0, 0, 0, 0, 1, 1, 0]],
        dtype=bool,
    )
    assert np.array_equal(layouts.block_diagonal(5, 7, width=2), expected)
    assert np.array_equal(layouts.block_diagonal(7, 5, width=2), expected.T)
    assert layouts.block_diagonal(3, width=4).all()
    wide = layouts.block_diagonal(12, width=3)
    assert np.all(wide.sum(axis=0) == 3) and wide.sum() == 4 * 9
    with pytest.raises(ValueError, match="width"):
        layouts.block_diagonal(4, width=0)
    with pytest.raises(TypeError, match="n_block_cols"):
        layouts.block_diagonal(4, 4.0)


# ---------------------------------------------------------------------------------------------
# statistics


def test_density_and_degree_stats():
    mask = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]], dtype=bool)
    assert layouts.density(mask) == 4 / 12
    assert layouts.density(mask.astype(np.float32)) == 4 / 12
    assert layouts.density(np.ones((2, 3), dtype=bool)) == 1.0
    stats = layouts.degree_stats(mask)
    assert stats == {
        "nnzb": 4,
        "row_min": 0, "row_max": 2, "row_mean": 4 / 3, "row_std": pytest.approx(np.std([2, 0, 2])),
        "col_min": 0, "col_max": 2, "col_mean": 1.0, "col_std": pytest.approx(np.std([2, 1, 0, 1])),
        "empty_rows": 1, "empty_cols": 1,
    }


def test_propagation_steps_small_graphs():
    assert layouts.propagation_steps(np.zeros((1, 1), dtype=bool)) == 0
    assert layouts.propagation_steps(np.ones((5, 5), dtype=bool)) == 1
    assert layouts.propagation_steps(~np.eye(5, dtype=bool)) == 1
    assert layouts.propagation_steps(directed_cycle(9)) == 8  # one way round
    cycle = directed_cycle(9)
    assert layouts.propagation_steps(cycle | cycle.T) == 4
    path = directed_cycle(9)
    path[8, 0] = False
    assert layouts.propagation_steps(path) == math.inf  # direction matters
    assert layouts.propagation_steps(path | path.T) == 8
    assert layouts.propagation_steps(np.eye(3, dtype=bool)) == math.inf
    assert isinstance(layouts.propagation_steps(cycle), int)


def test_path_statistics_are_chunk_independent(monkeypatch):
    mask = layouts.small_world(70, 4, 0.2, seed=4, symmetric=False)
    steps, length = layouts.propagation_steps(mask), layouts.average_path_length(mask)
    monkeypatch.setattr(layouts, "_PATH_CHUNK", 3)
    assert layouts.propagation_steps(mask) == steps
    assert layouts.average_path_length(mask) == pytest.approx(length)


def test_average_path_length():
    assert layouts.average_path_length(directed_cycle(9)) == pytest.approx(4.5)  # mean(1..8)
    assert layouts.average_path_length(np.ones((4, 4), dtype=bool)) == 1.0
    path = directed_cycle(4)
    path[3, 0] = False  # 0->1->2->3: pairs at distance 1,1,1,2,2,3
    assert layouts.average_path_length(path) == pytest.approx(10 / 6)
    assert math.isnan(layouts.average_path_length(np.eye(3, dtype=bool)))


def test_clustering_coefficient():
    assert layouts.clustering_coefficient(~np.eye(3, dtype=bool)) == pytest.approx(1.0)
    star = np.zeros((5, 5), dtype=bool)
    star[0, 1:] = True
    assert layouts.clustering_coefficient(star) == 0.0
    square_plus_diagonal = directed_cycle(4) | np.eye(4, dtype=bool)
    square_plus_diagonal[0, 2] = True  # triangles 0-1-2 and 0-2-3
    # Units 0 and 2 have 3 neighbours and 2 of 3 pairs joined; units 1 and 3 have 2 and 1 of 1.
    assert layouts.clustering_coefficient(square_plus_diagonal) == pytest.approx((2 / 3 * 2 + 2) / 4)


@pytest.mark.parametrize(
    "func", [layouts.propagation_steps, layouts.average_path_length, layouts.clustering_coefficient]
)
def test_graph_statistics_need_square_masks(func):
    with pytest.raises(ValueError, match="square"):
        func(np.ones((3, 4), dtype=bool))


@pytest.mark.parametrize(
    "bad, exc",
    [(np.ones(4, dtype=bool), ValueError), (np.ones((2, 2, 2), dtype=bool), ValueError),
     (np.ones((0, 3), dtype=bool), ValueError), (np.array([["a", "b"]]), TypeError),
     (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError), (np.array([[1j]]), TypeError)],
)
@pytest.mark.parametrize(
    "func", [layouts.density, layouts.degree_stats, layouts.propagation_steps,
             layouts.average_path_length, layouts.clustering_coefficient],
)
def test_statistics_reject_bad_masks(func, bad, exc):
    with pytest.raises(exc, match="mask"):
        func(bad)


def test_statistics_take_lists_and_layouts():
    from cupy_bsparse import BlockLayout

    mask = layouts.small_world(12, 4, 0.2, seed=0)
    steps = layouts.propagation_steps(mask)
    assert layouts.propagation_steps(mask.tolist()) == steps
    assert layouts.propagation_steps(BlockLayout.from_mask(mask, 8)) == steps
    assert layouts.degree_stats(mask.astype(np.int8)) == layouts.degree_stats(mask)
