"""The unbounded graph's feed source: argument checks (its run is in test_stream_e2e)."""

from __future__ import annotations

import pytest
from news_ingest.transforms.feeds import FeedSource
from news_ingest.transforms.stream.poll import PollFeedsForever
from news_ingest.transforms.web.http import FetchPolicy


def test_poll_feeds_forever_checks_its_arguments():
    policy = FetchPolicy()
    feed = [FeedSource("http://x/f")]
    with pytest.raises(ValueError):
        PollFeedsForever([], policy, tick_s=1, max_bytes=10, max_entries=10, seen_ttl_s=1)
    with pytest.raises(ValueError):
        PollFeedsForever(feed, policy, tick_s=0, max_bytes=10, max_entries=1, seen_ttl_s=1)
    with pytest.raises(ValueError):
        PollFeedsForever(feed, policy, tick_s=1, max_bytes=10, max_entries=0, seen_ttl_s=1)
