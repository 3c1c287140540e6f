"""Background workers give way to ingest during a burst (hub/runtime/pacing.py), with a controlled clock."""

from __future__ import annotations

import pytest

from hub.runtime.pacing import WINDOW, IngestMeter, Pacer


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_quiet_hub_never_pauses_background_work():
    clock = Clock()
    meter = IngestMeter(clock)
    pacer = Pacer(meter, share=0.05, busy_above_per_second=50, clock=clock)
    for _ in range(10):  # 5 messages a second
        meter.arrived()
    assert meter.per_second() == 10 / WINDOW
    assert pacer.pause_after(clock.now - 1.0, clock.now) == 0.0  # a one-second batch, no burst
    assert Pacer(None).pause_after(0.0, 5.0) == 0.0  # no meter: never paced


def test_during_a_burst_work_keeps_to_its_share_and_resumes_after():
    clock = Clock()
    meter = IngestMeter(clock)
    pacer = Pacer(meter, share=0.05, busy_above_per_second=50, clock=clock)
    for _ in range(400):  # 200 messages a second
        meter.arrived()
    # A 0.3 s batch: 5% of the 2 s window is 0.1 s, so 0.2 s of excess, slept off at a 5% share.
    assert pacer.pause_after(clock.now - 0.3, clock.now) == pytest.approx(0.2 / 0.05)
    clock.now += WINDOW + 0.1  # the burst is over: the arrivals have left the window
    assert meter.per_second() == 0
    assert pacer.pause_after(clock.now - 0.3, clock.now) == 0.0
