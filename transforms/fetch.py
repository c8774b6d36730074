"""The fetch stage: page requests become documents, fetched through the one ``Fetcher``.

The HTTP client, its address safety, robots.txt, URLs and charsets live in ``news_ingest.transforms.web``;
this module groups requests by host (politeness across workers), turns each response into a
``RawDocument`` (its ``url`` the final URL after redirects; ``source_ref`` the request's, which
for a feed entry is the link the feed gave) and each failure into that request's own dead
letter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from news_ingest.transforms.schema import DeadLetter, RawDocument
from news_ingest.transforms.stage import ApplyStage, StageError, dead_letter, failure
from news_ingest.transforms.web.charsets import to_utf8
from news_ingest.transforms.web.http import Fetcher, FetchError, FetchPolicy, FetchResult
from news_ingest.transforms.web.urls import canonicalize_url, host_key

STAGE = "fetch"

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


@dataclasses.dataclass(frozen=True)
class PageRequest:
    """A page to fetch and the document it becomes (its kind and hints)."""

    url: str
    source_ref: str
    source_kind: str
    hints: tuple[tuple[str, Any], ...] = ()


def page_dead(
    request: PageRequest, reason: str, message: str, error_type: str | None
) -> DeadLetter:
    """The dead letter of a page request that did not become a document."""
    return dead_letter(
        StageError(STAGE, reason, message),
        request.source_ref,
        source_kind=request.source_kind,
        url=request.url,
        error_type=error_type,
    )


def page_document(request: PageRequest, result: FetchResult) -> RawDocument | DeadLetter:
    """The document of a fetched page: the body transcoded to UTF-8, ``url`` the URL that
    answered (after redirects: URL dedup and the canonical URL start from it), ``source_ref``
    and the hints those of the request."""
    mime = (result.content_type or "text/html").split(";", 1)[0].strip().lower()
    if mime not in HTML_TYPES:
        return page_dead(request, "not_html", f"content-type {mime}", None)
    body, _charset = to_utf8(result.content, result.content_type)
    return RawDocument(
        source_ref=request.source_ref,
        source_kind=request.source_kind,
        content=body,
        url=result.final_url,
        fetched_at=result.fetched_at,
        content_type=f"{mime}; charset=utf-8",
        hints=request.hints,
    )


class FetcherDoFn(beam.DoFn):
    """A DoFn that owns one ``Fetcher`` (its connection pools and per-host politeness state) per
    DoFn instance: built in ``setup``, closed in ``teardown``, never per element."""

    def __init__(self, policy: FetchPolicy):
        self.policy = policy
        self.fetcher: Fetcher | None = None

    def setup(self) -> None:
        self.fetcher = Fetcher(self.policy)

    def teardown(self) -> None:
        if self.fetcher is not None:
            self.fetcher.close()


class _FetchHostPages(FetcherDoFn):
    """Fetches all pages of one host in turn; a URL asked for twice is fetched once. Each
    request ends as a document or its own dead letter: an unexpected error on one page is that
    page's dead letter (reason ``exception``), and the host's other pages go on."""

    def __init__(self, policy: FetchPolicy):
        super().__init__(policy)
        self.fetched = Metrics.counter(STAGE, "fetched")
        self.reused = Metrics.counter(STAGE, "reused")

    def _one(
        self, request: PageRequest, done: dict[str, FetchResult | FetchError]
    ) -> RawDocument | DeadLetter:
        assert self.fetcher is not None
        key = canonicalize_url(request.url) or request.url
        outcome = done.get(key)
        if outcome is None:
            try:
                outcome = self.fetcher.fetch(request.url, accept=", ".join(HTML_TYPES[:2]))
                self.fetched.inc()
            except FetchError as exc:
                outcome = exc
            done[key] = outcome
        else:
            self.reused.inc()
        if isinstance(outcome, FetchError):
            return page_dead(request, outcome.reason, outcome.message, "FetchError")
        return page_document(request, outcome)

    def process(
        self, keyed: tuple[str, Iterable[PageRequest]]
    ) -> Iterator[RawDocument | DeadLetter]:
        _host, requests = keyed
        done: dict[str, FetchResult | FetchError] = {}
        for request in sorted(requests, key=lambda r: (r.url, r.source_ref, repr(r.hints))):
            try:
                yield self._one(request, done)
            except Exception as exc:  # noqa: BLE001 - one page's bug must not lose its host
                yield failure(STAGE, (request, (type(exc), repr(exc), None)))


class FetchPages(beam.PTransform):
    """PageRequest -> (RawDocument, DeadLetter).

    Requests are grouped by host (a ``GroupByKey``), so all fetches to one host run in turn in
    one worker, whatever the number of workers: the per-host politeness (one request at a
    time, ``min_delay_s``, Retry-After, Crawl-delay) holds across the whole run. Different
    hosts are fetched in parallel, one per worker.
    """

    def __init__(self, policy: FetchPolicy):
        super().__init__()
        if not isinstance(policy, FetchPolicy):
            raise TypeError("FetchPages needs a FetchPolicy")
        self.policy = policy

    def expand(self, requests):  # type: ignore[no-untyped-def]
        return (
            requests
            | "KeyPagesByHost" >> beam.Map(lambda r: (host_key(r.url), r))
            | "GroupPagesByHost" >> beam.GroupByKey()
            | "FetchHostPages" >> ApplyStage(STAGE, _FetchHostPages(self.policy))
        )
