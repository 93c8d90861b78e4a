"""Soak: eight asynchronous fits at once on one client keep the driver's memory flat."""

from __future__ import annotations

import pytest

from daskasync.bench.soak import soak
from daskasync.clusters import subprocess_client

MIB = 1 << 20
#: RSS growth allowed from a quarter of the updates to the end (15,000 updates): a leak of
#: one 840-byte object per update (a model vector of 100 floats) breaks it; one leaked result
#: per update added 72 MiB over 10,000 updates. The benchmark script runs 8 x 10,000.
GROWTH_BOUND = 12 * MIB


@pytest.mark.slow
def test_eight_concurrent_fits_keep_driver_memory_flat():
    # the scheduler in its own process (as on a real cluster): the RSS is the driver's alone
    with subprocess_client(2, 1) as client:
        out = soak(client, n_fits=8, n_updates=2_500, n_partitions=4, sample_every=0.5,
                   warmup=0.25)
    start, peak, end = (out[f"rss_{k}_bytes"] / MIB for k in ("start", "peak", "end"))
    print(f"\ndriver RSS: start {start:.1f} MiB, peak {peak:.1f} MiB, end {end:.1f} MiB; "
          f"{out['updates']} updates in {out['wall_time_s']:.0f} s")
    assert out["n_fits"] == 8 and out["n_updates"] == 2_500 and out["updates"] == 20_000
    assert len(out["samples"]) >= 10
    assert out["futures_after"] == 0
    assert out["rss_growth_bytes"] < GROWTH_BOUND, (start, peak, end)
