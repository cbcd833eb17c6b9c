"""Closed-form cases of the copy stream: one transfer, FIFO order, demand priority."""

import pytest

from moebench.engine.link import Link


def test_one_transfer_takes_latency_plus_bytes_over_bandwidth(a100):
    from moebench.engine.costs import CostModel

    costs = CostModel(a100, None)
    link = Link()
    copy = link.demand((0, 1), issued=0.5, seconds=costs.transfer_sec(50e6))
    assert copy.start == 0.5
    assert copy.end == pytest.approx(0.5 + 7e-6 + 50e6 / 25e9)


def test_copies_are_fifo_on_one_stream():
    link = Link()
    a = link.prefetch((0, 0), issued=0.0, seconds=1.0)
    b = link.prefetch((0, 1), issued=0.0, seconds=1.0)
    assert (a.start, a.end, b.start, b.end) == (0.0, 1.0, 1.0, 2.0)


def test_demand_goes_ahead_of_prefetches_not_started():
    link = Link()
    running = link.prefetch((0, 0), issued=0.0, seconds=1.0)
    queued = link.prefetch((0, 1), issued=0.0, seconds=1.0)
    demand = link.demand((1, 5), issued=0.5, seconds=1.0)
    assert (demand.start, demand.end) == (1.0, 2.0)  # after the copy in progress
    assert (queued.start, queued.end) == (2.0, 3.0)  # pushed back
    assert running.end == 1.0
    assert [c.key for c in link.copies] == [(0, 0), (1, 5), (0, 1)]


def test_copy_waits_for_its_slot_to_be_free():
    link = Link()
    copy = link.demand((0, 3), issued=0.0, seconds=1.0, not_before=2.5)
    assert copy.start == 2.5
