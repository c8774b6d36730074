"""The stream driver (stream-only): ``news-ingest stream`` (feeds and watched folders) and
``replay`` (seed-style files as a timed stream), through one streaming graph with state, timers
and event-time windows. The per-document core, the dedup decisions and the writers are the
shared ones of ``transforms/``; this package only feeds and drains them.

Modules: ``graph`` (the streaming graph), ``sources`` (what a stream reads: feeds, watched
folders, replay schedules, and the work keys), ``state`` (what is kept between rounds),
``launcher`` (the polling loop, stopping), ``manifest`` (finalizing a stream's tables and its
manifest). The stream-only Beam transforms are in ``news_ingest.transforms.stream``; the feed
poller and feed state are the batch graph's (``news_ingest.transforms.feeds``). The ``stream``
and ``replay`` subcommands are defined in ``pipeline/cli.py``.

How it runs here. Beam 2.77's Python DirectRunner runs streaming graphs only on its
bundle-based engine, which cannot expand a splittable DoFn in streaming mode (so no
``PeriodicImpulse`` or other polling source), and whose ``TestStream`` is the one unbounded
source it runs. So the launcher polls (feeds on their own intervals with conditional GET,
watched folders, the replay schedule) and feeds each round's new work to the streaming graph
as a ``TestStream`` on the ``BundleBasedDirectRunner``, named explicitly (Beam's default may try
to download Prism). The graph is the same one ``PollFeedsForever`` feeds on Dataflow/Flink.

Between rounds the launcher keeps, under ``OUT/_stream/``: the seen work keys
(``state.json``) and the watermark (``meta.json``), saved after a round's files are written;
each feed's state in the one feed-state store (``feeds.state_dir``, else ``OUT/_stream/feeds/``);
and the graph adds each written pane's kept articles, signed, to the cross-run index. On start,
rows written after the last save (a crash mid-round) are read back so their inputs are not
written again and their articles are indexed.

Stopping (SIGINT, SIGTERM or ``--duration``) lets the running round finish: its TestStream ends
with the watermark at infinity, so every open window fires and its files are finalized. Then the
manifest is written.
"""
