"""The band grouping over ids (``lsh.CandidateBuckets``, ``lsh.GroupCandidates``) finds exactly
the near-duplicate edges that grouping the signed nodes themselves by band finds."""

from __future__ import annotations

import random

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.transforms import lsh
from news_ingest.transforms.dedup import MinHasher, NearParams, Node, band_keys, bucket_edges

PARAMS = NearParams()
WORDS = [f"w{i}" for i in range(400)]


def _texts(n: int, seed: int = 7) -> list[str]:
    """Unrelated texts, plus for a third of them a copy with a few words changed (near) and,
    for some, a second copy of the copy (a family of three)."""
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 200))) for _ in range(n)]
    for i in range(0, n, 3):
        words = texts[i].split()
        for j in rng.sample(range(len(words)), 3):
            words[j] = "changed"
        texts.append(" ".join(words))
        if i % 2 == 0:
            texts.append(" ".join(words[: int(len(words) * 0.9)]))
    return texts


def _nodes(texts: list[str]) -> list[Node]:
    hasher = MinHasher(PARAMS)
    nodes = []
    for i, text in enumerate(texts):
        signature, count = hasher.signature(text)
        nodes.append(
            Node(f"a:{i:04d}", "", i % 11 == 0 and i > 0, (), None, None, signature, count)
        )
    return nodes


def _edges_by_band(nodes: list[Node]) -> set[tuple[str, str, str]]:
    """The plain definition: every band's bucket of signed nodes, verified in process."""
    buckets: dict[str, list[Node]] = {}
    for node in nodes:
        for key in band_keys(node.signature or b"", PARAMS):
            buckets.setdefault(key, []).append(node)
    return {e for members in buckets.values() for e in bucket_edges(members, PARAMS)}


def test_member_keys_are_8_bytes_and_distinct():
    keys = {lsh.member_key(f"a:{i}:path/{i}.html") for i in range(10_000)}
    assert len(keys) == 10_000
    assert {len(k) for k in keys} == {8}


def test_buckets_are_distinct_memberships_of_two_or_more():
    a, b, c = (lsh.member_key(x) for x in "abc")
    # bands 1 and 2 hold {a, b} (twice the same membership), band 3 {c}, band 4 {a, b, c}
    bands = [(a, ["1", "2", "4"]), (b, ["1", "2", "4"]), (c, ["3", "4"])]
    with TestPipeline() as p:
        buckets = (
            p
            | beam.Create(bands)
            | lsh.CandidateBuckets()
            | beam.GroupByKey()
            | beam.MapTuple(lambda member, ids: (member, len(list(ids))))
        )
        # a and b are in two distinct buckets ({a, b} once, {a, b, c}); c in one
        assert_that(buckets, equal_to([(a, 2), (b, 2), (c, 1)]))


def test_grouping_ids_finds_the_edges_of_grouping_nodes():
    nodes = _nodes(_texts(90))
    expected = _edges_by_band(nodes)
    assert len(expected) >= 30  # the planted families are found at all
    with TestPipeline() as p:
        edges = (
            p
            | beam.Create(nodes)
            | "Key" >> beam.Map(lambda n: (lsh.member_key(n.node_id), n))
            | lsh.GroupCandidates(lambda n: band_keys(n.signature, PARAMS))
            | beam.FlatMap(lambda kv: bucket_edges(list(kv[1]), PARAMS))
            | beam.Distinct()
        )
        assert_that(edges, equal_to(sorted(expected)))


def test_a_node_without_band_keys_is_in_no_bucket():
    nodes = _nodes(_texts(6))
    with TestPipeline() as p:
        buckets = (
            p
            | beam.Create(nodes)
            | "Key" >> beam.Map(lambda n: (lsh.member_key(n.node_id), n))
            | lsh.GroupCandidates(
                lambda n: [] if n.node_id == "a:0000" else band_keys(n.signature, PARAMS)
            )
            | beam.FlatMap(lambda kv: [n.node_id for n in kv[1]])
            | beam.Distinct()
        )
        assert_that(buckets, _has_members_but_not("a:0000"))


def _has_members_but_not(node_id: str):  # type: ignore[no-untyped-def]
    def check(got: list[str]) -> None:
        assert node_id not in got
        assert len(got) >= 2, got

    return check
