"""Workers coming and going: which blocks a worker that holds none should receive.

:class:`Membership` is cluster-free: it is fed the running workers (with their threads) and
where the copies of each block live, and answers which blocks to copy to each running worker
that holds no block (a worker that joined, before or during a run, or came back after a
restart), so that the scheduler, which places a task where its block is, hands it work. The
engine asks about once a second and makes the copies with
:meth:`~daskasync.data.PartitionedData.aspread`: new keys, one replica each, which
distributed's Active Memory Manager keeps. The previous copies stay, so a copied block
survives the loss of either worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["Membership"]


class Membership:
    """A share of blocks for every running worker that holds none.

    Examples
    --------
    >>> m = Membership()
    >>> m.plan({"a": 1, "b": 1}, [["a"], ["a"], ["a"], ["a"]])
    {'b': [0, 1]}
    >>> m.plan({"a": 1, "b": 1}, [["b", "a"], ["a"], ["b", "a"], ["a"]])
    {}
    """

    def __init__(self) -> None:
        self.n_plans = 0  #: plans that copied something

    @staticmethod
    def idle(ncores: Mapping[str, int], holders: Sequence[Sequence[str]]) -> list[str]:
        """Running workers holding no copy of any block (sorted)."""
        held = {h for hs in holders for h in hs}
        return sorted(w for w in ncores if w not in held)

    def plan(
        self, ncores: Mapping[str, int], holders: Sequence[Sequence[str]]
    ) -> dict[str, list[int]]:
        """Blocks to copy to each running worker that holds none: its share of the ``P``
        blocks by threads (``round(P * threads / total threads)``).

        A copy takes over its block's tasks, as if the block moved from the worker that ran
        them. Each pick takes a block whose tasks run on the worker with the most work per
        thread (ties: the block with the fewest live copies, then the lowest index), so
        the work evens out however many workers join.

        Parameters
        ----------
        ncores : mapping of str to int
            Running workers and their threads.
        holders : sequence of sequence of str
            Workers holding a copy of each block, the one its tasks run on first.

        Returns
        -------
        dict of str to list of int
            Worker -> sorted blocks to copy to it (workers with nothing to get are absent).
        """
        new = self.idle(ncores, holders)
        if not new:
            return {}
        threads = {w: max(1, int(t)) for w, t in ncores.items()}
        total = sum(threads.values())
        live = [[h for h in hs if h in ncores] for hs in holders]
        load = dict.fromkeys(ncores, 0.0)  # work per thread: tasks run on live[p][0]
        for hs in live:
            if hs:
                load[hs[0]] += 1.0 / threads[hs[0]]
        plan: dict[str, list[int]] = {}
        for w in new:
            picks: list[int] = []
            for _ in range(round(len(holders) * threads[w] / total)):
                candidates = [p for p, hs in enumerate(live) if hs and w not in hs]
                if not candidates:
                    break
                p = min(candidates, key=lambda p: (-load[live[p][0]], len(live[p]), p))
                load[live[p][0]] -= 1.0 / threads[live[p][0]]
                live[p].insert(0, w)
                load[w] += 1.0 / threads[w]
                picks.append(p)
            if picks:
                plan[w] = sorted(picks)
        if plan:
            self.n_plans += 1
        return plan
