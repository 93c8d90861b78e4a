"""Plots of a run, the live view's data, and what the dashboard shows (span, task names)."""

from __future__ import annotations

import io
import urllib.request

import matplotlib
import numpy as np
import pytest
from dask.utils import key_split
from distributed import Client, LocalCluster

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
    for ax in fig2.axes:  # every panel names the runs it overlays
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["asaga", "saga"], (
            ax.get_title())
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


def test_progress_bar_is_one_line_redrawn_in_place():
    out = io.StringIO()
    bar = da.ProgressBar("asaga", total=300, file=out)
    for k in range(1, 301):
        bar.update(k, epoch=k / 100, objective=1.0 / k, staleness=1.5)
    bar.close()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, kept when done
    last = text.rstrip("\n").split("\r")[-1]
    assert "300/300" in last and "epoch=3.00" in last and "obj=" in last


def test_the_dashboard_renders_its_plots():
    """bokeh is installed with daskasync, so a LocalCluster's dashboard draws its plots
    (without bokeh, /status says "Dask needs bokeh>=3.1.0 for the dashboard")."""
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1",
                     protocol="tcp", dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        url = client.dashboard_link
        assert url.startswith("http://127.0.0.1:") and url.endswith("/status")
        with urllib.request.urlopen(url, timeout=60) as page:
            html = page.read().decode()
        assert "needs bokeh" not in html, html[:300]
        assert "bokeh.min.js" in html and html.count("data-root-id=") == 5
        from bokeh.client import pull_session

        with pull_session(url=url) as session:  # the plots the browser's page draws
            roots = {root.name: type(root).__name__ for root in session.document.roots}
    assert roots == {"cluster_memory": "figure", "workers_memory": "figure",
                     "processing_tabs": "Tabs", "task_stream": "figure",
                     "task_progress": "figure"}
