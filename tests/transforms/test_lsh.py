"""The band grouping over ids (``lsh.CandidateBuckets``, ``lsh.GroupCandidates``) finds exactly
the near-duplicate edges that grouping the signed nodes themselves by band finds."""

from __future__ import annotations

import dataclasses
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


def _assert_groups(bands, expected) -> None:  # type: ignore[no-untyped-def]
    """``CandidateBuckets`` of ``bands`` gives each member exactly the groups (heads) expected."""
    with TestPipeline() as p:
        groups = (
            p
            | beam.Create(bands)
            | lsh.CandidateBuckets()
            | beam.GroupByKey()
            | beam.MapTuple(lambda member, heads: (member, sorted(heads)))
        )
        assert_that(groups, equal_to(expected))


def test_buckets_of_one_head_are_one_group_and_a_single_is_in_none():
    a, b, c, d = sorted(lsh.member_key(x) for x in "abcd")
    # bands 1 and 2 hold {a, b}, band 3 {a, b, c}, band 4 {c} alone, band 5 {d} alone: three
    # buckets of two or more, all with head a; d shares no band with anyone
    bands = [(a, ["1", "2", "3"]), (b, ["1", "2", "3"]), (c, ["3", "4"]), (d, ["5"])]
    _assert_groups(bands, [(a, [a]), (b, [a]), (c, [a])])


def test_a_member_of_buckets_with_two_heads_is_in_both_groups():
    a, b, c = sorted(lsh.member_key(x) for x in "abc")
    # band 1 holds {a, b} (head a), band 2 {b, c} (head b)
    bands = [(a, ["1"]), (b, ["1", "2"]), (c, ["2"])]
    _assert_groups(bands, [(a, [a]), (b, [a, b]), (c, [b])])


def _clusters(edges) -> set[frozenset[str]]:  # type: ignore[no-untyped-def]
    union = lsh.UnionFind()
    for a, b, _kind in edges:
        union.union(a, b)
    found: dict[str, set[str]] = {}
    for node, root in union.components().items():
        found.setdefault(root, set()).add(node)
    return {frozenset(members) for members in found.values()}


def test_grouping_ids_finds_the_clusters_of_grouping_nodes():
    nodes = _nodes(_texts(90))
    by_band = _edges_by_band(nodes)
    expected = _clusters(by_band)
    assert len(expected) >= 25  # most of the 30 planted families are found at all
    with TestPipeline() as p:
        edges = (
            p
            | beam.Create(nodes)
            | "Key" >> beam.Map(lambda n: (lsh.member_key(n.node_id), n))
            | lsh.GroupCandidates(lambda n: band_keys(n.signature, PARAMS))
            | beam.FlatMap(lambda kv: bucket_edges(list(kv[1]), PARAMS))
            | beam.Distinct()
        )

        def same_clusters(got) -> None:  # type: ignore[no-untyped-def]
            assert _clusters(got) == expected
            # no more edges for the union-find than the buckets one by one give
            assert len(got) <= len(by_band)

        assert_that(edges, same_clusters)


def test_many_near_copies_travel_a_few_times_each_not_once_per_distinct_bucket():
    """A page copied 60 times with a word changed in each: nearly every band holds a slightly
    different set of the copies (32 distinct buckets per copy). A copy's sketch reaches only
    the groups of its buckets' heads (a few: a new head appears only where the smallest copy
    left a band), and the copies form one cluster."""
    rng = random.Random(3)
    base = [rng.choice(WORDS) for _ in range(300)]
    texts = []
    for i in range(60):
        words = list(base)
        words[rng.randrange(len(words))] = f"copy{i}"
        texts.append(" ".join(words))
    nodes = [dataclasses.replace(n, prior=False) for n in _nodes(texts)]
    buckets: dict[str, set[str]] = {}
    for node in nodes:
        for key in band_keys(node.signature or b"", PARAMS):
            buckets.setdefault(key, set()).add(node.node_id)
    distinct = {frozenset(m) for m in buckets.values() if len(m) >= 2}
    copies_per_distinct_bucket = sum(len(m) for m in distinct)
    assert copies_per_distinct_bucket > 20 * len(nodes)
    with TestPipeline() as p:
        grouped = (
            p
            | beam.Create(nodes)
            | "Key" >> beam.Map(lambda n: (lsh.member_key(n.node_id), n))
            | lsh.GroupCandidates(lambda n: band_keys(n.signature, PARAMS))
        )

        def few_copies(got) -> None:  # type: ignore[no-untyped-def]
            assert set(got) == {n.node_id for n in nodes}
            assert len(got) < 5 * len(nodes), len(got)

        copies = grouped | beam.FlatMap(lambda kv: [n.node_id for n in kv[1]])
        assert_that(copies, few_copies, label="few copies")
        edges = grouped | beam.FlatMap(lambda kv: bucket_edges(list(kv[1]), PARAMS))

        def one_cluster(got) -> None:  # type: ignore[no-untyped-def]
            assert _clusters(got) == {frozenset(n.node_id for n in nodes)}

        assert_that(edges, one_cluster, label="one cluster")


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


def test_packed_band_entries_from_separate_batches_give_each_bucket_its_smallest_key_as_head():
    """Band entries packed in two batches (as two bundles would) and grouped by shard: a
    bucket split across the batches is whole again, its head is its smallest member key in
    byte order, and a band held by one member gives no pair."""
    keys = sorted(lsh.member_key(f"m{i}") for i in range(6))
    first = [(keys[5], ["b1", "b2"]), (keys[3], ["b1"]), (keys[0], ["solo"])]
    second = [(keys[4], ["b2", "b3"]), (keys[1], ["b3"]), (keys[2], [])]
    by_shard: dict[int, list[bytes]] = {}
    for batch in (first, second):
        for shard, packed in lsh.pack_bands(batch):
            assert 0 <= shard < lsh.BAND_SHARDS
            by_shard.setdefault(shard, []).append(packed)
    pairs = {pair for packed in by_shard.values() for pair in lsh.bucket_heads(packed)}
    # b1 {5, 3} -> head 3; b2 {5, 4} -> head 4; b3 {4, 1} -> head 1
    assert pairs == {
        (keys[5], keys[3]),
        (keys[3], keys[3]),
        (keys[5], keys[4]),
        (keys[4], keys[4]),
        (keys[4], keys[1]),
        (keys[1], keys[1]),
    }
    assert list(lsh.pack_bands([(keys[2], [])])) == []
