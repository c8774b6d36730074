"""Stream-only building blocks: the Beam transforms only the streaming graph uses (state,
timers, event-time windows, an unbounded source). The batch graph never imports this package.

* ``poll``: ``PollFeedsForever``, the in-pipeline feed source of the unbounded graph (Dataflow,
  Flink), on the one poller and feed state of ``news_ingest.transforms.feeds``;
* ``dedup``: ``SeenFilter`` and ``StreamDedup`` (state and timers), on the pure decisions and
  the one cross-run index of ``news_ingest.transforms.dedup``;
* ``windows``: event time, fixed windows with a lateness gate, and the per-pane Parquet writer
  that also adds each pane's kept articles, with signatures, to the cross-run index.

Shared by both drivers (and so outside this package): the core (``transforms/core.py``), the
feed poller (``transforms/feeds.py``), the dedup decisions and index records
(``transforms/dedup.py``), the Parquet and index I/O (``transforms/sinks.py``).
"""
