"""Streaming deduplication with state and timers, on the pure keeper logic of ``dedup``
(stream-only).

Two stateful steps, both keyed and in the global window (state and timers belong to the
streaming graph only; the batch graph groups instead), and one lookup:

* ``SeenFilter``: drops an input whose key (feed entry guid or URL, file path) was already seen
  within ``ttl_s`` of event time, so a feed polled again emits only its new entries.
* ``StreamDedup``: the exact relations of batch dedup (same canonical URL, then same
  ``content_hash``) with copies that may arrive in different windows. A
  streaming job cannot take back what it wrote, so the first copy to arrive is kept and every
  later copy, in any window, becomes a ``Duplicate`` of it (batch instead chooses the keeper
  by ``dedup.keeper_key`` among all copies). A keeper is remembered for ``ttl_s`` of event time
  after its last copy. ``known`` carries what earlier runs (batch runs and streams) kept: the
  keys of the one cross-run index (``KnownIndex``), so a copy of an article written by an
  earlier run is a duplicate too.
* near duplicates of the index: each article left is signed (MinHash, the batch dedup's
  ``dedup:`` parameters) and looked up in the index entries' LSH bands; a verified match
  (``dedup.near_similarity``) makes it a ``near`` duplicate of that earlier run's article. Kept
  articles are added to the index with the same signatures (``signed_entries``, by the pane
  writer), so a later batch run finds near copies of what a stream kept, and the next round
  of the stream does too. Near copies that arrive within one round (or one unbounded job)
  are not compared with each other: that needs an LSH band state, future work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import StrUtf8Coder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Timestamp
from news_ingest.transforms.dedup import (
    IndexEntry,
    MinHasher,
    NearParams,
    Node,
    band_keys,
    entry_of_row,
    estimated_jaccard,
    hash_key,
    is_live,
    known_keys,
    near_similarity,
    url_key,
)
from news_ingest.transforms.schema import DEDUP_EXACT, DEDUP_NEAR, DEDUP_URL, Article, Duplicate

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


@dataclasses.dataclass(frozen=True)
class KnownIndex:
    """The live entries of the cross-run index as a stream looks them up: dedup key -> kept
    article id (``dedup.known_keys``), and the signed entries' nodes by LSH band key."""

    keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
    nodes: Mapping[str, Node] = dataclasses.field(default_factory=dict)
    bands: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(
        cls, entries: Iterable[IndexEntry], not_before: dt.datetime | None, params: NearParams
    ) -> KnownIndex:
        """The lookup of the entries live at ``not_before`` (the run's start less the TTL);
        signatures under other MinHash parameters are not used (``IndexEntry.node``)."""
        live = [e for e in entries if is_live(e, not_before)]
        nodes: dict[str, Node] = {}
        bands: dict[str, set[str]] = {}
        if params.near:
            for entry in live:
                node = entry.node(params)
                if node.signature is None or node.shingle_count == 0:
                    continue
                nodes.setdefault(entry.article_id, node)
                for key in band_keys(node.signature, params):
                    bands.setdefault(key, set()).add(entry.article_id)
        return cls(known_keys(live, None), nodes, {k: tuple(sorted(v)) for k, v in bands.items()})

    def near_match(
        self, signature: bytes, shingle_count: int, params: NearParams
    ) -> tuple[str, float] | None:
        """The earlier run's article a text of this signature is a near duplicate of, and the
        estimated Jaccard similarity; among several, the batch keeper rule's first
        (``Node.sort_key``). None without a verified match."""
        if not self.bands or shingle_count == 0:
            return None
        candidates = {a for key in band_keys(signature, params) for a in self.bands.get(key, ())}
        matches = []
        for article_id in candidates:
            node = self.nodes[article_id]
            assert node.signature is not None
            similar = near_similarity(
                signature, shingle_count, node.signature, node.shingle_count, params
            )
            if similar is not None:
                matches.append(node)
        if not matches:
            return None
        keeper = min(matches, key=lambda n: n.sort_key)
        assert keeper.signature is not None
        return keeper.article_id, round(estimated_jaccard(signature, keeper.signature), 6)


def signed_entries(
    rows: Sequence[dict[str, Any]],
    params: NearParams,
    run_id: str,
    hasher: MinHasher | None = None,
) -> list[IndexEntry]:
    """The index entries of written article rows, with the MinHash signature of their text
    under ``params`` (as the batch dedup signs articles), so later runs find near copies."""
    if params.near and hasher is None:
        hasher = MinHasher(params)
    entries = []
    for row in rows:
        entry = entry_of_row(row, params, run_id)
        if hasher is not None:
            signature, count = hasher.signature(row["text"])
            entry = dataclasses.replace(entry, signature=signature, shingle_count=count)
        entries.append(entry)
    return entries


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


class _NearIndex(beam.DoFn):
    """An article is a near duplicate of the earlier run's article its signature matches in
    the index (``KnownIndex.near_match``), else it goes on."""

    def __init__(self, params: NearParams, known: KnownIndex):
        self.params = params
        self.known = known

    def setup(self) -> None:
        self.hasher = MinHasher(self.params) if self.params.near and self.known.bands else None
        self.dropped = Metrics.counter(STAGE, f"duplicates:{DEDUP_NEAR}")
        self.known_hits = Metrics.counter(STAGE, f"index_hits:{DEDUP_NEAR}")

    def process(self, article: Article) -> Iterable[Any]:
        if self.hasher is not None:
            signature, count = self.hasher.signature(article.text)
            match = self.known.near_match(signature, count, self.params)
            if match is not None:
                self.dropped.inc()
                self.known_hits.inc()
                kept_id, similarity = match
                yield pvalue.TaggedOutput(
                    DUPLICATES, Duplicate(article, kept_id, DEDUP_NEAR, similarity)
                )
                return
        yield article


class StreamDedup(beam.PTransform):
    """Timestamped Article -> (kept Article, Duplicate): same canonical URL, then same text,
    then near duplicates of the index.

    Args:
        ttl_s: how long (event time) after its last copy a keeper is remembered.
        known: what earlier runs kept (a ``KnownIndex``, or just its dedup keys:
            ``url:...``/``hash:...`` -> article_id).
        params: the ``dedup:`` section (MinHash parameters of the near lookup).
    """

    def __init__(
        self,
        *,
        ttl_s: float,
        known: KnownIndex | Mapping[str, str] | None = None,
        params: NearParams | None = None,
    ):
        super().__init__()
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.ttl_s = ttl_s
        if not isinstance(known, KnownIndex):
            known = KnownIndex(keys=dict(known or {}))
        self.known = known
        self.params = params or NearParams()

    def expand(self, articles):  # type: ignore[no-untyped-def]
        ttl, keys = self.ttl_s, self.known.keys
        by_url, url_dups = articles | "SameURL" >> _StreamDedupBy(url_key, DEDUP_URL, ttl, keys)
        by_text, hash_dups = by_url | "SameText" >> _StreamDedupBy(hash_key, DEDUP_EXACT, ttl, keys)
        near = by_text | "NearIndex" >> beam.ParDo(
            _NearIndex(self.params, self.known)
        ).with_outputs(DUPLICATES, main=KEPT)
        duplicates = (url_dups, hash_dups, near[DUPLICATES]) | "MergeDuplicates" >> beam.Flatten()
        return near[KEPT], duplicates
