"""RingBuffer: wrap-around, exact content over random block sizes, overrun policy, threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from streamer.ring import RingBuffer


def test_wraparound_keeps_order():
    ring = RingBuffer(8)
    ring.write(np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(), np.arange(5))
    ring.write(np.arange(5, 11, dtype=np.float32))  # crosses the end of storage
    assert ring.available == 6
    np.testing.assert_array_equal(ring.read(), np.arange(5, 11))
    assert ring.available == 0 and ring.total_written == 11 and ring.overrun_samples == 0
    assert ring.read().shape == (0,)


@pytest.mark.parametrize("channels", [1, 3])
def test_content_preserved_over_random_block_sizes(channels):
    rng = np.random.default_rng(1)
    capacity = 257
    ring = RingBuffer(capacity, channels=channels)
    source = rng.standard_normal((20000, channels)).astype(np.float32)
    pos, out = 0, []
    while pos < len(source):
        # Never let the backlog exceed capacity: this test is about lossless transport.
        room = capacity - ring.available
        n = min(int(rng.integers(1, capacity + 1)), room, len(source) - pos)
        block = source[pos:pos + n]
        ring.write(block[:, 0] if channels == 1 else block)
        pos += n
        take = ring.read(max_frames=int(rng.integers(0, capacity + 1)))
        out.append(take.reshape(-1, channels))
    out.append(ring.read().reshape(-1, channels))
    np.testing.assert_array_equal(np.concatenate(out), source)
    assert ring.overrun_samples == 0 and ring.total_written == len(source)


def test_read_shapes_and_max_frames():
    ring = RingBuffer(16, channels=2)
    ring.write(np.arange(20, dtype=np.float32).reshape(10, 2))
    first = ring.read(max_frames=3)
    assert first.shape == (3, 2)
    np.testing.assert_array_equal(first[:, 1], [1, 3, 5])
    assert ring.available == 7
    assert ring.read(max_frames=0).shape == (0, 2)


def test_overrun_overwrites_oldest_and_counts():
    ring = RingBuffer(10)
    ring.write(np.arange(25, dtype=np.float32))  # 15 frames too many, unread
    assert ring.available == 10
    assert ring.overrun_samples == 15
    np.testing.assert_array_equal(ring.read(), np.arange(15, 25))  # the newest survive
    assert ring.overrun_samples == 15
    ring.write(np.arange(25, 31, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(), np.arange(25, 31))  # no further loss
    ring.write(np.arange(31, 43, dtype=np.float32))  # one oversized block
    np.testing.assert_array_equal(ring.read(), np.arange(33, 43))
    assert ring.overrun_samples == 17
    assert ring.total_written == 43


def test_reset_clears_data_and_counters():
    ring = RingBuffer(4)
    ring.write(np.ones(9, np.float32))
    ring.reset()
    assert (ring.available, ring.total_written, ring.overrun_samples) == (0, 0, 0)
    ring.write(np.full(2, 7, np.float32))
    np.testing.assert_array_equal(ring.read(), [7, 7])


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="channels"):
        RingBuffer(4, channels=0)
    with pytest.raises(ValueError, match="does not match"):
        RingBuffer(4, channels=2).write(np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match="1-D"):
        RingBuffer(4, channels=2).write(np.zeros(3, np.float32))


# Small blocks: the GIL serialises copies. Large ones: numpy drops the GIL mid-copy, so
# writes really overlap reads and the seqlock check in read() has to discard frames.
@pytest.mark.parametrize("capacity, block, max_frames, total",
                         [(512, 37, 300, 400_000), (100_000, 20_000, None, 4_000_000)])
def test_concurrent_producer_consumer_loses_only_counted_frames(capacity, block, max_frames, total):
    """A producer thread writes a ramp; whatever the consumer gets is an in-order subsequence
    and every missing frame is accounted for in overrun_samples."""
    ring = RingBuffer(capacity, dtype=np.float64)
    done = threading.Event()

    def produce():
        ramp = np.arange(total, dtype=np.float64)
        for i in range(0, total, block):
            ring.write(ramp[i:i + block])
        done.set()

    got = []
    thread = threading.Thread(target=produce)
    thread.start()
    while not done.is_set() or ring.available:
        got.append(ring.read(max_frames=max_frames))
    thread.join()
    data = np.concatenate(got)
    assert np.all(np.diff(data) >= 1)  # strictly increasing: nothing torn, reordered or repeated
    gaps = int(np.sum(np.diff(data) - 1)) + int(data[0])
    assert gaps == ring.overrun_samples
    assert len(data) + ring.overrun_samples == total
    assert data[-1] == total - 1
