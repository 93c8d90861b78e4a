"""Driver-side tests of the versioned model broadcast (daskasync.engine.broadcast).

Cluster behaviour is tested elsewhere; here the client is ``None`` or a tiny fake.
"""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import pytest

from daskasync.engine.broadcast import (
    DEFAULT_WINDOW,
    TRANSPORTS,
    WINDOW_MAX_BYTES,
    Broadcaster,
    default_window,
)


def publish_range(b: Broadcaster, n: int, d: int = 3) -> list[int]:
    return [b.publish(np.full(d, float(i))) for i in range(n)]


def test_publish_returns_consecutive_versions():
    b = Broadcaster(None, window=4)
    assert b.version == -1
    assert publish_range(b, 10) == list(range(10))
    assert b.version == 9


def test_get_inside_window():
    b = Broadcaster(None, window=3)
    publish_range(b, 7)
    assert b.oldest == 4
    for v in (4, 5, 6):
        np.testing.assert_array_equal(b.get(v), np.full(3, float(v)))
    np.testing.assert_array_equal(b.current, np.full(3, 6.0))
    np.testing.assert_array_equal(b.get(), np.full(3, 6.0))


def test_get_every_version_while_publishing():
    b = Broadcaster(None, window=4)
    rng = np.random.default_rng(0)
    history = []
    for v in range(12):
        x = rng.normal(size=5)
        history.append(x.copy())
        assert b.publish(x) == v
        for u in range(max(0, v - 3), v + 1):
            np.testing.assert_array_equal(b.get(u), history[u])
        for u in range(0, max(0, v - 3)):
            with pytest.raises(LookupError):
                b.get(u)


@pytest.mark.parametrize("version", [0, 3, 7, 100])
def test_get_outside_window(version):
    b = Broadcaster(None, window=3)
    publish_range(b, 7)  # window holds 4, 5, 6
    with pytest.raises(LookupError, match="outside the history window"):
        b.get(version)


def test_get_before_any_publish():
    b = Broadcaster(None, window=2)
    with pytest.raises(LookupError, match="no model version"):
        b.get(0)
    with pytest.raises(LookupError):
        b.get(-1)
    assert b.nbytes == 0


def test_negative_indices():
    b = Broadcaster(None, window=3)
    publish_range(b, 5)  # window holds 2, 3, 4
    assert b.get(-1)[0] == 4.0
    assert b.get(-2)[0] == 3.0
    assert b.get(-3)[0] == 2.0
    with pytest.raises(LookupError):
        b.get(-4)
    # before the window is full, negative indices stop at version 0
    b2 = Broadcaster(None, window=5)
    publish_range(b2, 2)
    assert b2.oldest == 0
    assert b2.get(-2)[0] == 0.0
    with pytest.raises(LookupError):
        b2.get(-3)


def test_window_one():
    b = Broadcaster(None, window=1)
    for v in range(4):
        assert b.publish(np.array([v, -v], dtype=float)) == v
        np.testing.assert_array_equal(b.get(v), [v, -v])
        np.testing.assert_array_equal(b.get(-1), [v, -v])
        assert b.oldest == v
        if v:
            with pytest.raises(LookupError):
                b.get(v - 1)


def test_publish_copies():
    b = Broadcaster(None, window=3)
    x = np.array([1.0, 2.0, 3.0])
    v = b.publish(x)
    x[:] = -1.0
    np.testing.assert_array_equal(b.get(v), [1.0, 2.0, 3.0])
    # the next publish of the same (now modified) array is a different version
    v2 = b.publish(x)
    np.testing.assert_array_equal(b.get(v), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(b.get(v2), [-1.0, -1.0, -1.0])


def test_ring_buffer_overwrites_old_slot_only():
    b = Broadcaster(None, window=2)
    publish_range(b, 2)
    kept = b.get(1).copy()
    b.publish(np.full(3, 9.0))  # overwrites version 0's slot
    np.testing.assert_array_equal(b.get(1), kept)
    np.testing.assert_array_equal(b.get(2), np.full(3, 9.0))


def test_multidimensional_model_and_nbytes():
    b = Broadcaster(None, window=2)
    m = np.arange(6.0).reshape(2, 3)
    b.publish(m)
    np.testing.assert_array_equal(b.get(0), m)
    assert b.nbytes == m.nbytes == 48


@pytest.mark.parametrize("shape", [(4,), (3, 1), ()])
def test_shape_change_raises(shape):
    b = Broadcaster(None, window=2)
    b.publish(np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        b.publish(np.zeros(shape))
    assert b.version == 0  # nothing published
    np.testing.assert_array_equal(b.get(0), np.zeros(3))


def test_publish_keeps_values_when_dtype_changes():
    b = Broadcaster(None, window=2)
    b.publish(np.array([0, 0]))
    try:
        v = b.publish(np.array([0.5, 1.5]))
    except (TypeError, ValueError):
        return  # refusing the dtype change would also be fine
    np.testing.assert_array_equal(b.get(v), [0.5, 1.5])


@pytest.mark.parametrize("window", [0, -1])
def test_bad_window_value(window):
    with pytest.raises(ValueError, match="window"):
        Broadcaster(None, window=window)


@pytest.mark.parametrize("window", [1.0, "2", True])
def test_bad_window_type(window):
    with pytest.raises(TypeError, match="window"):
        Broadcaster(None, window=window)


@pytest.mark.parametrize("transport", ["broadcast", "", None, "INLINE"])
def test_bad_transport(transport):
    with pytest.raises(ValueError, match="transport"):
        Broadcaster(None, transport=transport)


def test_defaults_and_keys():
    b = Broadcaster(None, name="run7")
    assert b.window == DEFAULT_WINDOW == 16
    assert b.transport == "auto"
    assert set(TRANSPORTS) == {"auto", "inline", "scatter"}
    assert b.key(3) == "daskasync-model-run7-v3"
    assert b.n_on_cluster == 0
    b.release()  # nothing to release
    assert b.n_on_cluster == 0


def test_scatter_without_client_raises():
    b = Broadcaster(None, window=2, transport="scatter")
    b.publish(np.zeros(2))
    with pytest.raises(RuntimeError, match="no client"):
        asyncio.run(b._scatter(0))


# -- transports, with a fake client ----------------------------------------------------------
class FakeFuture:
    def __init__(self, key, data):
        self.key = key
        self.data = data
        self.released = False

    def release(self):
        self.released = True


class FakeClient:
    def __init__(self):
        self.scattered = []

    def sync(self, fn, *args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    async def scatter(self, data, hash=True):
        assert hash is False
        # what a worker stores: the data as it arrives (pickled, as a scatter sends it)
        out = {k: FakeFuture(k, pickle.loads(pickle.dumps(v))) for k, v in data.items()}
        self.scattered.extend(out.values())
        return out


def test_inline_ref_is_a_copy_of_the_version():
    b = Broadcaster(FakeClient(), window=2, transport="inline")
    b.publish(np.array([1.0, 2.0]))
    b.publish(np.array([3.0, 4.0]))
    ref = b.ref(0, uses=100)
    assert isinstance(ref, np.ndarray)
    np.testing.assert_array_equal(ref, [1.0, 2.0])
    ref[:] = 0.0
    np.testing.assert_array_equal(b.get(0), [1.0, 2.0])
    assert b.n_scattered == 0


def test_auto_inlines_small_and_scatters_shared_versions():
    client = FakeClient()
    b = Broadcaster(client, window=3, transport="auto", inline_max_bytes=40, name="t")
    b.publish(np.arange(4.0))  # 32 bytes
    assert isinstance(b.ref(0, uses=1), np.ndarray)
    fut = b.ref(0, uses=2)  # 64 bytes > 40: scattered once
    assert isinstance(fut, FakeFuture)
    assert fut.key == "daskasync-model-t-v0"
    np.testing.assert_array_equal(fut.data, np.arange(4.0))
    assert b.ref(0, uses=1) is fut  # once scattered, reused
    assert b.n_scattered == 1 and b.n_on_cluster == 1


def test_scattered_versions_released_when_out_of_window():
    client = FakeClient()
    b = Broadcaster(client, window=2, transport="scatter")
    futs = []
    for v in range(5):
        b.publish(np.full(2, float(v)))
        futs.append(b.scatter(v))
        assert b.scatter(v) is futs[-1]  # scattered once
        assert b.n_on_cluster <= 2
    assert b.n_scattered == 5
    assert [f.released for f in futs] == [True, True, True, False, False]
    assert b.n_on_cluster == 2
    b.release()
    assert all(f.released for f in futs)
    assert b.n_on_cluster == 0
    with pytest.raises(LookupError):
        b.scatter(0)


def test_a_version_in_use_outlives_the_window_for_recovery():
    """A task still computing on a version that leaves the window keeps a driver copy of
    it, so the version can be placed again if its worker dies; the copy goes once no
    task uses it, and without users nothing is kept."""
    client = FakeClient()
    b = Broadcaster(client, window=2, transport="scatter")
    in_use = {1}
    b.in_use = in_use.__contains__
    for v in range(6):
        b.publish(np.full(2, float(v)))
    with pytest.raises(LookupError):
        b.get(1)  # outside the window for readers
    fut = b.client.sync(b._recover, 1)
    np.testing.assert_array_equal(fut.data, [1.0, 1.0])
    assert b.n_recovered == 1
    with pytest.raises(RuntimeError, match="left the history window"):
        b.client.sync(b._recover, 0)  # nobody used version 0: not kept
    in_use.clear()
    b.publish(np.zeros(2))
    assert fut.released and 1 not in b.held  # dropped with its last user
    with pytest.raises(RuntimeError, match="left the history window"):
        b.client.sync(b._recover, 1)


def test_window_and_transport_messages():
    with pytest.raises(ValueError, match=r"^window: must be an int >= 1, got 0$"):
        Broadcaster(None, window=0)
    with pytest.raises(ValueError, match=r"^transport: must be one of 'auto', 'inline', "
                                         r"'scatter', got None$"):
        Broadcaster(None, transport=None)
    assert type(Broadcaster(None, window=np.int64(3)).window) is int


def test_a_version_a_task_read_stays_readable_for_its_result():
    """``shipped`` reads a version that left the window while a task still used it (the
    SAGA driver decodes that task's result against it); ``get`` does not."""
    b = Broadcaster(None, window=2)
    in_use = {1}
    b.in_use = in_use.__contains__
    for v in range(4):
        b.publish(np.full(2, float(v)))
    np.testing.assert_array_equal(b.shipped(1), [1.0, 1.0])
    np.testing.assert_array_equal(b.shipped(3), [3.0, 3.0])
    with pytest.raises(LookupError):
        b.get(1)
    in_use.clear()
    b.publish(np.zeros(2))
    with pytest.raises(LookupError):
        b.shipped(1)


def test_a_tuple_of_arrays_is_published_stacked_without_a_stacked_copy():
    b = Broadcaster(None, window=2)
    theta, mean = np.arange(4.0), np.arange(4.0) * 10
    assert b.publish((theta, mean)) == 0
    np.testing.assert_array_equal(b.get(0), np.stack([theta, mean]))
    theta += 1  # the version is a copy of the parts
    assert b.get(0)[0, 0] == 0.0
    b.publish(np.stack([theta, mean]))  # the same layout either way
    np.testing.assert_array_equal(b.get(1)[0], theta)
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        b.publish((theta, mean, mean))
    with pytest.raises(ValueError, match=r"^model: the arrays of a tuple must share one "
                                         r"shape, got \[\(4,\), \(5,\)\]$"):
        b.publish((theta, np.zeros(5)))
    assert b.version == 1  # nothing published


@pytest.mark.parametrize(("d", "window"), [(10, 16), (WINDOW_MAX_BYTES // 256, 16),
                                           (WINDOW_MAX_BYTES // 128, 8), (10**6, 4),
                                           (10**7, 2)])
def test_default_window_holds_at_most_its_budget(d, window):
    """The default window: 16 versions, as many as fit in WINDOW_MAX_BYTES when larger,
    at least 2; fixed by the first version published."""
    b = Broadcaster(None)
    assert b.window == DEFAULT_WINDOW
    b.publish((np.zeros(d), np.zeros(d)))  # a SAGA version: 16 d bytes
    assert b.window == window == default_window(16 * d)
    assert window == 2 or window * 16 * d <= WINDOW_MAX_BYTES
    publish_range_like = [b.publish((np.full(d, float(v)), np.zeros(d))) for v in range(20)]
    assert b.held == publish_range_like[-window:]
    assert Broadcaster(None, window=16).window == 16  # a window given is kept


def test_versions_reuse_the_arrays_of_versions_gone():
    """Once the window is full a publish allocates nothing: it writes into the array of
    the version that left the window (or of an older one no task uses any more)."""
    b = Broadcaster(None, window=3)
    in_use: set[int] = set()
    b.in_use = in_use.__contains__
    seen: set[int] = set()

    def publish(v: int) -> None:
        b.publish(np.full(3, float(v)))
        seen.update(id(b.shipped(u)) for u in b.held)

    for v in range(10):
        publish(v)
    assert len(seen) == 3
    in_use.add(8)  # a task computes on version 8 while the window moves on
    for v in range(10, 14):
        publish(v)
    assert b.held == [8, 11, 12, 13]
    np.testing.assert_array_equal(b.shipped(8), np.full(3, 8.0))
    assert len(seen) == 4  # one array more, for the version kept in use
    in_use.clear()
    publish(14)  # version 8's array goes back to the pool
    assert b.held == [12, 13, 14]
    for v in range(15, 30):
        publish(v)
        np.testing.assert_array_equal(b.get(v - 2), np.full(3, float(v - 2)))
    assert len(seen) == 4


def test_a_version_gone_published_again_is_copied_whole():
    """Publishing an array that is a version leaving the window (its slot is the one
    reused) still stores its values."""
    b = Broadcaster(None, window=2)
    publish_range(b, 2)
    v = b.publish(b.get(0))
    np.testing.assert_array_equal(b.get(v), np.full(3, 0.0))
    np.testing.assert_array_equal(b.get(v - 1), np.full(3, 1.0))
