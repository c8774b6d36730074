"""Stories: the seeds are one story, unrelated articles are not, ids are deterministic."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.transforms.dedup import MinHasher, NearParams, estimated_jaccard, shingles
from news_ingest.transforms.schema import UTC, Article, StagedRef, Verdict
from news_ingest.transforms.stories import (
    AssignStories,
    StoryOfDuplicates,
    StoryParams,
    find_stories,
    jaccard,
    same_story,
    story_id_for,
    story_terms,
    terms_of,
)

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
PARAMS = StoryParams()

# Made-up articles: two about one event (a port strike, told differently), the others about
# unrelated events, some sharing a name or a place with the seeds (Brussels, Ukraine).
OTHERS = {
    "strike-a": (
        "Dockworkers walk out at Rotterdam",
        "ROTTERDAM - Thousands of dockworkers at the Port of Rotterdam walked off the job on "
        "Tuesday, halting container traffic at Europe's largest port. The FNV union said talks "
        "with Maersk and Hutchison Ports over wages had collapsed. Port director Boudewijn "
        "Siemons said ships were being diverted to Antwerp and Hamburg.",
    ),
    "strike-b": (
        "Rotterdam port paralysed as FNV strike begins",
        "Container terminals in Rotterdam stood still after the FNV union called a strike over "
        "pay. Maersk warned customers of delays, and vessels headed for Antwerp and Hamburg "
        "instead, according to Boudewijn Siemons of the Port of Rotterdam. The Dutch "
        "government urged both sides to return to talks.",
    ),
    "eu-budget": (
        "EU ministers agree farm budget in Brussels",
        "Agriculture ministers meeting in Brussels agreed on Tuesday to keep the Common "
        "Agricultural Policy budget unchanged for 2026. France and Poland had pushed for more "
        "support for grain farmers, while the Netherlands and Sweden wanted cuts. The European "
        "Commission will publish the final figures next month.",
    ),
    "grain": (
        "Ukraine grain exports rise",
        "Ukraine exported more grain in October than in any month since 2021, the agriculture "
        "ministry in Kyiv said, as ships used the Black Sea corridor near Odesa. Traders in "
        "Chicago said wheat futures fell on the news. Egypt and Turkey were the largest buyers.",
    ),
    "football": (
        "Ajax beat PSV in Eindhoven",
        "Ajax won 2-1 against PSV at the Philips Stadion in Eindhoven on Sunday. Brian Brobbey "
        "scored twice for the visitors from Amsterdam, and Luuk de Jong answered for PSV late "
        "in the second half. The Eredivisie title race remains open.",
    ),
    "quake": (
        "Earthquake shakes central Chile",
        "A magnitude 6.2 earthquake struck central Chile on Monday, the US Geological Survey "
        "said. Buildings swayed in Santiago and Valparaiso, and the national emergency office "
        "Senapred reported no major damage. President Gabriel Boric thanked rescue teams.",
    ),
}


def seed_articles() -> list[Article]:
    arts = []
    for i, path in enumerate(sorted(SEEDS.glob("*.txt"))):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        text = "\n\n".join(line for line in lines if line)
        arts.append(
            Article(article_id=f"seed{i}", source_kind="text", source_ref=path.name, text=text)
        )
    return arts


def other_articles(published: dt.datetime | None = None) -> list[Article]:
    return [
        Article(
            article_id=key,
            source_kind="text",
            source_ref=f"{key}.txt",
            title=title,
            text=text,
            published_at=published,
        )
        for key, (title, text) in OTHERS.items()
    ]


def groups(arts: list[Article], params: StoryParams = PARAMS) -> set[frozenset[str]]:
    stories = find_stories(arts, params)
    by_story: dict[str, set[str]] = {}
    for a in arts:
        by_story.setdefault(stories[f"{a.article_id}:{a.source_ref}"], set()).add(a.article_id)
    return {frozenset(g) for g in by_story.values()}


def test_story_terms_are_names_of_title_and_lead() -> None:
    terms = story_terms("NATO chief in Brussels", "Mark Rutte's remarks. The war goes on.")
    assert {"nato", "brussels", "mark", "rutte", "mark rutte"} <= terms
    assert "the" not in terms and "war" not in terms
    assert story_terms(None, "lower case only here") == frozenset()
    assert "late" not in story_terms(None, "Early Name " + "word " * 300 + "Late Name", 50)


def test_seeds_are_one_story_and_not_duplicates() -> None:
    seeds = seed_articles()
    hasher = MinHasher(NearParams())
    for a, b in itertools.combinations(seeds, 2):
        shingles_a, shingles_b = set(shingles(a.text)), set(shingles(b.text))
        assert len(shingles_a & shingles_b) / len(shingles_a | shingles_b) < 0.2
        assert estimated_jaccard(hasher.signature(a.text)[0], hasher.signature(b.text)[0]) < 0.3
    assert groups(seeds) == {frozenset(a.article_id for a in seeds)}


def test_unrelated_articles_are_separate_stories_and_retellings_join() -> None:
    found = groups(seed_articles() + other_articles())
    assert frozenset({"strike-a", "strike-b"}) in found
    assert frozenset({f"seed{i}" for i in range(5)}) in found
    for key in ("eu-budget", "grain", "football", "quake"):
        assert frozenset({key}) in found


def test_time_window_separates_dated_articles() -> None:
    day = dt.datetime(2024, 10, 28, tzinfo=UTC)
    a, b = other_articles(day)[:2]
    late = dataclasses.replace(b, published_at=day + dt.timedelta(days=10))
    assert groups([a, b]) == {frozenset({"strike-a", "strike-b"})}
    assert groups([a, late]) == {frozenset({"strike-a"}), frozenset({"strike-b"})}
    # An undated article can join a dated story.
    undated = dataclasses.replace(b, published_at=None)
    assert groups([a, undated]) == {frozenset({"strike-a", "strike-b"})}


def test_story_ids_are_deterministic() -> None:
    arts = seed_articles() + other_articles()
    first = find_stories(arts, PARAMS)
    shuffled = list(arts)
    random.Random(3).shuffle(shuffled)
    assert find_stories(shuffled, PARAMS) == first
    assert first["seed0:000_9101e3246db773c2.txt"] == story_id_for([f"seed{i}" for i in range(5)])
    assert first["quake:quake.txt"] == story_id_for(["quake"])


def test_same_story_threshold() -> None:
    hasher_params = dataclasses.replace(PARAMS, threshold=1.0)
    a, b = other_articles()[:2]
    assert groups([a, b], hasher_params) == {frozenset({"strike-a"}), frozenset({"strike-b"})}
    ta = story_terms(a.title, a.text)
    tb = story_terms(b.title, b.text)
    assert 0.25 <= jaccard(ta, tb) < 1.0


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0.0}, {"lead_words": 0}, {"window_hours": 0}, {"bands": 3}]
)
def test_story_params_reject_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StoryParams(**kwargs)  # type: ignore[arg-type]


def verdict(a: Article, **kwargs: object) -> Verdict:
    return Verdict(a.article_id, a.source_ref, StagedRef(f"staged/{a.article_id}", 0), **kwargs)  # type: ignore[arg-type]


def test_assign_stories_transform_matches_the_pure_function() -> None:
    arts = seed_articles() + other_articles()
    expected = find_stories(arts, PARAMS)
    # The terms of an article that is not kept (a duplicate) take no part in the stories.
    dropped = dataclasses.replace(arts[0], article_id="a-copy", source_ref="copy.txt")
    terms = [terms_of(a, PARAMS.lead_words) for a in [*arts, dropped]]
    with TestPipeline() as p:
        kept = p | "Kept" >> beam.Create([verdict(a) for a in arts])
        stamped = kept | AssignStories(PARAMS, p | "Terms" >> beam.Create(terms))
        assert_that(
            stamped | beam.Map(lambda v: (v.story_key, v.story_id)),
            equal_to(sorted(expected.items())),
        )


def test_same_story_checks_time_only_when_both_are_dated() -> None:
    from news_ingest.transforms.stories import TermHasher

    hasher = TermHasher(PARAMS)
    a, b = other_articles(dt.datetime(2024, 1, 1, tzinfo=UTC))[:2]
    na, nb = hasher.node(a), hasher.node(b)
    assert same_story(na, nb, PARAMS)
    far = hasher.node(dataclasses.replace(b, published_at=dt.datetime(2024, 2, 1, tzinfo=UTC)))
    assert not same_story(na, far, PARAMS)


def test_duplicates_take_their_keepers_story() -> None:
    kept = [verdict(a, story_id=f"story-{a.article_id}") for a in other_articles()[:2]]
    copy = dataclasses.replace(other_articles()[0], article_id="copy")
    dups = [
        verdict(copy, duplicate_of="strike-a", dedup_kind="exact"),
        verdict(
            dataclasses.replace(copy, article_id="late"),
            duplicate_of="from-an-earlier-run",
            dedup_kind="near",
            similarity=0.9,
        ),
    ]
    with TestPipeline() as p:
        stamped = (
            p | "Dups" >> beam.Create(dups) | StoryOfDuplicates(p | "Kept" >> beam.Create(kept))
        )
        assert_that(
            stamped | beam.Map(lambda d: (d.article_id, d.story_id)),
            equal_to([("copy", "story-strike-a"), ("late", None)]),
        )
