"""Carry events from a producer thread (the pipeline) into the server's event loop, bounded and non-blocking."""
from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["EventBridge", "QUEUE_MAX"]

QUEUE_MAX = 1000  # events waiting for the event loop; if it stalls this long, the oldest are dropped (counted)


class EventBridge:
    """An async iterator of the items ``put`` into it; ``None`` ends it, an exception is raised from it.

    ``put`` must run in the event loop: a producer thread calls ``loop.call_soon_threadsafe(bridge.put, item)``,
    so the producer never waits. Beyond ``max_items`` waiting, the oldest are dropped and counted in ``dropped``.
    """

    def __init__(self, *, max_items: int = QUEUE_MAX):
        self.items: deque = deque()
        self.dropped = 0
        self.max_items = max_items
        self.ready = asyncio.Event()

    def put(self, item) -> None:
        if len(self.items) >= self.max_items:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)
        self.ready.set()

    async def events(self):
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.items:
                item = self.items.popleft()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
