"""The in-pipeline feed source of the unbounded streaming graph (Dataflow, Flink).

A ``PeriodicImpulse`` ticks; on each tick every feed, keyed by its URL, is polled through the
one poller of both drivers (``news_ingest.transforms.feeds.poll_feed``) if its own
``poll_interval`` has passed. The feed's ``FeedState`` (the same validators and poll time the
batch graph and the stream launcher keep) lives in keyed state, and, when a ``feeds.state_dir``
is configured, in the same ``FeedStateStore`` too, so a restarted job, a stream launcher and a
batch run continue one feed's conditional GETs. Entries become work through the shared
``entry_work``; the work of entries seen before (``feeds.work_item_key``, within ``seen_ttl_s``
of wall time) is not emitted again. That seen set lives here, in the poller's keyed state and
without timers, not only in the graph's ``SeenFilter``: the FnApiRunner runs the stages after
this unbounded source once per round of its output, firing every event-time timer in between,
so the filter's TTL timer forgot each key before the next poll (measured: listed-again entries
were fetched again and written as URL duplicates).
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
    work_item_key,
)
from news_ingest.transforms.fetch import FetcherDoFn
from news_ingest.transforms.web.http import FetchPolicy

_FEED_STATE = userstate.ReadModifyWriteStateSpec("feed_state", PickleCoder())
_SEEN_KEYS = userstate.ReadModifyWriteStateSpec("seen_keys", PickleCoder())
_FEED_STATE_PARAM = beam.DoFn.StateParam(_FEED_STATE)
_SEEN_KEYS_PARAM = beam.DoFn.StateParam(_SEEN_KEYS)


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
        seen_ttl_s: float,
    ):
        super().__init__(policy)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.fetch_pages = fetch_pages
        self.state_dir = state_dir
        self.seen_ttl_s = seen_ttl_s

    def setup(self) -> None:
        super().setup()
        self.store = FeedStateStore(self.state_dir)
        self.new = Metrics.counter(STAGE, "entries_new")
        self.repeated = Metrics.counter(STAGE, "entries_seen")

    def process(
        self,
        keyed: tuple[str, FeedSource],
        feed_state: Any = _FEED_STATE_PARAM,
        seen_keys: Any = _SEEN_KEYS_PARAM,
    ) -> Iterator[Any]:
        _url, source = keyed
        now = time.time()
        state = feed_state.read()
        if state is None:
            state = self.store.load(source.url)
        polled = poll_feed(self.fetcher, source, state, now, self.max_bytes, self.max_entries)
        if polled.state != state:
            feed_state.write(polled.state)
            self.store.save(source.url, polled.state)
        count_poll(STAGE, polled)
        if polled.dead is not None:
            # counted as ApplyStage counts the batch graph's poll failures
            Metrics.counter(STAGE, f"reason:{polled.dead.reason}").inc()
            yield polled.dead
        if not polled.entries:
            return
        seen: dict[str, float] = {
            k: t for k, t in (seen_keys.read() or {}).items() if now - t <= self.seen_ttl_s
        }
        for entry in polled.entries:
            work = entry_work(entry, self.fetch_pages)
            key = work_item_key(work)
            if key in seen:
                self.repeated.inc()
                continue
            seen[key] = now
            self.new.inc()
            yield work
        seen_keys.write(seen)


class PollFeedsForever(beam.PTransform):
    """An unbounded source of feed work (page requests, documents, dead letters) for runners
    that run splittable DoFns in streaming mode (Dataflow, Flink): every ``tick_s`` seconds
    each feed is polled if its own interval has passed, and the work of entries not seen
    within ``seen_ttl_s`` is emitted, timestamped with the poll time."""

    def __init__(
        self,
        feeds: Sequence[FeedSource],
        policy: FetchPolicy,
        tick_s: float,
        max_bytes: int,
        max_entries: int,
        seen_ttl_s: float,
        fetch_pages: bool = True,
        state_dir: str | None = None,
        stop_after_s: float | None = None,
    ):
        super().__init__()
        if not feeds:
            raise ValueError("PollFeedsForever needs at least one feed")
        if tick_s <= 0 or max_bytes <= 0 or max_entries <= 0 or seen_ttl_s <= 0:
            raise ValueError("tick_s, max_bytes, max_entries and seen_ttl_s must be positive")
        self.feeds = list(feeds)
        self.tick_s = tick_s
        self.dofn = _PollFeed(policy, max_bytes, max_entries, fetch_pages, state_dir, seen_ttl_s)
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
