"""Deduplication: same canonical URL, same content hash, near-duplicate text, across runs.

Every article and every entry of the cross-run index is a *node*. Three kinds of evidence
connect nodes with edges:

* **url**: the same canonical URL;
* **exact**: the same ``content_hash`` (computed after cleaning, so copies that differed only in
  boilerplate or wrapping are equal here);
* **near**: MinHash over word shingles, LSH banding to find candidates, and every candidate pair
  verified by its estimated Jaccard similarity (or, for truncated copies, containment).

Connected components of that graph (union-find) are the duplicate clusters. Each cluster keeps
one article, chosen by an order-independent rule (``keeper_key``): an article kept by an earlier
run first (it is already published), then the earliest ``published_at``, then more text, then
more metadata, then the smallest ``article_id``. Every other new article of the cluster becomes a
``Duplicate`` of the keeper with the kind of its relation *to the keeper* (url, exact, near).

The decision logic (shingles, signatures, band keys, verification, union-find, cluster
resolution) is pure and at the top of the module, so the streaming graph can reuse it with
state and timers; the Beam wrapper at the bottom is a handful of GroupByKeys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from news_ingest.transforms import lsh
from news_ingest.transforms.lsh import SIGNATURE_DTYPE, UnionFind, check_banding
from news_ingest.transforms.schema import (
    DEDUP_EXACT,
    DEDUP_NEAR,
    DEDUP_URL,
    UTC,
    Article,
    Duplicate,
    StagedRef,
    Verdict,
    compact_pickle,
)
from news_ingest.transforms.text import words

STAGE = "dedup"
DUPLICATES = "duplicates"
KEPT = "kept"
INDEXED = "indexed"

ENGINE = "rensa-0.5"

_FAR_FUTURE = 2**62


# --------------------------------------------------------------------------------------------
# Parameters


@dataclasses.dataclass(frozen=True)
class NearParams:
    """How articles are deduplicated: the ``dedup:`` section of the config itself.

    Attributes:
        near: also find near duplicates (False: same URL and exact content hash only).
        threshold: minimum estimated Jaccard similarity of the shingle sets.
        containment: minimum estimated share of the shorter text's shingles found in the longer
            one; catches truncated copies whose Jaccard falls under ``threshold``. 0 disables it.
        min_length_ratio: containment only counts when the shorter text has at least this share
            of the longer one's shingles (a one-paragraph brief is not a copy of a long report).
        shingle_size: words per shingle.
        num_perm: MinHash permutations (signature length).
        bands: LSH bands; ``num_perm / bands`` rows per band.
        seed: MinHash seed; signatures are only comparable under equal parameters.
        max_bucket: LSH buckets with more members compare each member with the bucket's cluster
            representatives only, instead of with every earlier member (bounds quadratic work).
        index: remember kept articles across runs (a later run marks copies as duplicates).
        index_path: folder of the cross-run index; None: ``OUTPUT/_index``.
        ttl: seconds a kept article is remembered (batch runs and streams alike): an index
            entry older than this (by when its article was ingested) no longer matches, and
            index files whose entries are all older are deleted, so the index shrinks.
    """

    near: bool = True
    threshold: float = 0.8
    containment: float = 0.85
    min_length_ratio: float = 0.6
    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 32
    seed: int = 1
    max_bucket: int = 200
    index: bool = True
    index_path: str | None = None
    # metadata: the config loader reads "30d", "12h" ... into seconds
    ttl: float = dataclasses.field(default=30 * 86400.0, metadata={"duration": True})

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.containment <= 1.0:
            raise ValueError(f"containment must be in [0, 1], got {self.containment}")
        if not 0.0 <= self.min_length_ratio <= 1.0:
            raise ValueError(f"min_length_ratio must be in [0, 1], got {self.min_length_ratio}")
        if self.shingle_size < 1:
            raise ValueError(f"shingle_size must be at least 1, got {self.shingle_size}")
        check_banding(self.num_perm, self.bands, self.max_bucket)
        if self.ttl <= 0:
            raise ValueError(f"ttl must be positive, got {self.ttl}")

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands

    @property
    def fingerprint(self) -> str:
        """What makes two signatures comparable (stored with each index entry)."""
        return f"{ENGINE};k={self.shingle_size};perm={self.num_perm};seed={self.seed}"

    def candidate_probability(self, jaccard: float) -> float:
        """Probability that a pair with this Jaccard similarity shares at least one band."""
        return float(1.0 - (1.0 - jaccard**self.rows) ** self.bands)


# --------------------------------------------------------------------------------------------
# Shingles, signatures, band keys, verification


def shingle_set(text: str, size: int = 5) -> set[str]:
    """The distinct ``size``-token shingles of a text (``news_ingest.transforms.text``: words, and
    characters of scripts without spaces); a shorter text is one shingle."""
    tokens = words(text)
    if len(tokens) <= size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def shingles(text: str, size: int = 5) -> list[str]:
    """``shingle_set`` as a sorted list."""
    return sorted(shingle_set(text, size))


class MinHasher:
    """Computes MinHash signatures with rensa (measured 4x faster than datasketch's default and
    as accurate; see the README). Build one per worker in ``DoFn.setup``."""

    def __init__(self, params: NearParams):
        from rensa import RMinHash

        self.params = params
        self._make = RMinHash

    def signature(self, text: str) -> tuple[bytes, int]:
        """(signature as little-endian uint32 bytes, number of distinct shingles)."""
        # MinHash is a minimum over the set: the order of the shingles does not matter.
        grams = shingle_set(text, self.params.shingle_size)
        sketch = self._make(self.params.num_perm, self.params.seed)
        if grams:
            sketch.update(list(grams))
        digest = np.asarray(sketch.digest(), dtype=SIGNATURE_DTYPE)
        return digest.tobytes(), len(grams)


def as_array(signature: bytes) -> np.ndarray:
    return np.frombuffer(signature, dtype=SIGNATURE_DTYPE)


def band_keys(signature: bytes, params: NearParams) -> list[str]:
    """One LSH key per band (``news_ingest.transforms.lsh.band_keys`` under these parameters)."""
    return lsh.band_keys(signature, params.bands, params.rows)


def estimated_jaccard(a: bytes, b: bytes) -> float:
    """Share of equal MinHash values: an unbiased estimate of the Jaccard similarity."""
    return float(np.count_nonzero(as_array(a) == as_array(b))) / (
        len(a) // SIGNATURE_DTYPE.itemsize
    )


def estimated_containment(jaccard: float, size_a: int, size_b: int) -> float:
    """Estimated share of the smaller shingle set found in the larger, from the Jaccard
    estimate and the exact set sizes: ``|A n B| = J / (1 + J) * (|A| + |B|)``."""
    smaller = min(size_a, size_b)
    if smaller <= 0:
        return 0.0
    overlap = jaccard / (1.0 + jaccard) * (size_a + size_b)
    return min(1.0, overlap / smaller)


def near_similarity(
    a: bytes, size_a: int, b: bytes, size_b: int, params: NearParams
) -> float | None:
    """The estimated Jaccard similarity when the pair is a near duplicate, else None.

    A pair is a near duplicate when its estimated Jaccard reaches ``threshold``, or when the
    shorter text is at least ``min_length_ratio`` of the longer and its estimated containment in
    the longer reaches ``containment`` (a truncated copy).
    """
    if size_a == 0 or size_b == 0:
        return None
    jaccard = estimated_jaccard(a, b)
    if jaccard >= params.threshold:
        return jaccard
    comparable = min(size_a, size_b) >= params.min_length_ratio * max(size_a, size_b)
    if params.containment > 0 and comparable:
        contained = estimated_containment(jaccard, size_a, size_b)
        if contained >= params.containment:
            return jaccard
    return None


# --------------------------------------------------------------------------------------------
# Nodes and the keeper rule


def metadata_score(article: Article) -> int:
    """How many metadata fields an article has filled."""
    fields = (
        article.title,
        article.published_at,
        article.dateline,
        article.publisher,
        article.distributor,
        article.language,
        article.url,
    )
    return sum(1 for f in fields if f) + len(article.authors) + len(article.credits)


def _timestamp(value: dt.datetime | None) -> float:
    if value is None:
        return float(_FAR_FUTURE)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def keeper_key(article: Article) -> tuple[Any, ...]:
    """Sort key of the keeper rule among new articles: earliest ``published_at`` (unknown
    last), then more text, then more metadata, then the smallest ``article_id``."""
    return (
        _timestamp(article.published_at),
        -article.word_count,
        -metadata_score(article),
        article.article_id,
        article.source_ref,
    )


NEW = "a"
PRIOR = "i"


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """What dedup needs to know about an article of this run or an index entry of an earlier
    run. ``signature`` is None until computed (one per distinct content hash) or when an index
    entry was written with other MinHash parameters.

    Nodes are what the dedup groupings hold (decoded, in memory, on Beam's local runner), so
    they are slotted and pickle compactly (``__reduce__``: field values only, without the
    parts of the node id and keeper rank that repeat the article id and source)."""

    node_id: str
    article_id: str
    prior: bool
    rank: tuple[Any, ...]
    canonical_url: str | None
    content_hash: str | None
    signature: bytes | None = None
    shingle_count: int = 0
    # Carried along for the verdict and the index entry of a new article; not part of what
    # dedup decides on.
    source_ref: str = dataclasses.field(default="", compare=False)
    published_at: dt.datetime | None = dataclasses.field(default=None, compare=False)
    staged: StagedRef | None = dataclasses.field(default=None, compare=False)

    @property
    def sort_key(self) -> tuple[Any, ...]:
        # Earlier runs' articles win: they are published already and must not be shadowed.
        return (0 if self.prior else 1, *self.rank)

    def __reduce__(self) -> tuple[Any, ...]:
        ids = (self.article_id, self.source_ref)
        node_id = None if self.node_id == _new_node_id(*ids) else self.node_id
        tail = len(self.rank) >= 2 and self.rank[-2:] == ids
        staged = None if self.staged is None else (self.staged.path, self.staged.row)
        return (
            _unreduce_node,
            (
                node_id,
                self.article_id,
                self.prior,
                self.rank[:-2] if tail else self.rank,
                tail,
                self.canonical_url,
                self.content_hash,
                self.signature,
                self.shingle_count,
                self.source_ref,
                self.published_at,
                staged,
            ),
        )


def _new_node_id(article_id: str, source_ref: str) -> str:
    return f"{NEW}:{article_id}:{source_ref}"


def _unreduce_node(
    node_id: str | None,
    article_id: str,
    prior: bool,
    rank: tuple[Any, ...],
    tail: bool,
    canonical_url: str | None,
    content_hash: str | None,
    signature: bytes | None,
    shingle_count: int,
    source_ref: str,
    published_at: dt.datetime | None,
    staged: tuple[str, int] | None,
) -> Node:
    return Node(
        node_id if node_id is not None else _new_node_id(article_id, source_ref),
        article_id,
        prior,
        (*rank, article_id, source_ref) if tail else rank,
        canonical_url,
        content_hash,
        signature,
        shingle_count,
        source_ref,
        published_at,
        None if staged is None else StagedRef(*staged),
    )


def node_of(article: Article) -> Node:
    """The node of a new article (without its signature)."""
    return Node(
        node_id=_new_node_id(article.article_id, article.source_ref),
        article_id=article.article_id,
        prior=False,
        rank=keeper_key(article),
        canonical_url=article.canonical_url,
        content_hash=article.content_hash,
        source_ref=article.source_ref,
        published_at=article.published_at,
    )


def signed_node(article: Article, hasher: MinHasher | None) -> Node:
    """The node of a new article with its MinHash signature (``hasher`` None: no near
    duplicates, no signature)."""
    node = node_of(article)
    if hasher is None:
        return node
    signature, count = hasher.signature(article.text)
    return dataclasses.replace(node, signature=signature, shingle_count=count)


def verdict_of(decision: Decision) -> Verdict:
    """The verdict of a decision on a staged article (ids and the staged row only)."""
    node = decision.node
    assert node.staged is not None, "a new article's node carries its staged row"
    return Verdict(
        article_id=node.article_id,
        source_ref=node.source_ref,
        staged=node.staged,
        duplicate_of=decision.duplicate_of,
        dedup_kind=decision.kind,
        similarity=decision.similarity,
    )


def pick_keeper(articles: Iterable[Article], kind: str) -> tuple[Article, list[Duplicate]]:
    """Split a group of copies into the kept article and the duplicates of it."""
    ordered = sorted(articles, key=keeper_key)
    kept = ordered[0]
    return kept, [Duplicate(a, kept.article_id, kind, 1.0) for a in ordered[1:]]


# --------------------------------------------------------------------------------------------
# Edges and clusters


Edge = tuple[str, str, str]  # (node_id, node_id, kind); the smaller id first


def edge(a: str, b: str, kind: str) -> Edge:
    return (a, b, kind) if a < b else (b, a, kind)


def star_edges(nodes: Sequence[Node], kind: str) -> list[Edge]:
    """Edges joining a group of nodes known to be copies (same URL or same hash): each to the
    group's best node. Nothing when the group holds no new article (earlier runs resolved it)."""
    if len(nodes) < 2 or all(n.prior for n in nodes):
        return []
    ordered = sorted(nodes, key=lambda n: n.sort_key)
    head = ordered[0].node_id
    return [edge(head, n.node_id, kind) for n in ordered[1:] if n.node_id != head]


def bucket_edges(nodes: Sequence[Node], params: NearParams) -> list[Edge]:
    """Verified near-duplicate edges among the nodes sharing one LSH band key.

    Members are compared in ``node_id`` order; each is compared with every earlier member, or,
    in buckets larger than ``max_bucket``, with the representative of each local cluster found
    so far (linear instead of quadratic; a copy then joins through the representative). Only a
    spanning set of edges is returned (each verified pair's components are merged once). Pairs
    of index entries are skipped: earlier runs resolved them.
    """
    members = sorted(
        (n for n in nodes if n.signature is not None and n.shingle_count > 0),
        key=lambda n: n.node_id,
    )
    if len(members) < 2 or all(n.prior for n in members):
        return []

    def verify(a: Node, b: Node) -> bool:
        assert a.signature is not None and b.signature is not None
        return (
            near_similarity(a.signature, a.shingle_count, b.signature, b.shingle_count, params)
            is not None
        )

    pairs = lsh.spanning_pairs(
        members, verify, params.max_bucket, skip=lambda a, b: a.prior and b.prior
    )
    return [edge(a.node_id, b.node_id, DEDUP_NEAR) for a, b in pairs]


def components(edges: Iterable[Edge]) -> dict[str, str]:
    """node_id -> component root (its smallest node_id) for every node on an edge."""
    uf = UnionFind()
    for a, b, _kind in edges:
        uf.union(a, b)
    return uf.components()


@dataclasses.dataclass(frozen=True)
class Resolution:
    """The outcome of one duplicate cluster: kept new article (None when an earlier run's
    article is the keeper) and the duplicates of the keeper."""

    kept: Article | None
    duplicates: list[Duplicate]


@compact_pickle
@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What dedup decided for one new article's node: kept (``duplicate_of`` None) or a copy of
    ``duplicate_of``. Decisions carry ids only; they are joined back to the articles once."""

    node: Node
    duplicate_of: str | None = None
    kind: str | None = None
    similarity: float = 1.0
    of_earlier_run: bool = False


def decide_cluster(nodes: Sequence[Node]) -> list[Decision]:
    """Choose the keeper of a cluster and describe every other new node relative to it.

    Args:
        nodes: all nodes of the cluster (new articles and index entries).

    Returns:
        One decision per new node: the keeper's (kept; none when an earlier run's article is
        the keeper), then the copies in keeper order. A copy's ``kind`` is ``url`` when it has
        the keeper's canonical URL, ``exact`` when it has its content hash, else ``near`` with
        the estimated Jaccard similarity to the keeper (which may be under the threshold when
        the copy joined the cluster through another copy).
    """
    ordered = sorted(nodes, key=lambda n: n.sort_key)
    keeper = ordered[0]
    signatures: dict[str, bytes] = {}
    for n in ordered:
        if n.signature is not None and n.content_hash and n.content_hash not in signatures:
            signatures[n.content_hash] = n.signature
    keeper_sig = keeper.signature or signatures.get(keeper.content_hash or "")
    decisions = [] if keeper.prior else [Decision(keeper)]
    for n in ordered[1:]:
        if n.prior:
            continue
        if keeper.canonical_url and n.canonical_url == keeper.canonical_url:
            kind, sim = DEDUP_URL, 1.0
        elif keeper.content_hash and n.content_hash == keeper.content_hash:
            kind, sim = DEDUP_EXACT, 1.0
        else:
            own = n.signature or signatures.get(n.content_hash or "")
            kind = DEDUP_NEAR
            sim = estimated_jaccard(own, keeper_sig) if own and keeper_sig else float("nan")
        decisions.append(Decision(n, keeper.article_id, kind, round(sim, 6), keeper.prior))
    return decisions


def resolve_cluster(nodes: Sequence[Node], articles: dict[str, Article]) -> Resolution:
    """``decide_cluster`` applied to the cluster's new articles (``node_id`` -> Article).

    Returns:
        The kept article (or None) and the duplicates of the keeper.
    """
    kept: Article | None = None
    dups: list[Duplicate] = []
    for d in decide_cluster(nodes):
        article = articles.get(d.node.node_id)
        if article is None:
            continue
        if d.duplicate_of is None:
            kept = article
        else:
            assert d.kind is not None
            dups.append(Duplicate(article, d.duplicate_of, d.kind, d.similarity))
    return Resolution(kept, dups)


# --------------------------------------------------------------------------------------------
# The cross-run index (records; the Parquet I/O lives in transforms/sinks.py)


@dataclasses.dataclass(frozen=True)
class IndexEntry:
    """An article kept by a run, as remembered by later runs."""

    article_id: str
    canonical_url: str | None
    content_hash: str | None
    published_at: dt.datetime | None
    word_count: int
    signature: bytes | None
    shingle_count: int
    fingerprint: str
    run_id: str
    # When the article was ingested (UTC); None in index files written before it was recorded
    # (those never expire).
    indexed_at: dt.datetime | None = None

    def node(self, params: NearParams) -> Node:
        usable = self.signature is not None and self.fingerprint == params.fingerprint
        return Node(
            node_id=f"{PRIOR}:{self.article_id}",
            article_id=self.article_id,
            prior=True,
            rank=(_timestamp(self.published_at), -self.word_count, 0, self.article_id, ""),
            canonical_url=self.canonical_url,
            content_hash=self.content_hash,
            signature=self.signature if usable else None,
            shingle_count=self.shingle_count if usable else 0,
        )


def entry_of_node(node: Node, params: NearParams) -> IndexEntry:
    """The index entry of a kept new article from its node (``run_id`` is stamped by the
    writer): what ``index_entry`` gives for its article."""
    signature = node.signature
    return IndexEntry(
        article_id=node.article_id,
        canonical_url=node.canonical_url,
        content_hash=node.content_hash,
        published_at=node.published_at,
        word_count=-int(node.rank[1]),
        signature=signature,
        shingle_count=node.shingle_count if signature else 0,
        fingerprint=params.fingerprint,
        run_id="",
    )


def index_entry(article: Article, node: Node | None, params: NearParams) -> IndexEntry:
    """The index entry of a kept article (``run_id`` is stamped by the writer)."""
    signature = node.signature if node is not None else None
    return IndexEntry(
        article_id=article.article_id,
        canonical_url=article.canonical_url,
        content_hash=article.content_hash,
        published_at=article.published_at,
        word_count=article.word_count,
        signature=signature,
        shingle_count=node.shingle_count if node is not None and signature else 0,
        fingerprint=params.fingerprint,
        run_id="",
    )


# --------------------------------------------------------------------------------------------
# Beam wrapper

_NODE = "node"
_ROOT = "root"
_SKETCH = "sketch"
_EDGE = "edge"
_DECISION = "decision"


def _url_key(node: Node) -> Iterator[tuple[str, Node]]:
    if node.canonical_url:
        yield node.canonical_url, node


class _ToNode(beam.DoFn):
    """Article -> its signed node (``signed_node``), where its text is."""

    def __init__(self, params: NearParams):
        self.params = params

    def setup(self) -> None:
        self.hasher = MinHasher(self.params) if self.params.near else None
        self.signatures = Metrics.counter(STAGE, "signatures")

    def process(self, article: Article) -> Iterable[Node]:
        if self.hasher is not None:
            self.signatures.inc()
        yield signed_node(article, self.hasher)


class ToNodes(beam.PTransform):
    """Article -> signed Node, for ``Deduplicate`` on articles that are not staged (tests,
    benchmarks); the batch graph signs where it stages (``news_ingest.transforms.staging``)."""

    def __init__(self, params: NearParams | None = None):
        super().__init__()
        self.params = params or NearParams()

    def expand(self, articles):  # type: ignore[no-untyped-def]
        return articles | "SignNodes" >> beam.ParDo(_ToNode(self.params))


def _unsigned(node: Node) -> Node:
    return dataclasses.replace(node, signature=None, shingle_count=0)


class _GroupByText(beam.DoFn):
    """One content hash: exact-duplicate edges, every node, and one sketch per distinct text
    (the head's; equal content hashes mean equal word sequences, hence equal shingles). New
    nodes other than the head drop their signature: the head's stands for the text."""

    def __init__(self, params: NearParams):
        self.params = params

    def process(self, keyed: tuple[str, Iterable[Node]]) -> Iterable[Any]:
        nodes = sorted(keyed[1], key=lambda n: n.sort_key)
        for e in star_edges(nodes, DEDUP_EXACT):
            yield pvalue.TaggedOutput(_EDGE, e)
        head = nodes[0]
        if self.params.near and head.signature is None:
            signed = sorted(
                (n for n in nodes if not n.prior and n.signature is not None),
                key=lambda n: n.node_id,
            )
            if signed:
                head = dataclasses.replace(
                    head, signature=signed[0].signature, shingle_count=signed[0].shingle_count
                )
        if self.params.near and head.signature is not None:
            yield pvalue.TaggedOutput(_SKETCH, head)
        yield head
        for n in nodes[1:]:
            yield n if n.prior else _unsigned(n)


class _GroupByURL(beam.DoFn):
    def process(self, keyed: tuple[str, Iterable[Node]]) -> Iterable[Edge]:
        yield from star_edges(list(keyed[1]), DEDUP_URL)


def _sketch(node: Node) -> tuple[bytes, Node]:
    """A head node as its LSH sketch, keyed by its member key: only what ``bucket_edges``
    reads goes."""
    sketch = Node(node.node_id, "", node.prior, (), None, None, node.signature, node.shingle_count)
    return lsh.member_key(node.node_id), sketch


def _sketch_bands(node: Node, params: NearParams) -> list[str]:
    if node.shingle_count > 0 and node.signature is not None:
        return band_keys(node.signature, params)
    return []


class _BandEdges(beam.DoFn):
    def __init__(self, params: NearParams):
        self.params = params

    def setup(self) -> None:
        self.buckets = Metrics.counter(STAGE, "lsh_buckets_compared")
        self.large = Metrics.counter(STAGE, "lsh_buckets_over_max")

    def process(self, keyed: tuple[str, Iterable[Node]]) -> Iterable[Edge]:
        nodes = list(keyed[1])
        if len(nodes) < 2:
            return
        self.buckets.inc()
        if len(nodes) > self.params.max_bucket:
            self.large.inc()
        yield from bucket_edges(nodes, self.params)


def _roots(keyed: tuple[int, Iterable[Edge]]) -> Iterator[tuple[str, str]]:
    yield from sorted(components(keyed[1]).items())


def _attach_root(keyed: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """A node in no cluster is kept (a decision at once); any other goes to its cluster."""
    _node_id, joined = keyed
    roots, nodes = list(joined[_ROOT]), list(joined[_NODE])
    for node in nodes:
        if not roots:
            if not node.prior:
                yield pvalue.TaggedOutput(_DECISION, Decision(node))
        else:
            yield roots[0], node


class _SplitDecisions(beam.DoFn):
    """Decisions -> kept (main), duplicates and the index entries of the kept, counted."""

    def __init__(self, params: NearParams):
        self.params = params

    def setup(self) -> None:
        self.kept = Metrics.counter(STAGE, "kept")
        self.by_kind = {
            k: Metrics.counter(STAGE, f"duplicates:{k}")
            for k in (DEDUP_URL, DEDUP_EXACT, DEDUP_NEAR)
        }
        self.earlier = Metrics.counter(STAGE, "duplicates_of_earlier_runs")

    def process(self, decision: Decision) -> Iterable[Any]:
        if decision.duplicate_of is None:
            self.kept.inc()
            yield decision
            yield pvalue.TaggedOutput(INDEXED, entry_of_node(decision.node, self.params))
            return
        self.by_kind[decision.kind].inc()
        if decision.of_earlier_run:
            self.earlier.inc()
        yield pvalue.TaggedOutput(DUPLICATES, decision)


class Deduplicate(beam.PTransform):
    """Signed Node of each new article -> (kept Decision, duplicate Decision, IndexEntry of
    each kept article).

    Shuffles carry ids, not text: each article became a ``Node`` (ids, URL, content hash,
    keeper rank, signature, where its row is staged) where its text was (``ToNodes``, or the
    batch graph's staging step), and the groupings (by text, URL, LSH band, cluster) move
    only nodes and edges. The decisions are applied to the staged rows by the table writers
    (``news_ingest.transforms.split``), the way datatrove's MinHash steps move ``(file, doc)``
    ids and re-read documents only to filter.

    Args:
        params: the ``dedup:`` section (``None``: the defaults).
        index: optional PCollection of ``IndexEntry`` of earlier runs (without this run's own
            entries, so that a rerun reproduces its output).

    The union-find is one global step: every verified edge is grouped under a single key and
    resolved by one worker. That is correct on every runner and needs no iteration; its limit is
    memory: edges exist only between copies (a spanning set per group or LSH bucket, made
    distinct), about one per duplicate at ~200 bytes, so ~10^7 duplicates per run fit one
    worker. Past that, replace this step with an iterative connected-components algorithm
    (large-star/small-star) over the same edges.
    """

    def __init__(self, params: NearParams | None = None, index: Any = None):
        super().__init__()
        self.params = params or NearParams()
        self.index = index

    def expand(self, new_nodes):  # type: ignore[no-untyped-def]
        params = self.params
        node_sets = [new_nodes]
        if self.index is not None:
            node_sets.append(self.index | "IndexNodes" >> beam.Map(lambda e: e.node(params)))
        by_text = (
            node_sets
            | "MergeNodes" >> beam.Flatten()
            | "KeyByText" >> beam.Map(lambda n: (n.content_hash or n.article_id, n))
            | "GroupByText" >> beam.GroupByKey()
            | "ExactEdges"
            >> beam.ParDo(_GroupByText(params)).with_outputs(_EDGE, _SKETCH, main=_NODE)
        )
        nodes = by_text[_NODE]
        edge_sets = [
            by_text[_EDGE],
            nodes
            | "KeyByURL" >> beam.FlatMap(_url_key)
            | "GroupByURL" >> beam.GroupByKey()
            | "URLEdges" >> beam.ParDo(_GroupByURL()),
        ]
        if params.near:
            edge_sets.append(
                by_text[_SKETCH]
                | "KeySketches" >> beam.Map(_sketch)
                | "NearCandidates"
                >> lsh.GroupCandidates(functools.partial(_sketch_bands, params=params))
                | "NearEdges" >> beam.ParDo(_BandEdges(params))
            )
        roots = (
            edge_sets
            | "AllEdges" >> beam.Flatten()
            | "DistinctEdges" >> beam.Distinct()
            | "OneKey" >> beam.Map(lambda e: (0, e))
            | "GatherEdges" >> beam.GroupByKey()
            | "UnionFind" >> beam.FlatMap(_roots)
        )
        # Only nodes (ids, hashes, signatures, keeper ranks) cross the groupings up to here.
        attached = (
            {_NODE: nodes | "KeyNodes" >> beam.Map(lambda n: (n.node_id, n)), _ROOT: roots}
            | "JoinRoots" >> beam.CoGroupByKey()
            | "AttachRoots" >> beam.FlatMap(_attach_root).with_outputs(_DECISION, main=_ROOT)
        )
        clustered = (
            attached[_ROOT]
            | "GroupByCluster" >> beam.GroupByKey()
            | "PickKeepers" >> beam.FlatMap(lambda kv: decide_cluster(list(kv[1])))
        )
        decisions = (attached[_DECISION], clustered) | "AllDecisions" >> beam.Flatten()
        applied = decisions | "SplitDecisions" >> beam.ParDo(_SplitDecisions(params)).with_outputs(
            INDEXED, DUPLICATES, main=KEPT
        )
        return applied[KEPT], applied[DUPLICATES], applied[INDEXED]


# --------------------------------------------------------------------------------------------
# Decisions against the index shared by both drivers. The batch graph joins index entries into
# its clusters (``IndexEntry.node``); the streaming graph looks them up by the same keys.


def url_key(article: Article) -> str:
    """Dedup key of the URL relation: the canonical URL, or the article itself without one."""
    return f"url:{article.canonical_url}" if article.canonical_url else f"id:{article.article_id}"


def hash_key(article: Article) -> str:
    """Dedup key of the exact relation: the hash of the normalized text."""
    return f"hash:{article.content_hash}"


def entry_keys(canonical_url: str | None, content_hash: str | None) -> list[str]:
    """The dedup keys under which a kept article is remembered across runs."""
    keys = [f"hash:{content_hash}"] if content_hash else []
    if canonical_url:
        keys.insert(0, f"url:{canonical_url}")
    return keys


def index_keys(article: Article) -> list[str]:
    """The dedup keys of a kept article (``entry_keys`` of its URL and content hash)."""
    return entry_keys(article.canonical_url, article.content_hash)


def is_live(entry: IndexEntry, not_before: dt.datetime | None) -> bool:
    """Whether an index entry still counts: it was ingested at or after ``not_before`` (the
    run's start less ``ttl``), or its ingestion time is unknown."""
    return not_before is None or entry.indexed_at is None or entry.indexed_at >= not_before


def known_keys(entries: Iterable[IndexEntry], not_before: dt.datetime | None) -> dict[str, str]:
    """Dedup key -> article id of the live entries; where several entries share a key, the
    earliest ingested keeps it (as the first copy to arrive is kept in a stream)."""
    known: dict[str, str] = {}
    far = dt.datetime.max.replace(tzinfo=UTC)
    live = [e for e in entries if is_live(e, not_before)]
    for entry in sorted(live, key=lambda e: (e.indexed_at or far, e.article_id)):
        for key in entry_keys(entry.canonical_url, entry.content_hash):
            known.setdefault(key, entry.article_id)
    return known


def entry_of_row(row: dict[str, Any], params: NearParams, run_id: str) -> IndexEntry:
    """The index entry of a written article row (a stream's kept article), without its
    signature: ``transforms.stream.dedup.signed_entries`` signs it from the row's text."""
    return IndexEntry(
        article_id=row["article_id"],
        canonical_url=row.get("canonical_url"),
        content_hash=row.get("content_hash"),
        published_at=row.get("published_at"),
        word_count=int(row.get("word_count") or 0),
        signature=None,
        shingle_count=0,
        fingerprint=params.fingerprint,
        run_id=run_id,
        indexed_at=row.get("ingested_at"),
    )
