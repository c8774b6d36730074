"""Staging: each article's row is written once, where its text is, and only ids travel on.

Right after the per-document core, ``StageArticles`` writes every article's full row to a
Parquet file of its bundle under the run's staging folder
(``OUT/_staging/<run_id>/_articles/<unique>.parquet``), row group by row group as rows come
(a bundle on the FnApiRunner can be half the corpus, so it is never held), and closes the file
in ``finish_bundle``. From ``process`` (Beam's DaskRunner drops what ``finish_bundle`` emits)
it emits only what deduplication and stories decide on: the dedup ``Node`` (ids, URL, content
hash, keeper rank, MinHash signature) with the staged row's place, and the article's story
terms. The table writers (``news_ingest.transforms.split``) re-read the staged rows once to
split them by verdict, the way datatrove's MinHash steps move ``(file, doc)`` ids.

A failed and retried bundle leaves an orphan staged file that no verdict refers to; the commit
removes the staging folder with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from news_ingest.transforms import dedup
from news_ingest.transforms.dedup import MinHasher, NearParams, signed_node
from news_ingest.transforms.rowgroups import RowGroupWriter
from news_ingest.transforms.schema import ARTICLES_SCHEMA, Article, StagedRef, article_row
from news_ingest.transforms.sinks import staging_dir
from news_ingest.transforms.stories import StoryParams, terms_of

STAGE = "staging"
STAGED_ARTICLES = "_articles"
NODES = "nodes"
TERMS = "terms"
# Staged row groups are small: a worker holds one group's rows (as Python rows and again as
# Arrow) until it is written, and a table writer reads a whole group to take the few rows it
# wants. At the tables' 1,000 rows / 16 MB, that was +50 MB per worker at bundle end.
STAGED_ROWS_PER_GROUP = 200
STAGED_BYTES_PER_GROUP = 4 * 2**20

# The articles table's columns, all nullable: a staged row is not yet stamped with its run
# (run_id, ingested_at) nor decided (story_id); the table writers check the contract.
STAGED_SCHEMA = pa.schema(
    [field.with_nullable(True) for field in ARTICLES_SCHEMA],
    metadata={**(ARTICLES_SCHEMA.metadata or {}), b"table": b"staged_articles"},
)


def staged_articles_dir(output: str, run_id: str) -> str:
    """Where the staged article rows of a run are written (inside its staging folder, so
    ``prepare_run`` and ``commit_run`` clear them)."""
    return FileSystems.join(staging_dir(output, run_id), STAGED_ARTICLES)


class _StageArticles(beam.DoFn):
    def __init__(
        self,
        directory: str,
        params: NearParams,
        stories: StoryParams | None,
        rows_per_group: int,
    ):
        self.directory = directory
        self.params = params
        self.stories = stories
        self.rows_per_group = rows_per_group

    def setup(self) -> None:
        self.hasher = MinHasher(self.params) if self.params.near else None
        self.signatures = Metrics.counter(dedup.STAGE, "signatures")
        self.staged = Metrics.counter(STAGE, "rows")
        self._file: Any = None
        self._writer: RowGroupWriter | None = None
        self._path = ""

    def start_bundle(self) -> None:
        self._discard()

    def _open(self) -> RowGroupWriter:
        self._path = FileSystems.join(self.directory, f"{uuid.uuid4().hex}.parquet")
        self._file = FileSystems.create(self._path)
        self._writer = RowGroupWriter(
            self._file, STAGED_SCHEMA, None, self.rows_per_group, STAGED_BYTES_PER_GROUP
        )
        return self._writer

    def process(self, article: Article) -> Iterable[Any]:
        writer = self._writer or self._open()
        row = writer.add(article_row(article))
        self.staged.inc()
        if self.hasher is not None:
            self.signatures.inc()
        node = signed_node(article, self.hasher)
        yield dataclasses.replace(node, staged=StagedRef(self._path, row))
        if self.stories is not None:
            yield pvalue.TaggedOutput(TERMS, terms_of(article, self.stories.lead_words))

    def finish_bundle(self) -> None:
        # Closed here, before the runner hands the bundle's outputs on: every row a node
        # refers to is in a complete file by then.
        if self._writer is not None:
            self._writer.close()
            self._file.close()
        self._writer, self._file = None, None

    def _discard(self) -> None:
        # A bundle that failed left its file open: it stays an orphan nothing refers to.
        if self._writer is not None:
            self._writer.abort()
            with contextlib.suppress(Exception):  # the file of a failed bundle is never read
                self._file.close()
        self._writer, self._file = None, None

    def teardown(self) -> None:
        self._discard()


class StageArticles(beam.PTransform):
    """Article -> (signed dedup Node with its staged row, StoryTerms), the rows staged.

    Args:
        directory: the staging folder of the run's article rows (``staged_articles_dir``).
        params: the ``dedup:`` section (the signature's parameters).
        stories: the ``stories:`` section, or None when stories are off (no terms emitted).
        rows_per_group: staged rows per Parquet row group.
    """

    def __init__(
        self,
        directory: str,
        params: NearParams,
        stories: StoryParams | None = None,
        rows_per_group: int = STAGED_ROWS_PER_GROUP,
    ):
        super().__init__()
        if rows_per_group < 1:
            raise ValueError(f"rows_per_group must be at least 1, got {rows_per_group}")
        self.directory = directory
        self.params = params
        self.stories = stories
        self.rows_per_group = rows_per_group

    def expand(self, articles):  # type: ignore[no-untyped-def]
        staged = articles | "StageRows" >> beam.ParDo(
            _StageArticles(self.directory, self.params, self.stories, self.rows_per_group)
        ).with_outputs(TERMS, main=NODES)
        return staged[NODES], staged[TERMS]
