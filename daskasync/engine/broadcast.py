"""Versioned model broadcast with a history window.

Versions are consecutive integers. The driver keeps the last ``window`` versions in a ring
buffer (one O(d) copy per publish, no allocation). A version reaches the cluster at most
once per way it travels:

* ``"inline"``: embedded in the one task that computes on it (no extra round trip, no
  extra key on the scheduler; the copy lives as long as that task);
* ``"scatter"``: placed on a worker once under the key ``daskasync-model-<run>-v<version>``
  and referenced by every task that uses it;
* ``"auto"`` (default): inline for a version handed to one task when it is small
  (``<= inline_max_bytes``), scattered otherwise (synchronous rounds, large models).

Scattered versions are released when they fall out of the window, so the cluster holds
O(window) model versions however long the run. Tasks can read back any version inside the
window through :meth:`Broadcaster.ref`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import methodcaller
from typing import Any

import numpy as np

from .._comm import scatter_retrying
from ..constraints import Interval, Options, check

__all__ = ["Broadcaster", "TRANSPORTS"]

TRANSPORTS = ("auto", "inline", "scatter")


class Broadcaster:
    """Publish model versions and read them back by index.

    Parameters
    ----------
    client : distributed.Client or None
        Client used to scatter versions (``None``: driver-only, for tests).
    window : int
        Number of most recent versions that can be read back.
    transport : {"auto", "inline", "scatter"}
        How a version travels to the tasks that use it (see module docs).
    inline_max_bytes : int
        Largest model sent inline by ``"auto"``.
    name : str
        Run token used in the keys of scattered versions.

    Examples
    --------
    >>> import numpy as np
    >>> b = Broadcaster(None, window=2)
    >>> [b.publish(np.full(3, float(i))) for i in range(4)]
    [0, 1, 2, 3]
    >>> b.get(2).tolist(), b.oldest
    ([2.0, 2.0, 2.0], 2)
    """

    def __init__(
        self,
        client: Any,
        *,
        window: int = 16,
        transport: str = "auto",
        inline_max_bytes: int = 1 << 20,
        name: str = "daskasync",
    ) -> None:
        check("window", window, Interval("int", 1))
        # any bad transport is a ValueError (None too), as Broadcaster always raised
        check("transport", transport, Options(*TRANSPORTS), error=ValueError)
        self.client = client
        self.window = int(window)
        self.transport = transport
        self.inline_max_bytes = int(inline_max_bytes)
        self.name = name
        self._buf: np.ndarray | None = None
        self.version = -1  #: latest published version
        self._futures: dict[int, Any] = {}
        self.n_scattered = 0  #: versions scattered so far (each once)
        self.n_recovered = 0  #: scattered versions placed again after being lost
        #: ``in_use(version)``: whether a task in flight still computes on ``version`` (set
        #: by the engine). Such a version keeps a driver copy when it leaves the window, so
        #: it can be placed again if its worker dies (at most one copy per task in flight).
        self.in_use: Callable[[int], bool] | None = None
        self._retired: dict[int, np.ndarray] = {}
        self._retired_futures: dict[int, Any] = {}
        #: how a version leaving the window is released on the cluster (the engine defers
        #: it to its next launch: :meth:`Launcher.release_later`)
        self.release_future: Callable[[Any], None] = methodcaller("release")

    # -- driver side -----------------------------------------------------------------------
    def publish(self, model: np.ndarray | tuple[np.ndarray, ...]) -> int:
        """Store ``model`` as the next version and return its index (O(d), no cluster I/O).
        A tuple of same-shaped arrays is stored stacked (written in place: no stacked copy
        is made first)."""
        parts = model if isinstance(model, tuple) else None
        if parts is not None:
            shapes = {np.shape(part) for part in parts}
            if len(shapes) != 1:
                raise ValueError(f"model: the arrays of a tuple must share one shape, got "
                                 f"{[np.shape(part) for part in parts]}")
            shape = (len(parts), *shapes.pop())
            dtype = np.result_type(*parts)
        else:
            model = np.asarray(model)
            shape, dtype = model.shape, model.dtype
        if self._buf is None:
            self._buf = np.empty((self.window, *shape), dtype=dtype)
        elif shape != self._buf.shape[1:] or dtype != self._buf.dtype:
            raise ValueError(
                f"model: shape {shape} / dtype {dtype} differs from the published "
                f"shape {self._buf.shape[1:]} / dtype {self._buf.dtype}"
            )
        self.version += 1
        old = self.version - self.window  # leaves the window: its slot is reused now
        if old >= 0 and self.in_use is not None:
            for v in [v for v in self._retired if not self.in_use(v)]:
                del self._retired[v]
                fut = self._retired_futures.pop(v, None)
                if fut is not None:
                    self.release_future(fut)
            if self.in_use(old):
                self._retired[old] = self._buf[old % self.window].copy()
        slot = self._buf[self.version % self.window]
        if parts is not None:
            for i, part in enumerate(parts):
                slot[i] = part
        else:
            slot[...] = model
        if old in self._futures:
            # fell out of the window: release it on the cluster
            self.release_future(self._futures.pop(old))
        return self.version

    @property
    def oldest(self) -> int:
        """Oldest version that can still be read back."""
        return max(0, self.version - self.window + 1)

    def _check(self, version: int) -> int:
        if self.version < 0:
            raise LookupError("no model version has been published yet")
        if version < 0:
            version = self.version + 1 + version
        if not self.oldest <= version <= self.version:
            raise LookupError(
                f"model version {version} is outside the history window "
                f"[{self.oldest}, {self.version}] (window={self.window})"
            )
        return version

    def get(self, version: int = -1) -> np.ndarray:
        """Read back a version on the driver (a view: copy it before modifying);
        negative indices count from the latest."""
        version = self._check(version)
        assert self._buf is not None
        return self._buf[version % self.window]

    def shipped(self, version: int) -> np.ndarray:
        """The array the tasks computing on ``version`` read (a view): a version inside
        the window, or one that left it while a task in flight still used it (kept until
        the first publish after that task's result), so the driver can decode the task's
        result relative to it."""
        if version in self._retired:
            return self._retired[version]
        return self.get(version)

    @property
    def current(self) -> np.ndarray:
        return self.get(-1)

    @property
    def nbytes(self) -> int:
        return 0 if self._buf is None else self._buf[0].nbytes

    # -- cluster side ----------------------------------------------------------------------
    def key(self, version: int) -> str:
        return f"daskasync-model-{self.name}-v{version}"

    def _inline(self, version: int, uses: int) -> np.ndarray | None:
        if self.transport == "inline" or (
            self.transport == "auto" and uses * self.nbytes <= self.inline_max_bytes
        ):
            return self._buf[version % self.window].copy()  # type: ignore[index]
        return None

    async def _ref(self, version: int = -1, uses: int = 1,
                   workers: Sequence[str] | None = None) -> Any:
        version = self._check(version)
        fut = self._futures.get(version)
        if fut is not None:
            return fut
        arr = self._inline(version, uses)
        if arr is not None:
            return arr
        return await self._scatter(version, workers=workers)

    def ref(self, version: int = -1, uses: int = 1) -> Any:
        """What to pass to the task(s) that compute on ``version``: the array itself
        (inline) or a future of the version scattered once on the cluster.

        ``uses`` is how many tasks will get this reference now (``"auto"`` scatters a
        version that several tasks share)."""
        return self.client.sync(self._ref, version, uses)

    async def _scatter(self, version: int = -1, suffix: str = "",
                       workers: Sequence[str] | None = None) -> Any:
        version = self._check(version)
        fut = self._futures.get(version)
        if fut is None:
            if self.client is None:
                raise RuntimeError("Broadcaster has no client to scatter with")
            data = self._buf[version % self.window].copy()  # type: ignore[index]
            (fut,) = await scatter_retrying(self.client, [data], keys=[self.key(version) + suffix],
                                            workers=workers or None, broadcast=True)
            self._futures[version] = fut
            self.n_scattered += 1
        return fut

    async def _recover(self, version: int) -> Any:
        """Scatter ``version`` again after its copy on the cluster was lost (its worker
        died); returns the new future. The version must still be inside the window."""
        lost = self._futures.pop(version, None) or self._retired_futures.pop(version, None)
        if lost is not None:
            lost.release()
        if version in self._retired:  # left the window, kept for the tasks still on it
            self.n_recovered += 1
            (fut,) = await scatter_retrying(
                self.client, [self._retired[version].copy()],
                keys=[self.key(version) + f"-r{self.n_recovered}"],
            )
            self._retired_futures[version] = fut
            return fut
        try:
            self._check(version)
        except LookupError as err:
            raise RuntimeError(
                f"model version {version} was lost with its worker and has left the history "
                f"window (window={self.window}); use a larger window than the staleness of "
                "tasks in flight to survive worker loss"
            ) from err
        self.n_recovered += 1
        return await self._scatter(version, suffix=f"-r{self.n_recovered}")

    def scatter(self, version: int = -1) -> Any:
        """Place ``version`` on the cluster once and return its future (tasks can then read
        that version back, e.g. an SVRG snapshot)."""
        return self.client.sync(self._scatter, version)

    @property
    def n_on_cluster(self) -> int:
        """Versions this broadcaster holds on the cluster now (at most ``window``)."""
        return len(self._futures)

    def release(self) -> None:
        """Release every scattered version."""
        for fut in [*self._futures.values(), *self._retired_futures.values()]:
            fut.release()
        self._futures.clear()
        self._retired_futures.clear()
