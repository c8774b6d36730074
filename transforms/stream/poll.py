"""The in-pipeline feed source of the unbounded streaming graph (Dataflow, Flink).

A ``PeriodicImpulse`` ticks; on each tick every feed, keyed by its URL, is polled through the
one poller of both drivers (``news_ingest.transforms.feeds.poll_feed``) if its own
``poll_interval`` has passed. The feed's ``FeedState`` (the same validators and poll time the
batch graph and the stream launcher keep) lives in keyed state, and, when a ``feeds.state_dir``
is configured, in the same ``FeedStateStore`` too, so a restarted job, a stream launcher and a
batch run continue one feed's conditional GETs. Entries become work through the shared
``entry_work``; which of them were seen before is the streaming graph's ``SeenFilter``'s concern.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms import userstate
from news_ingest.transforms.feeds import (
    STAGE,
    FeedSource,
    FeedStateStore,
    count_poll,
    entry_work,
    poll_feed,
)
from news_ingest.transforms.fetch import FetcherDoFn
from news_ingest.transforms.web.http import FetchPolicy

_FEED_STATE = userstate.ReadModifyWriteStateSpec("feed_state", PickleCoder())
_FEED_STATE_PARAM = beam.DoFn.StateParam(_FEED_STATE)


class _PollFeed(FetcherDoFn):
    """Keyed by feed URL: on each tick, poll the feed if due and emit the work of its entries
    (page requests, or documents of their own content, or dead letters)."""

    def __init__(
        self,
        policy: FetchPolicy,
        max_bytes: int,
        max_entries: int,
        fetch_pages: bool,
        state_dir: str | None,
    ):
        super().__init__(policy)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.fetch_pages = fetch_pages
        self.state_dir = state_dir

    def setup(self) -> None:
        super().setup()
        self.store = FeedStateStore(self.state_dir)

    def process(
        self, keyed: tuple[str, FeedSource], feed_state: Any = _FEED_STATE_PARAM
    ) -> Iterator[Any]:
        _url, source = keyed
        state = feed_state.read()
        if state is None:
            state = self.store.load(source.url)
        polled = poll_feed(
            self.fetcher, source, state, time.time(), self.max_bytes, self.max_entries
        )
        if polled.state != state:
            feed_state.write(polled.state)
            self.store.save(source.url, polled.state)
        count_poll(STAGE, polled)
        if polled.dead is not None:
            # counted as ApplyStage counts the batch graph's poll failures
            Metrics.counter(STAGE, f"reason:{polled.dead.reason}").inc()
            yield polled.dead
        for entry in polled.entries:
            yield entry_work(entry, self.fetch_pages)


class PollFeedsForever(beam.PTransform):
    """An unbounded source of feed work (page requests, documents, dead letters) for runners
    that run splittable DoFns in streaming mode (Dataflow, Flink): every ``tick_s`` seconds
    each feed is polled if its own interval has passed, and its entries' work is emitted,
    timestamped with the poll time."""

    def __init__(
        self,
        feeds: Sequence[FeedSource],
        policy: FetchPolicy,
        tick_s: float,
        max_bytes: int,
        max_entries: int,
        fetch_pages: bool = True,
        state_dir: str | None = None,
        stop_after_s: float | None = None,
    ):
        super().__init__()
        if not feeds:
            raise ValueError("PollFeedsForever needs at least one feed")
        if tick_s <= 0 or max_bytes <= 0 or max_entries <= 0:
            raise ValueError("tick_s, max_bytes and max_entries must be positive")
        self.feeds = list(feeds)
        self.tick_s = tick_s
        self.dofn = _PollFeed(policy, max_bytes, max_entries, fetch_pages, state_dir)
        self.stop_after_s = stop_after_s

    def expand(self, pbegin):  # type: ignore[no-untyped-def]
        from apache_beam.transforms.periodicsequence import PeriodicImpulse

        start = time.time()
        bounds: dict[str, Any] = {"start_timestamp": start, "fire_interval": self.tick_s}
        if self.stop_after_s is not None:
            bounds["stop_timestamp"] = start + self.stop_after_s
        feeds = self.feeds
        return (
            pbegin
            | "Tick" >> PeriodicImpulse(**bounds)
            | "EveryFeed" >> beam.FlatMap(lambda _tick: [(f.url, f) for f in feeds])
            | "PollIfDue" >> beam.ParDo(self.dofn)
        )
