"""Plots of a run, the live view's data, and what the dashboard shows (span, task names)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from dask.utils import key_split

import daskasync as da

matplotlib.use("Agg")


@pytest.fixture
def data(client):
    d = da.PartitionedData.synthetic("epsilon", n=3000, d=12, n_partitions=4, client=client)
    yield d
    d.release()


def test_plot_history_draws_every_panel(client, data):
    res = da.minimize(data, solver="asaga", max_epochs=3, stragglers="intensity",
                      straggler_c=2.0, avg_task_time=0.005)
    fig = da.plot_history(res)
    obj, upd, stale, workers = fig.axes
    x, y = obj.lines[0].get_data()
    assert len(x) == len(res.history) and y[-1] == pytest.approx(res.objective)
    assert np.all(np.diff(x) >= 0)
    assert list(upd.lines[0].get_xdata()) == [r.update for r in res.history]
    heights = [p.get_height() for p in stale.patches]
    assert sum(heights) == sum(res.staleness_counts.values()) == res.updates
    assert max(res.staleness_counts) >= 1  # asynchronous: stale results happened
    assert len(workers.patches) == len(res.worker_stats) == 2
    # overlay a second run, relative suboptimality on a log scale
    sync = da.minimize(data, solver="saga", max_epochs=3)
    f_star = min(res.objective, sync.objective) - 1e-3
    fig2 = da.plot_history(res, f_star=f_star, label="asaga")
    da.plot_history(sync, f_star=f_star, label="saga", axes=fig2.axes)
    assert fig2.axes[0].get_yscale() == "log" and len(fig2.axes[0].lines) == 2
    assert [t.get_text() for t in fig2.axes[0].get_legend().get_texts()] == ["asaga", "saga"]
    assert set(sync.staleness_counts) == {0}  # synchronous rounds: never stale


def test_plot_history_of_an_estimator_and_bad_input(client):
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import scale

    X, y = load_breast_cancer(return_X_y=True)
    clf = da.LogisticRegression(max_iter=3, tol=None, random_state=0).fit(scale(X), y)
    clf.partial_fit(scale(X), y)
    fig = da.plot_history(clf)
    assert len(fig.axes[0].lines[0].get_xdata()) == len(clf.history_)  # both calls
    with pytest.raises(TypeError, match="plot_history: expected a FitResult"):
        da.plot_history(object())
    with pytest.raises(TypeError, match="plot_history"):
        da.plot_history(da.LogisticRegression())  # not fitted
    with pytest.raises(ValueError, match="axes: need 4"):
        da.plot_history(clf, axes=[fig.axes[0]])


def test_live_plot_collects_checked_objectives(client, data):
    live = da.LivePlot(interval=0.0)
    res = da.minimize(data, solver="asgd", max_epochs=4, callback=live)
    assert live.done and len(live.objectives) >= 2
    assert live.objectives[-1] == pytest.approx(res.objective)
    assert np.all(np.diff(live.times) > 0)
    fig = live.figure()
    assert fig.axes[0].get_xlabel() == "wall time (s)"


def test_the_dashboard_sees_one_span_per_run_and_readable_task_names(client, data):
    res = da.minimize(data, solver="asaga", max_epochs=2)
    span_id = res.settings["span_id"]

    def span_info(dask_scheduler, span_id=span_id):
        sp = dask_scheduler.extensions["spans"].spans[span_id]
        return list(sp.name), sorted(g.name for g in sp.groups)

    name, groups = client.run_on_scheduler(span_info)
    assert name == ["daskasync-asaga"]
    assert "asaga-grad" in groups and "asaga-eval" in groups
    # keys read "<solver>-<kind>-p<partition>-<run>-<n>"; the task stream groups them by
    # "<solver>-<kind>" and shows the whole key on hover
    eng = da.Engine(data, name="asaga")
    key = eng.launcher.key("grad", 3)
    assert key.startswith("asaga-grad-p3-") and key_split(key) == "asaga-grad"
