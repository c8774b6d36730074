"""Deduplication: pure decision logic, the Beam transform, and the cross-run index files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import pickle
import random
import textwrap
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.coders.coders import FastPrimitivesCoder
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.transforms import sinks
from news_ingest.transforms.dedup import (
    Decision,
    Deduplicate,
    IndexEntry,
    MinHasher,
    NearParams,
    Node,
    ToNodes,
    UnionFind,
    band_keys,
    bucket_edges,
    components,
    estimated_containment,
    estimated_jaccard,
    index_entry,
    keeper_key,
    known_keys,
    near_similarity,
    node_of,
    pick_keeper,
    resolve_cluster,
    shingles,
    star_edges,
    verdict_of,
)
from news_ingest.transforms.normalize import normalize_article
from news_ingest.transforms.schema import UTC, Article, StagedRef

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
PARAMS = NearParams()


def seed_texts() -> list[str]:
    """The seed texts with paragraphs as blank-line-separated blocks (no cleaning rules)."""
    texts = []
    for path in sorted(SEEDS.glob("*.txt")):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        texts.append("\n\n".join(line for line in lines if line))
    return texts


def article(
    text: str, aid: str, published: dt.datetime | None = None, url: str | None = None
) -> Article:
    return normalize_article(
        Article(
            article_id=aid,
            source_kind="text",
            source_ref=f"{aid}.txt",
            text=text,
            url=url,
            published_at=published,
        )
    )


def truncated(text: str, share: float = 0.85) -> str:
    paragraphs = text.split("\n\n")
    return "\n\n".join(paragraphs[: max(1, round(len(paragraphs) * share))])


def edited(text: str, seed: int) -> str:
    """A sentence added and three words changed."""
    rng = random.Random(seed)
    paragraphs = text.split("\n\n")
    paragraphs.insert(
        rng.randrange(len(paragraphs) + 1),
        "Officials said further details would be released later this week, a statement said.",
    )
    words = "\n\n".join(paragraphs).split(" ")
    for _ in range(3):
        words[rng.randrange(len(words))] = "altered"
    return " ".join(words)


def rewrapped(text: str) -> str:
    return "\n".join(textwrap.wrap(text.replace("\n\n", " "), 60))


def with_boilerplate(text: str) -> str:
    return f"Subscribe to our newsletter\n\nSign in\n\n{text}\n\nShare this article: Facebook X"


# ----------------------------------------------------------------------------- pure functions


def test_shingles_ignore_case_punctuation_and_wrapping() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    assert shingles(text, 5) == shingles(rewrapped(text.upper()).replace(".", " ;"), 5)
    assert len(shingles(text, 5)) == 5
    assert shingles("two words", 5) == ["two words"]
    assert shingles("  ...  ", 5) == []


def test_signature_is_deterministic_and_sized() -> None:
    text = seed_texts()[0]
    a, n = MinHasher(PARAMS).signature(text)
    b, m = MinHasher(PARAMS).signature(text)
    assert a == b and n == m == len(shingles(text))
    assert len(a) == PARAMS.num_perm * 4
    assert len(band_keys(a, PARAMS)) == PARAMS.bands
    other, _ = MinHasher(dataclasses.replace(PARAMS, seed=2)).signature(text)
    assert other != a


def test_estimated_jaccard_tracks_the_true_jaccard() -> None:
    hasher = MinHasher(PARAMS)
    errors = []
    for text in seed_texts():
        for share in (0.5, 0.7, 0.9):
            copy = truncated(text, share)
            a, b = set(shingles(text)), set(shingles(copy))
            true = len(a & b) / len(a | b)
            est = estimated_jaccard(hasher.signature(text)[0], hasher.signature(copy)[0])
            errors.append(abs(est - true))
    # 128 permutations: standard error <= 0.045; the mean error is far below that.
    assert sum(errors) / len(errors) < 0.05
    assert max(errors) < 0.15


def test_containment_estimate() -> None:
    assert estimated_containment(1.0, 100, 100) == 1.0
    # B is a subset of A with half its size: J = 0.5, containment of B in A = 1.
    assert estimated_containment(0.5, 200, 100) == pytest.approx(1.0)
    assert estimated_containment(0.0, 50, 100) == 0.0
    assert estimated_containment(0.5, 0, 100) == 0.0


VARIANTS = {
    "truncated_85": truncated,
    "edited": lambda t: edited(t, 3),
    "rewrapped": rewrapped,
    "boilerplate": with_boilerplate,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("index", range(5))
def test_copies_of_each_seed_are_near_duplicates(variant: str, index: int) -> None:
    hasher = MinHasher(PARAMS)
    text = seed_texts()[index]
    sa, na = hasher.signature(text)
    sb, nb = hasher.signature(VARIANTS[variant](text))
    assert near_similarity(sa, na, sb, nb, PARAMS) is not None


def test_seeds_are_not_near_duplicates_of_each_other() -> None:
    hasher = MinHasher(PARAMS)
    sigs = [hasher.signature(t) for t in seed_texts()]
    for (sa, na), (sb, nb) in itertools.combinations(sigs, 2):
        assert estimated_jaccard(sa, sb) < 0.3
        assert near_similarity(sa, na, sb, nb, PARAMS) is None


def test_containment_needs_comparable_lengths() -> None:
    hasher = MinHasher(PARAMS)
    text = seed_texts()[1]
    lead = truncated(text, 0.3)
    sa, na = hasher.signature(text)
    sb, nb = hasher.signature(lead)
    assert near_similarity(sa, na, sb, nb, PARAMS) is None
    loose = dataclasses.replace(PARAMS, min_length_ratio=0.1)
    assert near_similarity(sa, na, sb, nb, loose) is not None
    assert near_similarity(sa, na, sb, nb, dataclasses.replace(loose, containment=0.0)) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"containment": -0.1},
        {"bands": 33},
        {"shingle_size": 0},
        {"max_bucket": 1},
    ],
)
def test_near_params_reject_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NearParams(**kwargs)  # type: ignore[arg-type]


def test_candidate_probability_of_the_defaults() -> None:
    assert PARAMS.candidate_probability(0.8) > 0.9999
    assert PARAMS.candidate_probability(0.1) < 0.01


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=60),
    st.randoms(),
)
def test_union_find_roots_do_not_depend_on_edge_order(
    pairs: list[tuple[int, int]], rng: random.Random
) -> None:
    edges = [(f"n{a:02d}", f"n{b:02d}", "near") for a, b in pairs]
    first = components(edges)
    shuffled = list(edges)
    rng.shuffle(shuffled)
    assert components(shuffled) == first
    for node, root in first.items():
        assert root <= node
        assert first[root] == root


def test_union_find_root_is_smallest() -> None:
    uf = UnionFind()
    uf.union("c", "b")
    uf.union("b", "a")
    uf.union("d", "c")
    assert uf.components() == {"a": "a", "b": "a", "c": "a", "d": "a"}


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 10, n, 12, tzinfo=UTC)


def test_keeper_rule_order() -> None:
    text = "one two three four five six seven"
    early = article(text, "zz", published=day(1))
    late_long = article(text + " eight nine", "aa", published=day(2))
    undated = article(text, "00")
    assert sorted([undated, late_long, early], key=keeper_key)[0] is early
    longer = article(text + " eight", "zz", published=day(2))
    assert sorted([late_long, longer], key=keeper_key)[0] is late_long
    same_a, same_b = article(text, "b1", day(3)), article(text, "a1", day(3))
    kept, dups = pick_keeper([same_a, same_b], "exact")
    assert kept is same_b and [d.article for d in dups] == [same_a]


def test_star_edges_skip_groups_of_earlier_runs_only() -> None:
    prior = [
        IndexEntry(f"p{i}", None, "h", None, 10, None, 0, PARAMS.fingerprint, "r0").node(PARAMS)
        for i in range(2)
    ]
    assert star_edges(prior, "exact") == []
    fresh = node_of(article("some text here", "n1"))
    edges = star_edges([*prior, fresh], "exact")
    # Earlier runs' entries lead: the head is an index entry.
    assert len(edges) == 2 and all("i:p0" in e[:2] for e in edges)


def sketch(text: str, aid: str, **kw: object) -> Node:
    sig, count = MinHasher(PARAMS).signature(text)
    node = node_of(article(text, aid, **kw))  # type: ignore[arg-type]
    return dataclasses.replace(node, signature=sig, shingle_count=count)


def test_bucket_edges_verify_candidates() -> None:
    texts = seed_texts()
    nodes = [sketch(texts[0], "a"), sketch(truncated(texts[0]), "b"), sketch(texts[1], "c")]
    edges = bucket_edges(nodes, PARAMS)
    assert [(e[0][:3], e[1][:3]) for e in edges] == [("a:a", "a:b")]
    assert bucket_edges(list(reversed(nodes)), PARAMS) == edges


def test_bucket_edges_large_bucket_uses_representatives() -> None:
    text = seed_texts()[2]
    nodes = [sketch(edited(text, i), f"c{i:03d}") for i in range(6)]
    small = dataclasses.replace(PARAMS, max_bucket=2)
    exhaustive = components(bucket_edges(nodes, PARAMS))
    capped = components(bucket_edges(nodes, small))
    assert len(set(exhaustive.values())) == len(set(capped.values())) == 1


def test_resolve_cluster_describes_each_copy_relative_to_the_keeper() -> None:
    texts = seed_texts()
    keeper = sketch(texts[0], "k", published=day(1), url="https://a.example/x")
    same_url = sketch(texts[1], "u", published=day(2), url="https://a.example/x")
    same_text = node_of(article(texts[0], "e", published=day(3)))
    near = sketch(truncated(texts[0]), "n", published=day(2))
    nodes = [near, same_text, same_url, keeper]
    arts = {
        n.node_id: article(t, n.article_id, published=p, url=u)
        for n, t, p, u in [
            (keeper, texts[0], day(1), "https://a.example/x"),
            (same_url, texts[1], day(2), "https://a.example/x"),
            (same_text, texts[0], day(3), None),
            (near, truncated(texts[0]), day(2), None),
        ]
    }
    res = resolve_cluster(nodes, arts)
    assert res.kept is not None and res.kept.article_id == "k"
    kinds = {d.article.article_id: (d.dedup_kind, d.duplicate_of) for d in res.duplicates}
    assert kinds == {"u": ("url", "k"), "e": ("exact", "k"), "n": ("near", "k")}
    near_dup = next(d for d in res.duplicates if d.dedup_kind == "near")
    assert 0.7 < near_dup.similarity < 1.0
    assert resolve_cluster(list(reversed(nodes)), arts) == res


def test_resolve_cluster_prefers_earlier_runs() -> None:
    text = seed_texts()[3]
    sig, count = MinHasher(PARAMS).signature(text)
    prior = IndexEntry("old", None, "h-old", day(5), 10, sig, count, PARAMS.fingerprint, "r0")
    fresh = sketch(text, "new", published=day(1))
    res = resolve_cluster(
        [fresh, prior.node(PARAMS)], {fresh.node_id: article(text, "new", published=day(1))}
    )
    assert res.kept is None
    assert [(d.duplicate_of, d.dedup_kind) for d in res.duplicates] == [("old", "near")]
    assert res.duplicates[0].similarity == 1.0


def test_index_entries_with_other_parameters_lose_their_signature() -> None:
    sig, count = MinHasher(PARAMS).signature("a b c d e f g")
    entry = IndexEntry("x", None, "h", None, 7, sig, count, "other-engine", "r0")
    assert entry.node(PARAMS).signature is None
    assert entry.node(PARAMS).content_hash == "h"


# ----------------------------------------------------------------------------- Beam transform


def check_dedup(
    arts: list[Article],
    expected: tuple[list[str], list[tuple[str, str, str]]],
    index: list[IndexEntry] | None = None,
    near: bool = True,
) -> None:
    """Run Deduplicate on the articles' signed nodes and assert its kept ids, its duplicates as
    (id, kind, duplicate_of), and that every kept article (and nothing else) gets an index
    entry, with a signature when near duplicates are on."""
    kept, dups = expected
    assert len(kept) + len(dups) == len(arts)  # nothing vanishes
    params = NearParams(near=near)
    with TestPipeline() as p:
        source = p | "Articles" >> beam.Create(arts) | ToNodes(params)
        idx = p | "Index" >> beam.Create(index) if index else None
        k, d, i = source | Deduplicate(params, index=idx)
        assert_that(k | "KeptIds" >> beam.Map(lambda x: x.node.article_id), equal_to(kept), "Kept")
        assert_that(
            d | "DupIds" >> beam.Map(lambda x: (x.node.article_id, x.kind, x.duplicate_of)),
            equal_to(dups),
            label="Duplicates",
        )
        assert_that(
            i | "IndexIds" >> beam.Map(lambda e: (e.article_id, e.signature is not None)),
            equal_to([(a, near) for a in kept]),
            label="Indexed",
        )


def corpus() -> list[Article]:
    texts = seed_texts()
    wire = "https://wire.example/3"
    arts = [article(t, f"s{i}", published=day(28)) for i, t in enumerate(texts)]
    arts += [
        article(with_boilerplate(texts[0]), "copy-boiler", published=day(29)),
        article(rewrapped(texts[1]), "copy-wrap", published=day(29)),
        article(truncated(texts[0]), "copy-trunc", published=day(29)),
        article(edited(texts[2], 1), "copy-edit", published=day(27)),
        article(texts[3], "wire-3", published=day(27), url=wire),
        article(edited(texts[3], 2), "wire-3-update", published=day(29), url=wire),
    ]
    return arts


EXPECTED = (
    ["copy-edit", "s0", "s1", "s4", "wire-3"],
    [
        ("copy-boiler", "near", "s0"),
        ("copy-trunc", "near", "s0"),
        ("copy-wrap", "exact", "s1"),
        ("s2", "near", "copy-edit"),  # the edited copy is dated earlier: it is kept
        ("s3", "exact", "wire-3"),
        ("wire-3-update", "url", "wire-3"),
    ],
)


def test_deduplicate_transform_on_seeds_and_copies() -> None:
    check_dedup(corpus(), EXPECTED)


def test_deduplicate_is_independent_of_input_order() -> None:
    rng = random.Random(5)
    for _ in range(2):
        shuffled = corpus()
        rng.shuffle(shuffled)
        check_dedup(shuffled, EXPECTED)


def test_deduplicate_against_an_index_of_an_earlier_run() -> None:
    texts = seed_texts()
    hasher = MinHasher(PARAMS)
    earlier = []
    for i, t in enumerate(texts[:2]):
        a = article(t, f"s{i}", published=day(28))
        sig, count = hasher.signature(t)
        node = dataclasses.replace(node_of(a), signature=sig, shingle_count=count)
        earlier.append(dataclasses.replace(index_entry(a, node, PARAMS), run_id="r0"))
    arts = [
        article(texts[0], "s0", published=day(28)),
        article(truncated(texts[1]), "s1-cut", published=day(20)),
        article(texts[2], "s2", published=day(28)),
    ]
    check_dedup(arts, (["s2"], [("s0", "exact", "s0"), ("s1-cut", "near", "s1")]), earlier)


def test_deduplicate_without_near() -> None:
    texts = seed_texts()
    arts = [article(texts[0], "a"), article(truncated(texts[0]), "b"), article(texts[0], "c")]
    check_dedup(arts, (["a", "b"], [("c", "exact", "a")]), near=False)


# ----------------------------------------------------------------------------- index files


def test_index_files_round_trip_and_exclude_a_run(tmp_path: Path) -> None:
    index = str(tmp_path / "_index")
    sig, count = MinHasher(PARAMS).signature("alpha beta gamma delta epsilon zeta")
    entries = {
        run: [
            IndexEntry(
                f"{run}-a", "https://u", "h1", day(1), 6, sig, count, PARAMS.fingerprint, run
            )
        ]
        for run in ("r1", "r1-b")
    }
    for run, rows in entries.items():
        sinks.prepare_index(index, run)
        sinks.write_index_shard(rows, sinks.index_staging_dir(index, run), 0)
        sinks.commit_index(index, run)
    assert len(sinks.index_files(index)) == 2
    only_b = sinks.index_files(index, exclude_run="r1")
    assert len(only_b) == 1 and "run=r1-b" in only_b[0]
    assert list(sinks.read_index_file(only_b[0])) == entries["r1-b"]
    assert list(sinks.read_index_file(only_b[0], exclude_run="r1-b")) == []
    # A rerun replaces its folder; a run that kept nothing still commits an (empty) file.
    sinks.commit_index(index, "r1")
    files = sinks.index_files(index)
    assert len(files) == 2
    assert [list(sinks.read_index_file(f)) for f in files if "run=r1/" in f] == [[]]
    assert not (tmp_path / "_index" / "_staging").exists()


def _entry(article_id, url, content_hash, indexed_at, run="r0"):
    return IndexEntry(
        article_id, url, content_hash, None, 5, None, 0, PARAMS.fingerprint, run, indexed_at
    )


def test_known_keys_drop_entries_past_the_ttl_and_the_earliest_keeper_wins() -> None:
    entries = [
        _entry("late", "https://u", "h1", day(9)),
        _entry("early", "https://u", "h2", day(3)),
        _entry("expired", "https://old", "h3", day(1)),
        _entry("undated", None, "h4", None),  # written before indexed_at existed
    ]
    known = known_keys(entries, not_before=day(2))
    assert known == {
        "url:https://u": "early",
        "hash:h2": "early",
        "hash:h1": "late",
        "hash:h4": "undated",
    }
    assert "url:https://old" in known_keys(entries, not_before=None)


def test_the_index_shrinks_files_past_the_ttl_are_deleted_live_ones_filtered(
    tmp_path: Path,
) -> None:
    index = str(tmp_path / "_index")
    old = sinks.write_index_file(
        [_entry("a", None, "ha", day(1))], sinks.stream_index_path(index, "s1", "r1")
    )
    mixed = sinks.write_index_file(
        [_entry("b", None, "hb", day(1)), _entry("c", None, "hc", day(8))],
        sinks.stream_index_path(index, "s2", "r1"),
    )
    assert sinks.newest_entry_time(mixed) == day(8)  # from the footer
    assert [e.article_id for e in sinks.read_index([old, mixed], not_before=day(5))] == ["c"]
    assert sinks.prune_index(index, not_before=day(5)) == [old]
    assert sinks.index_files(index) == [mixed]
    assert not (tmp_path / "_index" / "run=s1").exists()


def test_deduplicate_counters() -> None:
    from apache_beam.metrics.metric import MetricsFilter

    p = TestPipeline()
    _kept, _dups, _index = p | beam.Create(corpus()) | ToNodes() | Deduplicate()
    result = p.run()
    result.wait_until_finish()
    counters: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace("dedup"))["counters"]:
        # Counters of the same name from different steps (kept: singletons and clusters) add up.
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + c.committed
    assert counters["kept"] == 5
    assert counters["duplicates:near"] == 3
    assert counters["duplicates:exact"] == 2
    assert counters["duplicates:url"] == 1
    # One signature per article, computed where its text is (no grouping carries text).
    assert counters["signatures"] == 11


def _grouping_round_trip(value):
    """A value through the coder Beam gives grouping values (FastPrimitivesCoder: pickles)."""
    coder = FastPrimitivesCoder()
    encoded = coder.encode(value)
    return coder.decode(encoded), len(encoded)


def _staged_node(**changes):
    node = node_of(
        article(
            "One text of a page. " * 30,
            "a1",
            dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC),
            url="https://example.com/a/one",
        )
    )
    fields = {
        "signature": b"\x01\x02" * 256,
        "shingle_count": 120,
        "staged": StagedRef("/out/_staging/run-x/articles/part-00001-0003.parquet", 17),
    }
    return dataclasses.replace(node, **{**fields, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"node_id": "i:earlier:entry", "prior": True, "rank": (1.0, -3)},
        {"canonical_url": None, "content_hash": None, "published_at": None, "staged": None},
    ],
)
def test_a_node_survives_a_grouping_whole_and_travels_without_field_names(changes):
    node = _staged_node(**changes)
    back, size = _grouping_round_trip(node)
    # Every field, the ones dedup does not compare on too.
    assert [getattr(back, f.name) for f in dataclasses.fields(back)] == [
        getattr(node, f.name) for f in dataclasses.fields(node)
    ]
    # The default pickling (a state dict with every field name) is larger.
    state = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    assert size < len(pickle.dumps((type(node), state))) - 100


def test_decisions_and_verdicts_pickle_as_field_values():
    decision = Decision(_staged_node(), duplicate_of="abc", kind="near", similarity=0.9)
    back, _ = _grouping_round_trip(decision)
    assert back == decision and back.node.staged == decision.node.staged
    verdict = verdict_of(decision)
    back, _ = _grouping_round_trip(verdict)
    assert back == verdict
    assert b"duplicate_of" not in pickle.dumps(verdict)
