"""Smoothing and hysteresis on synthetic probability sequences."""
import math

import numpy as np
import pytest

from streamer.smoothing import ExpSmoother, LabelHysteresis, SegmentMean

LABELS = ("a", "b", "c")


def test_exp_smoother_step_response_follows_time_constant():
    s = ExpSmoother(time_constant_s=0.5)
    s.update(np.array([1.0, 0.0, 0.0]), 0.0)
    for k in range(1, 6):  # 0.5 s of a step to class b at 0.1 s hops
        v = s.update(np.array([0.0, 1.0, 0.0]), 0.1 * k)
    assert v[1] == pytest.approx(1 - math.exp(-1.0), abs=1e-9)
    assert v.sum() == pytest.approx(1.0)


def test_exp_smoother_skipped_window_uses_actual_dt():
    a, b = ExpSmoother(time_constant_s=0.3), ExpSmoother(time_constant_s=0.3)
    for s in (a, b):
        s.update(np.array([1.0, 0.0]), 0.0)
    a.update(np.array([0.0, 1.0]), 0.1)
    a.update(np.array([0.0, 1.0]), 0.2)
    b.update(np.array([0.0, 1.0]), 0.2)  # one window dropped
    assert np.allclose(a.value, b.value)


def test_exp_smoother_reset_and_zero_tau():
    s = ExpSmoother(time_constant_s=0.0)
    s.update(np.array([1.0, 0.0]), 0.0)
    assert np.array_equal(s.update(np.array([0.2, 0.8]), 0.1), [0.2, 0.8])
    s.reset()
    assert s.value is None
    with pytest.raises(ValueError):
        ExpSmoother(time_constant_s=-1)


def test_hysteresis_ignores_alternating_near_ties():
    h = LabelHysteresis(LABELS, margin=0.1, min_hold_s=0.3)
    shown = [h.update(np.array([0.48, 0.52, 0.0]) if k % 2 else np.array([0.52, 0.48, 0.0]), 0.1 * k)
             for k in range(20)]
    assert set(shown) == {"a"}


def test_hysteresis_switches_after_hold():
    h = LabelHysteresis(LABELS, margin=0.1, min_hold_s=0.3)
    h.update(np.array([0.8, 0.1, 0.1]), 0.0)
    shown = [h.update(np.array([0.1, 0.1, 0.8]), 0.1 * k) for k in range(1, 8)]
    # Challenger first leads at t=0.1; it must hold 0.3 s, so the switch appears at t=0.4 (index 3).
    assert shown[:3] == ["a"] * 3 and shown[3:] == ["c"] * 4


def test_hysteresis_challenger_interrupted_restarts_hold():
    h = LabelHysteresis(LABELS, margin=0.1, min_hold_s=0.3)
    h.update(np.array([0.8, 0.1, 0.1]), 0.0)
    seq = [[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8],
           [0.1, 0.1, 0.8]]
    shown = [h.update(np.array(p), 0.1 * (k + 1)) for k, p in enumerate(seq)]
    # The hold restarts at t=0.4, so the switch shows at t=0.7 (index 6), not at t=0.4.
    assert shown[:6] == ["a"] * 6 and shown[6] == "c"
    h.reset()
    assert h.update(np.array([0.0, 1.0, 0.0]), 9.0) == "b"


def test_segment_mean():
    m = SegmentMean()
    m.update([1.0, 0.0])
    assert np.allclose(m.update([0.0, 1.0]), [0.5, 0.5]) and m.count == 2
    m.reset()
    assert m.value is None
