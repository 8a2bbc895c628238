"""The tutorial notebook runs top to bottom and shows what its text claims.

The .ipynb is read as JSON (no nbformat or Jupyter needed) and its code cells are executed in
order in one namespace, as a kernel would. With matplotlib installed the plots are drawn on the
Agg backend; without it the notebook skips them itself. Then the checks read the notebook's own
results (names it defines) and compare the saved outputs of the cells tagged ``check-output``
(deterministic: seeded layouts, no timings, no floating-point sums) with a fresh run, so a
notebook edited without being re-executed fails here.
"""

import contextlib
import io
import json
import pathlib
import re
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_small_world_block_sparse.ipynb"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


def _text(value):
    # nbformat stores multi-line strings either as one string or as a list of lines.
    return "".join(value) if isinstance(value, list) else value


def _code_cells(nb):
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def _saved_stdout(cell):
    return "".join(
        _text(out["text"])
        for out in cell["outputs"]
        if out["output_type"] == "stream" and out["name"] == "stdout"
    )


@pytest.fixture(scope="module")
def notebook():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run(notebook):
    """Execute the code cells in order: (namespace, stdout of each cell, figures drawn or None)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    namespace = {"__name__": "__main__"}
    printed = []
    with warnings.catch_warnings():
        # plt.show() on Agg warns that it cannot show anything; the figures are still drawn.
        warnings.filterwarnings("ignore", message=".*non-interactive.*", category=UserWarning)
        for i, cell in enumerate(_code_cells(notebook)):
            source = _text(cell["source"])
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                exec(compile(source, f"{NOTEBOOK.name}, code cell {i + 1}", "exec"), namespace)
            printed.append(stdout.getvalue())
    figures = None if plt is None else len(plt.get_fignums())
    yield namespace, printed, figures
    if plt is not None:
        plt.close("all")


def test_saved_notebook_is_executed_in_order(notebook):
    counts = [cell["execution_count"] for cell in _code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}"
    assert all(cell["outputs"] for cell in _code_cells(notebook)), "a code cell has no output"


def test_saved_outputs_match_a_fresh_run(notebook, run):
    _, printed, _ = run
    tagged = 0
    for cell, fresh in zip(_code_cells(notebook), printed):
        if "check-output" in cell["metadata"].get("tags", []):
            tagged += 1
            assert _saved_stdout(cell) == fresh
    assert tagged >= 3


def test_plots_are_drawn_when_matplotlib_is_installed(run):
    namespace, _, figures = run
    if figures is None:
        assert namespace["plt"] is None
    else:
        assert figures == 2


def test_rewiring_collapses_paths_and_keeps_clustering(run):
    sweep = run[0]["sweep"]
    assert sorted(sweep) == [0, 0.01, 0.05, 0.1, 0.3, 1.0]
    assert len({round(s["density"], 12) for s in sweep.values()}) == 1  # rewiring keeps density
    lattice, small, rewired = sweep[0], sweep[0.05], sweep[1.0]
    assert small["steps"] * 4 <= lattice["steps"]
    assert small["path"] * 4 <= lattice["path"]
    assert sweep[0.01]["clustering"] > 0.9 * lattice["clustering"]
    assert small["clustering"] > 0.8 * lattice["clustering"]
    assert rewired["clustering"] < 0.1 * lattice["clustering"]


def test_small_world_against_random_and_barabasi_albert(run):
    comparison = run[0]["comparison"]
    small = comparison["small_world p=0.05"]
    uniform = comparison["random"]
    hubs = comparison["barabasi_albert m=8"]
    assert abs(uniform["density"] - small["density"]) < 1e-12
    assert uniform["path"] < small["path"] < 1.5 * uniform["path"]
    assert small["clustering"] > 10 * uniform["clustering"]
    assert small["col_std"] < uniform["col_std"] < hubs["col_std"]
    assert hubs["col_max"] > 5 * hubs["col_mean"]


def test_wide_sparse_layer_has_the_dense_layers_parameters(run):
    namespace = run[0]
    dense, wide = namespace["dense_layer"], namespace["wide_layer"]
    assert dense.shape == (1024, 1024) and wide.shape == (4096, 4096)
    assert wide.density == 1 / 16
    assert namespace["params_wide"] == namespace["params_dense"] == 1024 * 1024
    assert namespace["flops_wide"] == namespace["flops_dense"] == 2 * 1024 * 1024
    assert namespace["steps_wide"] < 16  # the ring lattice of the same degree needs 16


def test_products_match_dense_numpy(run):
    rel_errors = run[0]["rel_errors"]
    assert len(rel_errors) == 3
    for name, err in rel_errors.items():
        assert err < 1e-5, f"{name}: relative error {err:.2e}"


def test_time_follows_stored_blocks(run):
    sparse_ms = run[0]["sparse_ms"]
    # 64x and 4x fewer blocks; the margins leave room for a noisy machine and, at the lowest
    # density, for the CPU reference's fixed costs per call (slab copies, thread hand-offs).
    # Typical on a 2-core VM: 1.3, 6.7 and 23 ms; a slower day read 3.3-6.5, 11-17 and 30-38 ms
    # (best of seven), and a CI run once read 12.0 ms at 1/4 (best of three), so the margins
    # are 4x and 1.5x.
    assert sparse_ms[1 / 64] < sparse_ms[1.0] / 4
    assert sparse_ms[1 / 4] < sparse_ms[1.0] / 1.5


def test_quoted_benchmark_rows_are_in_docs(notebook):
    # Rows of the notebook's table: | M | C = K | op | dtype | bs | ms | dense ms | speed-up | E |
    cells = notebook["cells"]
    markdown = "".join(_text(c["source"]) for c in cells if c["cell_type"] == "markdown")
    quoted = re.findall(
        r"^\| (\d+) \| (\d+) \| (\w+) \| (\w+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)x \|",
        markdown,
        flags=re.M,
    )
    assert len(quoted) >= 2
    docs = BENCHMARKS.read_text(encoding="utf-8")
    for m, ck, op, dtype, bs, ms, dense_ms, speedup in quoted:
        # the newest table of that shape (headings may carry a commit after the shape)
        heading = rf"^### M = {m}, C = K = {ck}\b[^\n]*\n(.*?)(?=^#|\Z)"
        section = re.search(heading, docs, flags=re.M | re.S)
        assert section, f"no section for M = {m}, C = K = {ck} in {BENCHMARKS.name}"
        row = (
            rf"^\| {op} \| {dtype} \| {bs} \| {re.escape(ms)} \|"
            rf".*\| {re.escape(speedup)}× \| {re.escape(dense_ms)} \|"
        )
        assert re.search(row, section.group(1), flags=re.M), f"row {op} {dtype} bs {bs} {ms} ms"
