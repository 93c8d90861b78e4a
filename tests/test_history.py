"""The gradient history: memory, exposure through the engine, and consistency."""

from __future__ import annotations

import tracemalloc

import numpy as np

import daskasync as da
from daskasync.engine.history import GradientHistory


def test_history_memory_is_one_float_per_sample_per_class():
    import daskasync.engine.history as history_module

    n, K, d = 200_000, 10, 50
    tracemalloc.start()
    h = GradientHistory(np.array([0, n // 2, n]), dim=d + 1, n_outputs=K)
    h.alpha[:] = 1.0  # touch the pages
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # only what the history's own code allocated (other threads may allocate meanwhile)
    mine = snap.filter_traces([tracemalloc.Filter(True, history_module.__file__)])
    total = sum(stat.size for stat in mine.statistics("filename"))
    per = total / (n * K)
    assert 8.0 <= per < 8.01, f"{per:.4f} bytes per sample per class"
    assert h.bytes_per_sample_per_output == 8.0
    assert h.nbytes == n * K * 8 + K * (d + 1) * 8


def test_saga_run_history_is_exact_and_exposed(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8))
    y = np.sign(X[:, 0] + 0.3 * rng.normal(size=600))
    data = da.PartitionedData.from_arrays(X, y, n_partitions=3, client=client)
    for solver, inner in [("saga", "batch"), ("asaga", "sequential"), ("asaga", "batch")]:
        res = da.minimize(data, solver=solver, inner=inner, fit_intercept=True,
                          batch_fraction=0.3, max_epochs=5)
        h = res.state.history
        assert isinstance(h, GradientHistory) and h.alpha.shape == (600,)
        # alpha_bar is exactly the mean of the stored per-sample gradients [x_i, 1] * s_i
        Xs = X[data.row_order]  # the history follows the stored (shuffled) row order
        expected = np.append(Xs.T @ h.alpha, h.alpha.sum()) / 600
        np.testing.assert_allclose(h.mean, expected, atol=1e-12)
        assert np.count_nonzero(h.alpha) > 0
        assert h.bytes_per_sample_per_output == 8.0
    data.release()
