"""Versioned model broadcast with a history window.

Versions are consecutive integers. The driver keeps the last ``window`` versions, and
older ones that tasks in flight still compute on, in arrays it reuses (one O(d) copy per
publish, no allocation once the window is full). A version reaches the cluster at most
once per way it travels:

* ``"inline"``: embedded in the one task that computes on it (no extra round trip, no
  extra key on the scheduler; the copy lives as long as that task);
* ``"scatter"``: placed on a worker once under the key ``daskasync-model-<run>-v<version>``
  and referenced by every task that uses it;
* ``"auto"`` (default): inline for a version handed to one task when it is small
  (``<= inline_max_bytes``), scattered otherwise (synchronous rounds, large models).

Scattered versions are released when they fall out of the window, so the cluster holds
O(window) model versions (plus those of tasks in flight) however long the run. Tasks can
read back any version inside the window through :meth:`Broadcaster.ref`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import methodcaller
from typing import Any

import numpy as np

from .._comm import scatter_retrying
from ..constraints import Interval, Options, check

__all__ = ["Broadcaster", "DEFAULT_WINDOW", "TRANSPORTS", "WINDOW_MAX_BYTES", "default_window"]

TRANSPORTS = ("auto", "inline", "scatter")

#: versions the default window holds (:func:`default_window`)
DEFAULT_WINDOW = 16
#: the most memory the default window takes on the driver
WINDOW_MAX_BYTES = 64 << 20


def default_window(version_bytes: int) -> int:
    """The window ``window=None`` gives versions of ``version_bytes`` bytes:
    :data:`DEFAULT_WINDOW` versions, fewer when they would take more than
    :data:`WINDOW_MAX_BYTES`, never fewer than 2.

    The window is how far back versions stay readable (:meth:`Broadcaster.get`); the
    versions tasks in flight compute on are kept whatever it is. Capping it for large
    versions costs only that depth, and bounds the driver's memory and the first touch of
    fresh pages (one fault per 4 KiB) of wide models: at ``d = 10^6`` a SAGA version
    (model and ``alpha_bar``) is 16 MB, and 16 of them 256 MB.

    Examples
    --------
    >>> default_window(8 * 10_000), default_window(16 * 10**6), default_window(10**9)
    (16, 4, 2)
    """
    return max(2, min(DEFAULT_WINDOW, WINDOW_MAX_BYTES // max(int(version_bytes), 1)))


class Broadcaster:
    """Publish model versions and read them back by index.

    Parameters
    ----------
    client : distributed.Client or None
        Client used to scatter versions (``None``: driver-only, for tests).
    window : int or None
        Number of most recent versions that can be read back; ``None`` (default):
        :func:`default_window` of the size of the first version published.
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
        window: int | None = None,
        transport: str = "auto",
        inline_max_bytes: int = 1 << 20,
        name: str = "daskasync",
    ) -> None:
        if window is not None:
            check("window", window, Interval("int", 1))
        # any bad transport is a ValueError (None too), as Broadcaster always raised
        check("transport", transport, Options(*TRANSPORTS), error=ValueError)
        self.client = client
        self._window = None if window is None else int(window)
        self.transport = transport
        self.inline_max_bytes = int(inline_max_bytes)
        self.name = name
        self._like: tuple[tuple[int, ...], np.dtype] | None = None  # a version's shape, dtype
        #: version -> its array: the window's versions, and older ones still in use
        self._slots: dict[int, np.ndarray] = {}
        self._free: list[np.ndarray] = []  # arrays of versions gone, reused by the next ones
        self.version = -1  #: latest published version
        self._futures: dict[int, Any] = {}
        self.n_scattered = 0  #: versions scattered so far (each once)
        self.n_recovered = 0  #: scattered versions placed again after being lost
        #: ``in_use(version)``: whether a task in flight still computes on ``version`` (set
        #: by the engine). Such a version stays on the driver when it leaves the window, so
        #: its result can be decoded and the version placed again if its worker dies.
        self.in_use: Callable[[int], bool] | None = None
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
        if self._like is None:
            self._like = (shape, np.dtype(dtype))
            if self._window is None:
                self._window = default_window(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        elif (shape, dtype) != self._like:
            raise ValueError(f"model: shape {shape} / dtype {dtype} differs from the published "
                             f"shape {self._like[0]} / dtype {self._like[1]}")
        self.version += 1
        self._retire(self.version - self.window)
        slot = self._free.pop() if self._free else np.empty(shape, dtype=dtype)
        given = parts if parts is not None else (model,)
        if any(np.may_share_memory(slot, part) for part in given):  # a version gone, given back
            slot = np.empty(shape, dtype=dtype)
        if parts is not None:
            for i, part in enumerate(parts):
                slot[i] = part
        else:
            slot[...] = model
        self._slots[self.version] = slot
        return self.version

    def _retire(self, old: int) -> None:
        """Versions up to ``old`` have left the window: release the scattered one that just
        left, and hand back the slot of every one no task in flight computes on (a version
        in use keeps its slot until the first publish after its last user)."""
        fut = self._futures.pop(old, None)
        if fut is not None:  # fell out of the window: release it on the cluster
            self.release_future(fut)
        for v in [v for v in self._slots if v <= old]:
            if self.in_use is not None and self.in_use(v):
                continue
            self._free.append(self._slots.pop(v))
            fut = self._retired_futures.pop(v, None)
            if fut is not None:
                self.release_future(fut)

    @property
    def window(self) -> int:
        """Versions that can be read back (with ``window=None``, fixed at the first
        publish: :func:`default_window` of the version's size; 16 before it)."""
        return DEFAULT_WINDOW if self._window is None else self._window

    @property
    def held(self) -> list[int]:
        """Versions the driver holds: the window's, and older ones a task in flight still
        computes on."""
        return sorted(self._slots)

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
        return self._slots[self._check(version)]

    def shipped(self, version: int) -> np.ndarray:
        """The array the tasks computing on ``version`` read (a view): a version inside
        the window, or one that left it while a task in flight still used it (kept until
        the first publish after that task's result), so the driver can decode the task's
        result relative to it."""
        if version in self._slots:
            return self._slots[version]
        return self.get(version)

    @property
    def current(self) -> np.ndarray:
        return self.get(-1)

    @property
    def nbytes(self) -> int:
        """Bytes of one version (0 before the first publish)."""
        if self._like is None:
            return 0
        return int(np.prod(self._like[0])) * self._like[1].itemsize

    # -- cluster side ----------------------------------------------------------------------
    def key(self, version: int) -> str:
        return f"daskasync-model-{self.name}-v{version}"

    def _inline(self, version: int, uses: int) -> np.ndarray | None:
        if self.transport == "inline" or (
            self.transport == "auto" and uses * self.nbytes <= self.inline_max_bytes
        ):
            return self._slots[version].copy()
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
            data = self._slots[version].copy()
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
        if version in self._slots and version < self.oldest:  # kept for the tasks on it
            self.n_recovered += 1
            (fut,) = await scatter_retrying(
                self.client, [self._slots[version].copy()],
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
