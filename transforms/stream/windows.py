"""Event-time windows for the streaming graph, and the per-window Parquet writer (stream-only).

Event time is an article's ``published_at``, else the time its entry was fetched (the element
timestamp the source gave it). Records are written in fixed event-time windows under the same
output contract as a batch run, with the window's UTC date as the ``ingest_date`` partition:

``OUT/<table>/ingest_date=YYYY-MM-DD/part-<run_id>-w<window start>-<digest>.parquet``

The digest is a hash of the row ids of the pane, so a file name names its content: writing the
same pane twice replaces a file with identical rows, and a different pane never overwrites one.

With an ``IndexPanes`` target (the articles table), each pane's rows are then added to the
cross-run index as one file, ``<index>/run=<run_id>/part-w<window start>[-late]-<digest>.parquet``,
signed with MinHash (``stream.dedup.signed_entries``): after the pane's own file, so the index
never names an article that was not written; a rewritten pane rewrites the same index file.

Late data is never dropped. A stateful gate keyed by window marks a window closed once the
watermark passes its end plus the allowed lateness; records that arrive for a closed window take
the late-data path and are written at once to their window's partition in a ``-late-`` file,
with a counter. Records within the allowed lateness join a late pane of their window (also a
``-late-`` file). The windowed ``GroupByKey`` itself never drops: a window the gate has not seen
yet cannot be known closed (a DoFn does not see the watermark), so its late records must still
reach a pane.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, userstate, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import PaneInfoTiming
from news_ingest.transforms import files
from news_ingest.transforms.dedup import MinHasher, NearParams
from news_ingest.transforms.schema import ROW_ID, TABLES, UTC, Article, stable_id, to_table
from news_ingest.transforms.sinks import (
    check_writer_args,
    shard_of,
    stream_index_path,
    write_index_file,
    write_parquet,
)
from news_ingest.transforms.stream.dedup import signed_entries

STAGE = "window"
LATE = "late"
ON_TIME = "on_time"

# The GroupByKey keeps windows open this long (about 100 years), so it never drops a record;
# the gate above it applies the configured allowed lateness.
_NEVER_DROP_S = 100 * 365 * 86400


def to_timestamp(value: dt.datetime) -> Timestamp:
    """A Beam timestamp of an aware or naive (taken as UTC) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return Timestamp.from_utc_datetime(value.astimezone(UTC))


def window_start(ts: Timestamp | float, size_s: float) -> Timestamp:
    """Start of the fixed window of ``size_s`` seconds holding ``ts`` (windows start at epoch)."""
    micros = Timestamp.of(ts).micros
    size = round(size_s * 1_000_000)
    return Timestamp(micros=micros - micros % size)


def window_label(start: Timestamp) -> str:
    """The window part of a file name: its start as ``YYYYMMDDTHHMMSSZ``."""
    return start.to_utc_datetime(has_tz=True).strftime("%Y%m%dT%H%M%SZ")


def pane_path(
    output: str,
    name: str,
    run_id: str,
    start: Timestamp,
    row_ids: Iterable[str],
    late: bool,
    ingest_date: dt.date,
) -> str:
    """Where a pane of ``name`` rows for the window starting at ``start`` is written: under
    the ``ingest_date`` partition (when the rows were ingested, as in a batch run; the event
    time's window is in the file name)."""
    digest = stable_id(*sorted(row_ids))[:16]
    kind = "-late" if late else ""
    return files.join(
        output,
        name,
        f"ingest_date={ingest_date.isoformat()}",
        f"part-{run_id}-w{window_label(start)}{kind}-{digest}.parquet",
    )


def write_pane(
    name: str,
    rows: list[dict[str, Any]],
    output: str,
    run_id: str,
    start: Timestamp,
    late: bool,
    ingest_date: dt.date,
) -> tuple[str, str, int]:
    """Write one pane (rows sorted by id) atomically; return (table, path, rows)."""
    key = ROW_ID[name]
    rows = sorted(rows, key=lambda r: (r[key], r.get("source_ref") or ""))
    path = pane_path(output, name, run_id, start, (r[key] for r in rows), late, ingest_date)
    write_parquet(to_table(rows, TABLES[name]), name, path)
    return name, path, len(rows)


def event_time(article: Article, fallback: Timestamp) -> Timestamp:
    """The event time of an article: ``published_at``, else ``fallback`` (the fetch time)."""
    if article.published_at is not None:
        return to_timestamp(article.published_at)
    return fallback


class _AssignEventTime(beam.DoFn):
    def __init__(self) -> None:
        self.from_published = Metrics.counter(STAGE, "event_time:published_at")
        self.from_fetch = Metrics.counter(STAGE, "event_time:fetched_at")

    def process(self, article: Any, ts: Any = beam.DoFn.TimestampParam) -> Iterable[Any]:
        inner = article.article if hasattr(article, "duplicate_of") else article
        if isinstance(inner, Article) and inner.published_at is not None:
            self.from_published.inc()
            yield window.TimestampedValue(article, event_time(inner, ts))
        else:
            self.from_fetch.inc()
            yield article


class AssignEventTime(beam.PTransform):
    """Re-stamp articles (or duplicates) with their event time: ``published_at``, else the
    element timestamp the source gave them (the fetch time)."""

    def expand(self, records):  # type: ignore[no-untyped-def]
        return records | "StampPublishedAt" >> beam.ParDo(_AssignEventTime())


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """Fixed event-time windows and how long they stay open for late data."""

    size_s: float
    allowed_lateness_s: float

    def __post_init__(self) -> None:
        if self.size_s <= 0:
            raise ValueError(f"window size must be positive, got {self.size_s}")
        if self.allowed_lateness_s < 0:
            raise ValueError(
                f"allowed lateness must not be negative, got {self.allowed_lateness_s}"
            )


_CLOSED = userstate.ReadModifyWriteStateSpec("closed", beam.coders.BooleanCoder())
_CLOSE = userstate.TimerSpec("close", TimeDomain.WATERMARK)
# DoFn parameters as module-level singletons (Beam reads them from argument defaults).
_CLOSED_PARAM = beam.DoFn.StateParam(_CLOSED)
_CLOSE_PARAM = beam.DoFn.TimerParam(_CLOSE)


class _LatenessGate(beam.DoFn):
    """Keyed by window start: passes records while their window is open, routes the rest late.

    A window closes when the watermark passes its end plus the allowed lateness, the moment
    after which a windowed ``GroupByKey`` would drop its records.
    """

    def __init__(self, spec: WindowSpec, table: str):
        self.spec = spec
        self.late = Metrics.counter(STAGE, f"late_records:{table}")
        self.on_time = Metrics.counter(STAGE, f"on_time_records:{table}")

    def process(
        self,
        keyed: tuple[int, Any],
        ts: Any = beam.DoFn.TimestampParam,
        closed: Any = _CLOSED_PARAM,
        close: Any = _CLOSE_PARAM,
    ) -> Iterable[Any]:
        start_micros, row = keyed
        if closed.read():
            self.late.inc()
            yield pvalue.TaggedOutput(LATE, window.TimestampedValue((start_micros, row), ts))
            return
        self.on_time.inc()
        end = Timestamp(micros=start_micros) + self.spec.size_s
        close.set(end + self.spec.allowed_lateness_s)
        yield window.TimestampedValue(row, ts)

    @userstate.on_timer(_CLOSE)
    def on_close(self, closed: Any = _CLOSED_PARAM) -> None:
        closed.write(True)


@dataclasses.dataclass(frozen=True)
class IndexPanes:
    """Where the pane writer adds kept articles to the cross-run index, signed under
    ``params`` (the ``dedup:`` section)."""

    folder: str
    params: NearParams


class _PaneWriter(beam.DoFn):
    """Writes panes of one table; with an ``IndexPanes`` target, each written pane's rows are
    then added to the index."""

    def __init__(
        self, name: str, output: str, run_id: str, ingest_date: dt.date, index: IndexPanes | None
    ):
        self.name = name
        self.output = output
        self.run_id = run_id
        self.ingest_date = ingest_date
        self.index = index

    def setup(self) -> None:
        index = self.index
        self.hasher = MinHasher(index.params) if index is not None and index.params.near else None
        self.indexed = Metrics.counter(STAGE, f"index_files:{self.name}")

    def write(
        self, rows: list[dict[str, Any]], start: Timestamp, late: bool
    ) -> tuple[str, str, int]:
        written = write_pane(
            self.name, rows, self.output, self.run_id, start, late, self.ingest_date
        )
        if self.index is not None and rows:
            # the pane's file name without "part-<run_id>-" and ".parquet": window and digest
            label = files.basename(written[1])[len(f"part-{self.run_id}-") : -len(".parquet")]
            entries = signed_entries(rows, self.index.params, self.run_id, self.hasher)
            write_index_file(entries, stream_index_path(self.index.folder, self.run_id, label))
            self.indexed.inc()
        return written


class _WriteWindowPane(_PaneWriter):
    def setup(self) -> None:
        super().setup()
        self.files = Metrics.counter(STAGE, f"files:{self.name}")
        self.late_panes = Metrics.counter(STAGE, f"late_panes:{self.name}")

    def process(
        self,
        keyed: tuple[int, Iterable[dict[str, Any]]],
        win: Any = beam.DoFn.WindowParam,
        pane: Any = beam.DoFn.PaneInfoParam,
    ) -> Iterable[tuple[str, str, int]]:
        late = pane.timing == PaneInfoTiming.LATE
        if late:
            self.late_panes.inc()
        self.files.inc()
        yield self.write(list(keyed[1]), win.start, late)


class _WriteLateRecords(_PaneWriter):
    def setup(self) -> None:
        super().setup()
        self.files = Metrics.counter(STAGE, f"late_files:{self.name}")

    def process(
        self, keyed: tuple[tuple[int, int], Iterable[dict[str, Any]]]
    ) -> Iterable[tuple[str, str, int]]:
        (start_micros, _shard), rows = keyed
        self.files.inc()
        yield self.write(list(rows), Timestamp(micros=start_micros), True)


class WriteWindowed(beam.PTransform):
    """Timestamped records -> Parquet panes of table ``name``, one set of files per window.

    Args:
        name: ``articles``, ``duplicates`` or ``dead_letters``.
        output: the output root.
        run_id: the run id (file names carry it and the window).
        to_row: record -> row dict of the table's schema.
        spec: window size and allowed lateness.
        ingest_date: the partition the files go to (the UTC date the rows were ingested).
        shards: files per pane (and parallel writers).
        index: add each written pane's rows to the cross-run index (articles only).

    Returns a PCollection of ``(table, path, rows)`` for every file written.
    """

    def __init__(
        self,
        name: str,
        output: str,
        run_id: str,
        to_row: Callable[[Any], dict[str, Any]],
        spec: WindowSpec,
        ingest_date: dt.date,
        shards: int = 1,
        index: IndexPanes | None = None,
    ):
        super().__init__()
        check_writer_args(name, run_id, shards)
        if index is not None and name != "articles":
            raise ValueError(f"only kept articles are indexed, not {name}")
        self.index = index
        self.name = name
        self.output = output
        self.run_id = run_id
        self.to_row = to_row
        self.spec = spec
        self.ingest_date = ingest_date
        self.shards = shards

    def expand(self, records):  # type: ignore[no-untyped-def]
        key, shards, size = ROW_ID[self.name], self.shards, self.spec.size_s
        gated = (
            records
            | "ToRows" >> beam.Map(self.to_row)
            | "KeyByWindow"
            >> beam.Map(
                lambda row, ts=beam.DoFn.TimestampParam: (window_start(ts, size).micros, row)
            )
            | "GateLateRecords"
            >> beam.ParDo(_LatenessGate(self.spec, self.name)).with_outputs(LATE, main=ON_TIME)
        )
        on_time = (
            gated[ON_TIME]
            | "FixedWindows"
            >> beam.WindowInto(
                window.FixedWindows(size),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                allowed_lateness=_NEVER_DROP_S,
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
            )
            | "KeyByShard" >> beam.Map(lambda row: (shard_of(row[key], shards), row))
            | "GroupPanes" >> beam.GroupByKey()
            | "WritePanes"
            >> beam.ParDo(
                _WriteWindowPane(self.name, self.output, self.run_id, self.ingest_date, self.index)
            )
        )
        late = (
            gated[LATE]
            | "KeyLateByWindow"
            >> beam.Map(lambda kv: ((kv[0], shard_of(kv[1][key], shards)), kv[1]))
            | "LateRecordsNow"
            >> beam.WindowInto(
                window.GlobalWindows(),
                trigger=trigger.Repeatedly(trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
            )
            | "GroupLate" >> beam.GroupByKey()
            | "WriteLate"
            >> beam.ParDo(
                _WriteLateRecords(self.name, self.output, self.run_id, self.ingest_date, self.index)
            )
        )
        # The written-file records of both paths, in one windowing so they can be flattened.
        on_time = on_time | "OnTimeFilesGlobal" >> beam.WindowInto(window.GlobalWindows())
        late = late | "LateFilesGlobal" >> beam.WindowInto(window.GlobalWindows())
        return (on_time, late) | "AllFiles" >> beam.Flatten()
