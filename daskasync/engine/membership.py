"""Workers coming and going: which blocks a joining worker should receive.

:class:`Membership` is cluster-free: it is fed the running workers (with their threads) and
where each block lives, and answers which blocks to copy to the workers it has not seen
before, so that the scheduler (which places a task where its block is) hands them work.
The engine asks it about once a second and copies the blocks with the scheduler's
``replicate``; the old copies stay, so a block then also survives the loss of either
worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Membership"]


class Membership:
    """The workers seen so far, and a share of blocks for each new one.

    Parameters
    ----------
    workers : iterable of str, optional
        Workers already known (they get nothing). ``None``: the first :meth:`plan` call
        only records the workers it is given.

    Examples
    --------
    >>> m = Membership(["a"])
    >>> m.plan({"a": 1, "b": 1}, [("a",), ("a",), ("a",), ("a",)])
    {'b': [0, 1]}
    >>> m.plan({"a": 1, "b": 1}, [("a",), ("a", "b"), ("a",), ("a",)])
    {}
    """

    def __init__(self, workers: Iterable[str] | None = None) -> None:
        self.known: set[str] | None = None if workers is None else set(workers)

    def new_workers(self, running: Iterable[str]) -> list[str]:
        """Running workers not seen before (all of them count as seen on the first call
        when constructed without workers)."""
        running = set(running)
        if self.known is None:
            self.known = running
            return []
        return sorted(running - self.known)

    def plan(
        self, ncores: Mapping[str, int], holders: Sequence[Sequence[str]]
    ) -> dict[str, list[int]]:
        """Blocks to copy to each new worker: its share of the ``P`` blocks by threads
        (``P * threads / total threads``), taken first from blocks with the fewest live
        copies, then from the workers holding the most blocks per thread.

        Parameters
        ----------
        ncores : mapping of str to int
            Running workers and their threads.
        holders : sequence of sequence of str
            Workers holding each block.
        """
        new = self.new_workers(ncores)
        self.known = set(ncores)  # departed workers are forgotten
        if not new:
            return {}
        total = sum(max(1, int(t)) for t in ncores.values())
        live = [[h for h in hs if h in ncores] for hs in holders]
        load = dict.fromkeys(ncores, 0.0)
        for hs in live:
            for h in hs:
                load[h] += 1.0 / max(1, int(ncores[h]))
        plan: dict[str, list[int]] = {}
        for w in new:
            share = round(len(holders) * max(1, int(ncores[w])) / total)
            picks: list[int] = []
            for _ in range(share):
                candidates = [p for p, hs in enumerate(live) if hs and w not in hs]
                if not candidates:
                    break
                p = min(
                    candidates,
                    key=lambda p: (len(live[p]), -max(load[h] for h in live[p]), p),
                )
                for h in live[p]:  # as if moved: its holders get less of its work
                    load[h] -= 1.0 / max(1, int(ncores[h])) / len(live[p])
                live[p].append(w)
                load[w] += 1.0 / max(1, int(ncores[w]))
                picks.append(p)
            if picks:
                plan[w] = sorted(picks)
        return plan
