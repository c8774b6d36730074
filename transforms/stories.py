"""Stories: articles about the same event, written differently, share a ``story_id``.

Method (measured; see the README, "Deduplication and stories"):

1. **Story terms** of an article: the names in its title and lead (the first ``lead_words``
   words): runs of capitalised words, each word and each multi-word name, case-folded, minus a
   short list of capitalised function words. Different outlets paraphrase the text but name the
   same people, places and organisations (Rutte, NATO, Kursk, Pyongyang, ...).
2. **Candidates**: MinHash over the term set, LSH with two rows per band (a GroupByKey on the
   band keys).
3. **Verification**: the exact Jaccard similarity of the two term sets is at least
   ``threshold`` and, when both articles have a publication time, the times are at most
   ``window_hours`` apart (an undated article can join a story of any time: dropping it from
   stories would lose more than the risk of a wrong link).
4. **Stories**: connected components of verified pairs (union-find, one global step as in
   dedup); ``story_id`` is a hash of the smallest ``article_id`` of the component, so it does not
   depend on input order or worker count. An article alone is a story of one.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from news_ingest.transforms import lsh
from news_ingest.transforms.lsh import SIGNATURE_DTYPE, UnionFind, check_banding
from news_ingest.transforms.schema import UTC, Article, Verdict, compact_pickle, stable_id
from news_ingest.transforms.text import lead as text_lead

STAGE = "stories"

_NAME = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'’.-]*)*")
# Capitalised because they open a sentence or a heading, not because they name anything.
_NOT_NAMES_TEXT = """
    a about after according also an and as at but by for from he her his however i if in it its
    more mr mrs ms dr no not of on or our she so some that the their then there these they this
    those to we what when where which while who why with you your yes new over under read more
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december today yesterday picture photo video
"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())


@dataclasses.dataclass(frozen=True)
class StoryParams:
    """How stories are grouped: the ``stories:`` section of the config itself.

    Attributes:
        enabled: give articles about the same event a shared story_id (False: each article is
            its own story; the driver then leaves the stage out).
        threshold: minimum Jaccard similarity of two articles' story terms.
        lead_words: words of the text (after the title) that the terms are taken from.
        window_hours: maximum distance between the publication times of a pair.
        num_perm: MinHash permutations for the candidate search.
        bands: LSH bands (``num_perm / bands`` rows each; 2 rows find pairs at J=0.25 with
            probability 0.98 at 128/64).
        seed: MinHash seed.
        max_bucket: LSH buckets larger than this compare members with local representatives
            only (bounds quadratic work on very common names).
    """

    enabled: bool = True
    threshold: float = 0.25
    lead_words: int = 200
    window_hours: float = 72.0
    num_perm: int = 128
    bands: int = 64
    seed: int = 7
    max_bucket: int = 200

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.lead_words < 1:
            raise ValueError(f"lead_words must be at least 1, got {self.lead_words}")
        if self.window_hours <= 0:
            raise ValueError(f"window_hours must be positive, got {self.window_hours}")
        check_banding(self.num_perm, self.bands, self.max_bucket)

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands


def _fold(word: str) -> str:
    word = word.casefold().strip(".-'’")
    for suffix in ("'s", "’s"):
        if word.endswith(suffix):
            word = word[: -len(suffix)]
    return word


def story_terms(title: str | None, text: str, lead_words: int = 200) -> frozenset[str]:
    """The names in the title and the first ``lead_words`` words of the text."""
    lead = text_lead(text, lead_words)
    terms: set[str] = set()
    for source in (title or "", lead):
        for match in _NAME.finditer(source):
            words = [_fold(w) for w in match.group(0).split()]
            words = [w for w in words if len(w) > 1 and w not in _NOT_NAMES]
            terms.update(words)
            if len(words) > 1:
                terms.add(" ".join(words))
    return frozenset(terms)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@compact_pickle
@dataclasses.dataclass(frozen=True, slots=True)
class StoryTerms:
    """An article's story terms, taken where its text is (no signature yet: only kept articles
    are signed)."""

    node_id: str
    article_id: str
    published: float | None
    terms: frozenset[str]


def terms_of(article: Article, lead_words: int = 200) -> StoryTerms:
    """The ``StoryTerms`` of an article (``node_id``: ``article_id:source_ref``)."""
    published = article.published_at
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return StoryTerms(
        node_id=f"{article.article_id}:{article.source_ref}",
        article_id=article.article_id,
        published=published.timestamp() if published else None,
        terms=story_terms(article.title, article.text, lead_words),
    )


@compact_pickle
@dataclasses.dataclass(frozen=True, slots=True)
class StoryNode:
    """What story grouping needs to know about a kept article."""

    node_id: str
    article_id: str
    published: float | None
    terms: frozenset[str]
    signature: bytes


class TermHasher:
    """MinHash signatures of term sets (rensa; build one per worker in ``DoFn.setup``)."""

    def __init__(self, params: StoryParams):
        from rensa import RMinHash

        self.params = params
        self._make = RMinHash

    def sign(self, terms: StoryTerms) -> StoryNode:
        """The node of an article's story terms, with the MinHash signature of the terms."""
        sketch = self._make(self.params.num_perm, self.params.seed)
        if terms.terms:
            sketch.update(sorted(terms.terms))
        return StoryNode(
            node_id=terms.node_id,
            article_id=terms.article_id,
            published=terms.published,
            terms=terms.terms,
            signature=np.asarray(sketch.digest(), dtype=SIGNATURE_DTYPE).tobytes(),
        )

    def node(self, article: Article) -> StoryNode:
        return self.sign(terms_of(article, self.params.lead_words))


def story_keys(node: StoryNode, params: StoryParams) -> list[str]:
    """LSH keys of a node, one per band (the time window is checked when verifying)."""
    if not node.terms:
        return []
    return lsh.band_keys(node.signature, params.bands, params.rows)


def same_story(a: StoryNode, b: StoryNode, params: StoryParams) -> bool:
    """Verified pair: close enough in story terms and, when both are dated, in time."""
    dated = a.published is not None and b.published is not None
    if dated and abs(a.published - b.published) > params.window_hours * 3600:  # type: ignore[operator]
        return False
    return jaccard(a.terms, b.terms) >= params.threshold


def story_bucket_edges(nodes: Sequence[StoryNode], params: StoryParams) -> list[tuple[str, str]]:
    """Verified story edges among the nodes sharing one LSH key (a spanning set; see
    ``news_ingest.transforms.dedup.bucket_edges`` for the large-bucket rule)."""
    members = sorted({n.node_id: n for n in nodes}.values(), key=lambda n: n.node_id)
    if len(members) < 2:
        return []
    pairs = lsh.spanning_pairs(members, lambda a, b: same_story(a, b, params), params.max_bucket)
    return [(other.node_id, node.node_id) for node, other in pairs]


def story_id_for(article_ids: Iterable[str]) -> str:
    """The id of a story: a hash of its smallest article id."""
    return stable_id("story", min(article_ids))


def assign_stories(nodes: Sequence[StoryNode], edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """node_id -> story_id for every node (the pure, in-memory form of the Beam graph)."""
    uf = UnionFind()
    for node in nodes:
        uf.find(node.node_id)
    for a, b in edges:
        uf.union(a, b)
    members: dict[str, list[str]] = {}
    by_id = {n.node_id: n for n in nodes}
    for node_id, root in uf.components().items():
        members.setdefault(root, []).append(by_id[node_id].article_id)
    return {node_id: story_id_for(members[root]) for node_id, root in uf.components().items()}


def find_stories(articles: Sequence[Article], params: StoryParams) -> dict[str, str]:
    """node_id (``article_id:source_ref``) -> story_id for a list of articles, in memory."""
    hasher = TermHasher(params)
    nodes = [hasher.node(a) for a in articles]
    buckets: dict[str, list[StoryNode]] = {}
    for node in nodes:
        for key in story_keys(node, params):
            buckets.setdefault(key, []).append(node)
    edges = {e for bucket in buckets.values() for e in story_bucket_edges(bucket, params)}
    return assign_stories(nodes, sorted(edges))


# --------------------------------------------------------------------------------------------
# Beam wrapper: over verdicts (ids and staged rows) and story terms, never over text

_TERMS = "terms"
_VERDICT = "verdict"
_STORY = "story"


class _SignKept(beam.DoFn):
    """Story terms joined with the verdict of a kept article -> its signed StoryNode (the
    terms of articles that are not kept go no further)."""

    def __init__(self, params: StoryParams):
        self.params = params

    def setup(self) -> None:
        self.hasher = TermHasher(self.params)

    def process(self, keyed: tuple[str, dict[str, list[Any]]]) -> Iterable[StoryNode]:
        joined = keyed[1]
        if not joined[_VERDICT]:
            return
        for terms in joined[_TERMS][:1]:
            yield self.hasher.sign(terms)


def _sketch(node: StoryNode) -> tuple[bytes, StoryNode]:
    # Only what ``same_story`` and the band keys read goes (no article id).
    return lsh.member_key(node.node_id), dataclasses.replace(node, article_id="")


class _BucketEdges(beam.DoFn):
    def __init__(self, params: StoryParams):
        self.params = params

    def process(self, keyed: tuple[str, Iterable[StoryNode]]) -> Iterable[tuple[str, str]]:
        yield from story_bucket_edges(list(keyed[1]), self.params)


def _story_of_components(
    keyed: tuple[int, Iterable[tuple[str, str]]],
) -> Iterator[tuple[str, str]]:
    uf = UnionFind()
    for a, b in keyed[1]:
        uf.union(a, b)
    groups: dict[str, list[str]] = {}
    comps = uf.components()
    for node_id, root in comps.items():
        groups.setdefault(root, []).append(node_id.split(":", 1)[0])
    for node_id, root in sorted(comps.items()):
        yield node_id, story_id_for(groups[root])


class _Stamp(beam.DoFn):
    def setup(self) -> None:
        self.grouped = Metrics.counter(STAGE, "articles_in_multi_article_stories")
        self.alone = Metrics.counter(STAGE, "articles_alone")

    def process(self, keyed: tuple[str, dict[str, list[Any]]]) -> Iterable[Verdict]:
        stories = list(keyed[1][_STORY])
        for verdict in keyed[1][_VERDICT]:
            if stories:
                self.grouped.inc()
                yield dataclasses.replace(verdict, story_id=stories[0])
            else:
                self.alone.inc()
                yield dataclasses.replace(verdict, story_id=story_id_for([verdict.article_id]))


class AssignStories(beam.PTransform):
    """Verdict of each kept article -> the same Verdict with ``story_id`` set.

    Args:
        params: the ``stories:`` section.
        terms: ``StoryTerms`` of the run's articles (kept or not), taken where the text was;
            joined to the kept verdicts by ``article_id:source_ref``.

    The union-find is one global step over verified edges (one per article in a multi-article
    story, at most), grouped under a single key; see
    ``news_ingest.transforms.dedup.Deduplicate`` for its scaling limit.
    """

    def __init__(self, params: StoryParams | None = None, terms: Any = None):
        super().__init__()
        if terms is None:
            raise ValueError("AssignStories needs the story terms of the articles")
        self.params = params or StoryParams()
        self.terms = terms

    def expand(self, kept):  # type: ignore[no-untyped-def]
        params = self.params
        keyed = kept | "KeyVerdicts" >> beam.Map(lambda v: (v.story_key, v))
        edges = (
            {
                _TERMS: self.terms | "KeyTerms" >> beam.Map(lambda t: (t.node_id, t)),
                _VERDICT: keyed | "KeptKeys" >> beam.Map(lambda kv: (kv[0], None)),
            }
            | "JoinKeptTerms" >> beam.CoGroupByKey()
            | "SignKeptTerms" >> beam.ParDo(_SignKept(params))
            | "KeySketches" >> beam.Map(_sketch)
            | "Candidates" >> lsh.GroupCandidates(functools.partial(story_keys, params=params))
            | "VerifyPairs" >> beam.ParDo(_BucketEdges(params))
            | "DistinctEdges" >> beam.Distinct()
        )
        stories = (
            edges
            | "OneKey" >> beam.Map(lambda e: (0, e))
            | "GatherEdges" >> beam.GroupByKey()
            | "UnionFind" >> beam.FlatMap(_story_of_components)
        )
        return (
            {_VERDICT: keyed, _STORY: stories}
            | "JoinStories" >> beam.CoGroupByKey()
            | "StampStoryIds" >> beam.ParDo(_Stamp())
        )


def _stamp_duplicates(keyed: tuple[str, dict[str, list[Any]]]) -> Iterator[Verdict]:
    stories = [s for s in keyed[1][_STORY] if s]
    for dup in keyed[1][_VERDICT]:
        yield dataclasses.replace(dup, story_id=stories[0] if stories else None)


class StoryOfDuplicates(beam.PTransform):
    """Verdict of a duplicate -> the same Verdict with its keeper's ``story_id`` (None when the
    keeper was kept by an earlier run: stories do not span runs). Joined by ids only.

    Args:
        kept: the kept articles' verdicts, already stamped by ``AssignStories``.
    """

    def __init__(self, kept: Any):
        super().__init__()
        self.kept = kept

    def expand(self, duplicates):  # type: ignore[no-untyped-def]
        stories = self.kept | "KeyStoryByArticle" >> beam.Map(lambda v: (v.article_id, v.story_id))
        keyed = duplicates | "KeyByKeeper" >> beam.Map(lambda d: (d.duplicate_of, d))
        return (
            {_STORY: stories, _VERDICT: keyed}
            | "JoinKeeperStories" >> beam.CoGroupByKey()
            | "StampDuplicates" >> beam.FlatMap(_stamp_duplicates)
        )
