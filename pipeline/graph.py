"""The batch graph: build(p, cfg, paths) wires the stages; no I/O decisions hidden in them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import apache_beam as beam

from pipeline.config import Config, ConfigError, feed_sources, fetch_policy, resolve
from transforms import schema
from transforms.core import DocumentsToArticles
from transforms.dedup import Deduplicate
from transforms.extract import ExtractOptions
from transforms.feeds import EntriesToWork, FeedSource, PollFeeds, feed_source, load_feed_list
from transforms.fetch import FetchPages
from transforms.rulepack import RulePack, RulePackError, load_pack, load_packs
from transforms.schema import SOURCE_FEED, Article, DeadLetter, Duplicate
from transforms.sinks import ReadIndex, WriteIndex, WriteTable
from transforms.sources import FEED_LIST, ReadSources, kind_of
from transforms.stories import AssignStories, StoryOfDuplicates


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every row of a run is stamped with."""

    run_id: str
    started_at: dt.datetime
    pipeline_version: str

    def stamp(self, article: Article) -> Article:
        return dataclasses.replace(
            article,
            run_id=self.run_id,
            ingested_at=self.started_at,
            pipeline_version=self.pipeline_version,
        )

    def article_row(self, article: Article) -> dict[str, Any]:
        return schema.article_row(self.stamp(article))

    def duplicate_row(self, dup: Duplicate) -> dict[str, Any]:
        return schema.duplicate_row(dataclasses.replace(dup, article=self.stamp(dup.article)))

    def dead_letter_row(self, dead: DeadLetter) -> dict[str, Any]:
        stamped = dataclasses.replace(dead, run_id=self.run_id, ingested_at=self.started_at)
        return schema.dead_letter_row(stamped)


@dataclasses.dataclass
class Outputs:
    articles: beam.PCollection
    duplicates: beam.PCollection
    dead_letters: beam.PCollection
    index: beam.PCollection | None = None
    # Each input document once it is through the per-document stages (before any grouping):
    # what progress reporting counts.
    finished: tuple[beam.PCollection, ...] = ()


def extract_options(cfg: Config) -> ExtractOptions:
    """The ``extract:`` section with its isolation resolved for the configured runner (see
    ``ExtractOptions.resolved``)."""
    in_process = cfg.runner.name == "direct" and cfg.runner.workers == 1
    return cfg.extract.resolved(in_process)


def feed_inputs(cfg: Config, paths: list[str]) -> list[FeedSource]:
    """The feeds of a run, listed on the launcher: feed files and feeds lists among the input
    paths, then ``feeds.sources`` of the config."""
    feeds: list[FeedSource] = []
    for path in paths:
        kind = kind_of(path)
        try:
            if kind == FEED_LIST:
                feeds.extend(load_feed_list(path))
            elif kind == SOURCE_FEED:
                feeds.append(feed_source(path))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    feeds.extend(feed_sources(cfg))
    return sorted(set(feeds), key=lambda f: (f.url, repr(f)))


def _feed_documents(
    p: beam.Pipeline, cfg: Config, feeds: list[FeedSource]
) -> tuple[beam.PCollection, list[beam.PCollection]]:
    """Feeds -> entries -> fetched pages (or the entries' own content) as RawDocuments."""
    policy = fetch_policy(cfg)
    entries, poll_dead = (
        p
        | "ListedFeeds" >> beam.Create(feeds)
        | "PollFeeds"
        >> PollFeeds(policy, cfg.read.max_bytes, cfg.feeds.max_entries, cfg.feeds.state_dir)
    )
    work, entry_dead = entries | "FeedEntries" >> EntriesToWork(cfg.feeds.fetch_pages)
    if not cfg.feeds.fetch_pages:
        return work, [poll_dead, entry_dead]
    pages, fetch_dead = work | "FetchPages" >> FetchPages(policy)
    return pages, [poll_dead, entry_dead, fetch_dead]


def rule_packs(cfg: Config) -> tuple[RulePack, tuple[RulePack, ...]]:
    """The default and per-source cleaning rule packs, loaded and validated now (at start)."""
    try:
        default = load_pack(resolve(cfg.clean.rules))
        sources = load_packs(resolve(cfg.clean.packs) if cfg.clean.packs else None)
    except RulePackError as exc:
        raise ConfigError(f"clean: {exc}") from exc
    return default, sources


def core(cfg: Config) -> DocumentsToArticles:
    """The per-document core of both graphs (extract, clean, normalize) for a config."""
    default_pack, source_packs = rule_packs(cfg)
    return DocumentsToArticles(
        extract_options(cfg), cfg.clean, cfg.normalize, default_pack, source_packs
    )


def build(
    p: beam.Pipeline,
    cfg: Config,
    paths: list[str],
    index_files: list[str] | None = None,
    run_id: str | None = None,
    not_before: dt.datetime | None = None,
) -> Outputs:
    """Wire the batch graph from a listed set of input paths to the three output tables.

    ``index_files`` are the cross-run index files listed on the launcher; entries of ``run_id``
    in them are ignored, so a rerun reproduces its own output, and so are entries ingested
    before ``not_before`` (the run's start less ``dedup.ttl``).
    """
    files = [path for path in paths if kind_of(path) not in (SOURCE_FEED, FEED_LIST)]
    feeds = feed_inputs(cfg, paths)
    read_ok, read_dead = p | "ListedInputs" >> beam.Create(files) | "Read" >> ReadSources(cfg.read)
    early_dead = [read_dead]
    if feeds:
        feed_docs, feed_dead = _feed_documents(p, cfg, feeds)
        read_ok = (read_ok, feed_docs) | "AllDocuments" >> beam.Flatten()
        early_dead += feed_dead
    normalized, core_dead = read_ok | "ToArticles" >> core(cfg)
    index = p | "ReadIndex" >> ReadIndex(index_files, run_id, not_before) if index_files else None
    kept, duplicates, indexed = normalized | "Deduplicate" >> Deduplicate(cfg.dedup, index=index)
    if cfg.stories.enabled:
        kept = kept | "Stories" >> AssignStories(cfg.stories)
        duplicates = duplicates | "StoriesOfDuplicates" >> StoryOfDuplicates(kept)
    dead = (*early_dead, core_dead) | "AllDeadLetters" >> beam.Flatten()
    return Outputs(
        articles=kept,
        duplicates=duplicates,
        dead_letters=dead,
        index=indexed if cfg.dedup.index else None,
        finished=(normalized, dead),
    )


def write(
    outputs: Outputs, output: str, ctx: RunContext, shards: int, index: str | None = None
) -> None:
    """Write the three tables (and the run's index entries into ``index``) to staging."""
    outputs.articles | "WriteArticles" >> WriteTable(
        "articles", output, ctx.run_id, ctx.article_row, shards
    )
    outputs.duplicates | "WriteDuplicates" >> WriteTable(
        "duplicates", output, ctx.run_id, ctx.duplicate_row, shards
    )
    outputs.dead_letters | "WriteDeadLetters" >> WriteTable(
        "dead_letters", output, ctx.run_id, ctx.dead_letter_row, shards
    )
    if index is not None and outputs.index is not None:
        outputs.index | "WriteIndex" >> WriteIndex(index, ctx.run_id, ctx.started_at, shards)
