"""The batch graph: build(p, cfg, paths) wires the stages; no I/O decisions hidden in them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import apache_beam as beam
from news_ingest.pipeline.config import (
    Config,
    ConfigError,
    feed_sources,
    fetch_policy,
    resolve,
    sitemap_limits,
)
from news_ingest.transforms import schema
from news_ingest.transforms.core import DocumentsToArticles
from news_ingest.transforms.dedup import Deduplicate, verdict_of
from news_ingest.transforms.extract import ExtractOptions
from news_ingest.transforms.feeds import (
    EntriesToWork,
    FeedSource,
    PollFeeds,
    feed_source,
    load_feed_list,
)
from news_ingest.transforms.fetch import FetchPages, PageRequest
from news_ingest.transforms.rulepack import RulePack, RulePackError, load_pack, load_packs
from news_ingest.transforms.schema import SOURCE_FEED, Article, DeadLetter, Duplicate
from news_ingest.transforms.sinks import ReadIndex, WriteIndex, WriteTable
from news_ingest.transforms.sitemaps import ExpandSitemaps, SitemapSource, load_url_list
from news_ingest.transforms.sources import FEED_LIST, ReadSources, kind_of
from news_ingest.transforms.split import Stamp, WriteDecided, count_dead_letter
from news_ingest.transforms.staging import StageArticles, staged_articles_dir
from news_ingest.transforms.stories import AssignStories, StoryOfDuplicates


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

    @property
    def row_stamp(self) -> Stamp:
        """The stamps the table writers put on staged article rows."""
        return Stamp(self.run_id, self.started_at, self.pipeline_version)


# Staging folder of a graph built without a run id (one that is not run to a commit).
UNNAMED_RUN = "unnamed"


@dataclasses.dataclass
class Outputs:
    # Verdicts (ids and staged rows, no text) of the kept articles and of the duplicates: the
    # article rows themselves were staged once, right after the core.
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


@dataclasses.dataclass(frozen=True)
class Discovery:
    """The sitemaps of a run and the page requests of its URL lists, listed on the launcher."""

    sitemaps: tuple[SitemapSource, ...] = ()
    requests: tuple[PageRequest, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sitemaps or self.requests)


def discovery_inputs(cfg: Config) -> Discovery:
    """The ``discover`` section's sitemaps and URL lists (the lists read now, at start).

    Raises:
        ConfigError: a URL list cannot be read.
    """
    requests: list[PageRequest] = []
    for path in cfg.discover.url_lists:
        try:
            requests.extend(load_url_list(resolve(path), cfg.read.max_bytes))
        except ValueError as exc:
            raise ConfigError(f"discover.url_lists: {exc}") from exc
    sources = {SitemapSource(s if "://" in s else resolve(s)) for s in cfg.discover.sitemaps}
    return Discovery(tuple(sorted(sources, key=lambda s: s.url)), tuple(requests))


def _discovered_requests(
    p: beam.Pipeline, cfg: Config, discovery: Discovery
) -> tuple[beam.PCollection, list[beam.PCollection]]:
    """Sitemaps -> page requests, plus the URL lists' requests: they then take the feed
    entries' path, through the same FetchPages (one fetcher per host for all of them)."""
    listed = p | "ListedUrls" >> beam.Create(list(discovery.requests))
    if not discovery.sitemaps:
        return listed, []
    found, sitemap_dead = (
        p
        | "ListedSitemaps" >> beam.Create(list(discovery.sitemaps))
        | "ExpandSitemaps" >> ExpandSitemaps(fetch_policy(cfg), sitemap_limits(cfg))
    )
    return (listed, found) | "DiscoveredPages" >> beam.Flatten(), [sitemap_dead]


def _feed_documents(
    p: beam.Pipeline, cfg: Config, feeds: list[FeedSource], discovery: Discovery = Discovery()
) -> tuple[beam.PCollection, list[beam.PCollection]]:
    """Feeds -> entries -> fetched pages (or the entries' own content) as RawDocuments, and
    the pages of sitemaps and URL lists."""
    policy = fetch_policy(cfg)
    requests, dead = _discovered_requests(p, cfg, discovery) if discovery else (None, [])
    docs = None
    if feeds:
        entries, poll_dead = (
            p
            | "ListedFeeds" >> beam.Create(feeds)
            | "PollFeeds"
            >> PollFeeds(policy, cfg.read.max_bytes, cfg.feeds.max_entries, cfg.feeds.state_dir)
        )
        work, entry_dead = entries | "FeedEntries" >> EntriesToWork(cfg.feeds.fetch_pages)
        dead += [poll_dead, entry_dead]
        if not cfg.feeds.fetch_pages:
            docs = work
        elif requests is None:
            requests = work
        else:
            requests = (requests, work) | "AllPageRequests" >> beam.Flatten()
    if requests is None:
        assert docs is not None, "called with feeds or discovery: one of them gives documents"
        return docs, dead
    pages, fetch_dead = requests | "FetchPages" >> FetchPages(policy)
    dead.append(fetch_dead)
    if docs is not None:
        pages = (docs, pages) | "FeedAndFetchedDocuments" >> beam.Flatten()
    return pages, dead


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

    Articles are staged once, right after the core (``StageArticles``, under the staging
    folder of ``run_id``); deduplication and stories decide over ids, signatures and story
    terms only, and ``write`` splits the staged rows by verdict.
    """
    files = [path for path in paths if kind_of(path) not in (SOURCE_FEED, FEED_LIST)]
    feeds = feed_inputs(cfg, paths)
    discovery = discovery_inputs(cfg)
    read_ok, read_dead = p | "ListedInputs" >> beam.Create(files) | "Read" >> ReadSources(cfg.read)
    early_dead = [read_dead]
    if feeds or discovery:
        feed_docs, feed_dead = _feed_documents(p, cfg, feeds, discovery)
        read_ok = (read_ok, feed_docs) | "AllDocuments" >> beam.Flatten()
        early_dead += feed_dead
    normalized, core_dead = read_ok | "ToArticles" >> core(cfg)
    index = p | "ReadIndex" >> ReadIndex(index_files, run_id, not_before) if index_files else None
    staged = staged_articles_dir(cfg.output.path, run_id or UNNAMED_RUN)
    stories = cfg.stories if cfg.stories.enabled else None
    nodes, terms = normalized | "StageArticles" >> StageArticles(staged, cfg.dedup, stories)
    kept_decisions, duplicate_decisions, indexed = nodes | "Deduplicate" >> Deduplicate(
        cfg.dedup, index=index
    )
    kept = kept_decisions | "KeptVerdicts" >> beam.Map(verdict_of)
    duplicates = duplicate_decisions | "DuplicateVerdicts" >> beam.Map(verdict_of)
    if stories is not None:
        kept = kept | "Stories" >> AssignStories(stories, terms)
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
) -> list[beam.PCollection]:
    """Write the three tables (and the run's index entries into ``index``) to staging; returns
    the writers' outputs (the files written), which a commit step can wait on. The articles
    and duplicates are the staged rows split by verdict (``WriteDecided``)."""
    written = [
        (outputs.articles, outputs.duplicates)
        | "WriteArticlesAndDuplicates" >> WriteDecided(output, ctx.row_stamp, shards),
        outputs.dead_letters
        | "CountDeadLetters" >> beam.Map(count_dead_letter)
        | "WriteDeadLetters"
        >> WriteTable("dead_letters", output, ctx.run_id, ctx.dead_letter_row, shards),
    ]
    if index is not None and outputs.index is not None:
        written.append(
            outputs.index | "WriteIndex" >> WriteIndex(index, ctx.run_id, ctx.started_at, shards)
        )
    return written
