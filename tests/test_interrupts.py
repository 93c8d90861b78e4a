"""Ctrl-C (KeyboardInterrupt) during a run: outstanding tasks are cancelled, the estimator
keeps its last consistent state, and the scheduler holds nothing of the run."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import assert_no_tasks

from daskasync.engine.sync import ABORT_TIMEOUT

#: a log line at WARNING level or above (distributed's format, and the child's own)
ALARMING = re.compile(r" - (WARNING|ERROR|CRITICAL) - .*")

#: distributed's noise at a client's close, not the run's: the batched stream to the
#: scheduler waits on a tornado Event with a timeout (``gen.with_timeout``, whose error is
#: ``TimeoutError('Timeout')``), and that future can be dropped unread when the stream
#: closes (seen once in a full suite); daskasync uses no tornado primitive
_CLOSE_NOISE = re.compile(r"asyncio - ERROR - Future exception was never retrieved\n"
                          r"future: <Future finished exception=TimeoutError\('Timeout'\)>\n"
                          r"TimeoutError: Timeout\n?")

_CHILD = r"""
import faulthandler, json, logging, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)
# Ctrl-C raises KeyboardInterrupt, as in a terminal, also when this process inherited an
# ignored SIGINT (pytest started as a background job, where Python keeps it ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
logging.basicConfig(format="%(name)s - %(levelname)s - %(message)s")
import numpy as np
from distributed import Client
import daskasync

address, solver = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
X = rng.standard_normal((4000, 30))
y = np.where(X @ rng.standard_normal(30) + 0.5 * rng.standard_normal(4000) > 0, 1, 0)
with Client(address) as client:
    clf = daskasync.LogisticRegression(solver=solver, max_iter=2, client=client,
                                       random_state=0, n_partitions=4)
    t0 = time.monotonic()
    clf.fit(X, y)
    t_fit = time.monotonic() - t0
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(clf).items()}
    clf.set_params(max_iter=100_000, tol=None)
    print("READY", t_fit, flush=True)
    try:
        clf.fit(X, y)
        print(json.dumps({"interrupted": False}), flush=True)
        sys.exit(0)
    except KeyboardInterrupt:
        pass
    after = vars(clf)
    same = set(after) == set(before) and all(
        np.array_equal(after[k], v) if isinstance(v, np.ndarray) else
        (after[k] == v if k in ("history_", "n_iter_", "objective_") else True)
        for k, v in before.items()
    )
    clf.set_params(max_iter=2)
    clf.partial_fit(X, y)
    print(json.dumps({"interrupted": True, "same": bool(same), "n_iter": clf.n_iter_}),
          flush=True)
"""


@pytest.mark.parametrize("solver", ["asaga", "saga", "sgd", "lbfgs"])
def test_ctrl_c_during_fit_keeps_the_fitted_estimator(client, solver, tmp_path):
    """A user's process (here a child process on the test cluster) gets SIGINT mid-fit, as
    from Ctrl-C in a terminal: the estimator keeps its previous fit exactly, partial_fit
    continues from it, and the scheduler holds no task of the interrupted run."""
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen([sys.executable, str(script), client.scheduler.address, solver],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, t_fit = proc.stdout.readline().split()
        assert ready == "READY"
        time.sleep(1.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # the child prints every thread's stack
            time.sleep(2)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the child hung after SIGINT; its threads:\n{err[-20000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res == {"interrupted": True, "same": True, "n_iter": 3}, res
    # from SIGINT to the child's exit: the clean-up, a partial_fit like the child's first
    # 2-iteration fit, closing the client. A hung clean-up waits ABORT_TIMEOUT per step;
    # the bound is half that, or 8 times that first fit on a loaded machine (a fit of
    # 0.2 s, as lbfgs's can be, would make 8 times it shorter than closing a client)
    elapsed = time.monotonic() - t0
    assert elapsed < max(8 * float(t_fit), ABORT_TIMEOUT / 2), (elapsed, t_fit)
    # the client logged nothing alarming (test_clean_ends checks scheduler and workers)
    assert not ALARMING.findall(_CLOSE_NOISE.sub("", err)), err[-3000:]
    assert_no_tasks(client, prefixes=(f"{solver}-", "daskasync-model-"))
