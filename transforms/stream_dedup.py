"""Streaming deduplication with state and timers, on the pure keeper logic of ``dedup``.

Two stateful steps, both keyed and in the global window (state and timers belong to the
streaming graph only; the batch graph groups instead):

* ``SeenFilter``: drops an input whose key (feed entry guid or URL, file path) was already seen
  within ``ttl_s`` of event time, so a feed polled again emits only its new entries.
* ``StreamDedup``: the exact relations of batch dedup (same canonical URL, then same
  ``content_hash``) with copies that may arrive in different windows. A
  streaming job cannot take back what it wrote, so the first copy to arrive is kept and every
  later copy, in any window, becomes a ``Duplicate`` of it (batch instead chooses the keeper
  by ``dedup.keeper_key`` among all copies). A keeper is remembered for ``ttl_s`` of event time
  after its last copy. ``known`` carries what earlier runs (batch runs and streams) kept: the
  keys of the one cross-run index (``news_ingest.transforms.dedup.known_keys``), so a copy of an article
  written by an earlier run is a duplicate too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import StrUtf8Coder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Timestamp
from news_ingest.transforms.dedup import hash_key, url_key
from news_ingest.transforms.schema import DEDUP_EXACT, DEDUP_URL, Article, Duplicate

STAGE = "dedup"
SEEN_STAGE = "seen"
DUPLICATES = "duplicates"
KEPT = "kept"


def decide(
    article: Article, kept_id: str | None, kind: str
) -> tuple[Article | None, list[Duplicate]]:
    """Decide one arriving copy: kept when its key has no keeper yet, else a duplicate of it.

    Returns (the article when it is kept, else None; the duplicates).
    """
    if kept_id is None:
        return article, []
    return None, [Duplicate(article, kept_id, kind, 1.0)]


# State and timer specs, and the DoFn parameters naming them (module-level singletons, as
# Beam's signature inspection needs them as argument defaults).
_SEEN = userstate.ReadModifyWriteStateSpec("seen", VarIntCoder())
_SEEN_EXPIRE = userstate.TimerSpec("expire", TimeDomain.WATERMARK)
_SEEN_PARAM = beam.DoFn.StateParam(_SEEN)
_SEEN_EXPIRE_PARAM = beam.DoFn.TimerParam(_SEEN_EXPIRE)
_KEPT_ID = userstate.ReadModifyWriteStateSpec("kept_id", StrUtf8Coder())
_LAST_TS = userstate.ReadModifyWriteStateSpec("last_ts", VarIntCoder())
_KEPT_EXPIRE = userstate.TimerSpec("expire", TimeDomain.WATERMARK)
_KEPT_ID_PARAM = beam.DoFn.StateParam(_KEPT_ID)
_LAST_TS_PARAM = beam.DoFn.StateParam(_LAST_TS)
_KEPT_EXPIRE_PARAM = beam.DoFn.TimerParam(_KEPT_EXPIRE)


class _SeenFilter(beam.DoFn):
    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self.new = Metrics.counter(SEEN_STAGE, "new")
        self.repeated = Metrics.counter(SEEN_STAGE, "repeated")

    def process(
        self,
        keyed: tuple[str, Any],
        ts: Any = beam.DoFn.TimestampParam,
        seen: Any = _SEEN_PARAM,
        expire: Any = _SEEN_EXPIRE_PARAM,
    ) -> Iterable[Any]:
        if seen.read():
            self.repeated.inc()
            return
        self.new.inc()
        seen.write(1)
        expire.set(ts + self.ttl_s)
        yield keyed[1]

    @userstate.on_timer(_SEEN_EXPIRE)
    def on_expire(self, seen: Any = _SEEN_PARAM) -> None:
        seen.clear()


class SeenFilter(beam.PTransform):
    """Items -> the items whose ``key_fn`` key was not seen within ``ttl_s`` (event time)."""

    def __init__(self, key_fn: Callable[[Any], str], *, ttl_s: float):
        super().__init__()
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.key_fn = key_fn
        self.ttl_s = ttl_s

    def expand(self, items):  # type: ignore[no-untyped-def]
        return (
            items
            | "KeyBySeenKey"
            >> beam.Map(lambda x, f=self.key_fn: (f(x), x)).with_output_types(
                beam.typehints.Tuple[str, Any]
            )
            | "DropSeen" >> beam.ParDo(_SeenFilter(self.ttl_s))
        )


class _DedupByKey(beam.DoFn):
    """Keyed by a dedup key: the first copy is kept, every later one is its duplicate.

    Decisions are made in ``process`` only. Timers just forget state: outputs emitted from
    event-time timers are not held back by the watermark on every runner (Beam 2.77's Python
    DirectRunner holds it for SDFs only), so a decision made there could reach a closed window.
    """

    def __init__(self, kind: str, ttl_s: float, known: Mapping[str, str]):
        self.kind = kind
        self.ttl_s = ttl_s
        self.known = dict(known)
        self.dropped = Metrics.counter(STAGE, f"duplicates:{kind}")
        self.known_hits = Metrics.counter(STAGE, f"index_hits:{kind}")

    def process(
        self,
        keyed: tuple[str, Article],
        ts: Any = beam.DoFn.TimestampParam,
        kept_id: Any = _KEPT_ID_PARAM,
        last_ts: Any = _LAST_TS_PARAM,
        expire: Any = _KEPT_EXPIRE_PARAM,
    ) -> Iterable[Any]:
        key, article = keyed
        micros = Timestamp.of(ts).micros
        if micros > (last_ts.read() or -(2**62)):
            last_ts.write(micros)
            expire.set(Timestamp(micros=micros) + self.ttl_s)
        kept = kept_id.read()
        if kept is None and key in self.known:
            kept = self.known[key]
            kept_id.write(kept)
            self.known_hits.inc()
        decided, dups = decide(article, kept, self.kind)
        if decided is not None:
            kept_id.write(decided.article_id)
            yield decided
        for dup in dups:
            self.dropped.inc()
            yield pvalue.TaggedOutput(DUPLICATES, dup)

    @userstate.on_timer(_KEPT_EXPIRE)
    def on_expire(self, kept_id: Any = _KEPT_ID_PARAM, last_ts: Any = _LAST_TS_PARAM) -> None:
        kept_id.clear()
        last_ts.clear()


class _StreamDedupBy(beam.PTransform):
    def __init__(self, key_fn: Any, kind: str, ttl_s: float, known: Mapping[str, str]):
        super().__init__()
        self.key_fn = key_fn
        self.dofn = _DedupByKey(kind, ttl_s, known)

    def expand(self, articles):  # type: ignore[no-untyped-def]
        out = (
            articles
            | "Key"
            >> beam.Map(lambda a, f=self.key_fn: (f(a), a)).with_output_types(
                beam.typehints.Tuple[str, Any]
            )
            | "KeepFirstCopy" >> beam.ParDo(self.dofn).with_outputs(DUPLICATES, main=KEPT)
        )
        return out[KEPT], out[DUPLICATES]


class StreamDedup(beam.PTransform):
    """Timestamped Article -> (kept Article, Duplicate): same canonical URL, then same text.

    Args:
        ttl_s: how long (event time) after its last copy a keeper is remembered.
        known: dedup key (``url:...``/``hash:...``) -> article_id kept by earlier runs.
    """

    def __init__(self, *, ttl_s: float, known: Mapping[str, str] | None = None):
        super().__init__()
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.ttl_s = ttl_s
        self.known = dict(known or {})

    def expand(self, articles):  # type: ignore[no-untyped-def]
        ttl, known = self.ttl_s, self.known
        by_url, url_dups = articles | "SameURL" >> _StreamDedupBy(url_key, DEDUP_URL, ttl, known)
        kept, hash_dups = by_url | "SameText" >> _StreamDedupBy(hash_key, DEDUP_EXACT, ttl, known)
        return kept, (url_dups, hash_dups) | "MergeDuplicates" >> beam.Flatten()
