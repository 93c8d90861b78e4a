"""Soak: eight asynchronous fits at once on one client keep the driver's memory flat."""

from __future__ import annotations

import pytest

from daskasync.bench.soak import soak
from daskasync.clusters import subprocess_client

MIB = 1 << 20
#: RSS growth allowed from 10% of the updates to the end. A leak of one 300-byte object per
#: update (80,000 updates) would add 23 MiB; a model vector (100 floats) per update, 69 MiB.
GROWTH_BOUND = 16 * MIB


@pytest.mark.slow
def test_eight_concurrent_fits_keep_driver_memory_flat():
    # the scheduler in its own process (as on a real cluster): the RSS is the driver's alone
    with subprocess_client(2, 1) as client:
        out = soak(client, n_fits=8, n_updates=10_000, n_partitions=4, sample_every=0.5)
    start, peak, end = (out[f"rss_{k}_bytes"] / MIB for k in ("start", "peak", "end"))
    print(f"\ndriver RSS: start {start:.1f} MiB, peak {peak:.1f} MiB, end {end:.1f} MiB; "
          f"{out['updates']} updates in {out['wall_time_s']:.0f} s")
    assert out["n_fits"] == 8 and out["n_updates"] == 10_000 and out["updates"] == 80_000
    assert len(out["samples"]) >= 10
    assert out["futures_after"] == 0
    assert out["rss_growth_bytes"] < GROWTH_BOUND, (start, peak, end)
