"""The shape every stage shares: a DoFn that yields records or ``DeadLetter`` rejections,
wrapped so that an exception becomes a dead-letter row instead of failing the run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from news_ingest.transforms.schema import Article, DeadLetter, RawDocument, excerpt_of

DEAD = "dead"
OK = "ok"


def describe(element: Any) -> tuple[str, str | None, str | None, str | None]:
    """(source_ref, source_kind, url, excerpt) of any element that can reach a stage."""
    if isinstance(element, RawDocument):
        return element.source_ref, element.source_kind, element.url, excerpt_of(element.content)
    if isinstance(element, Article):
        return element.source_ref, element.source_kind, element.url, excerpt_of(element.text)
    if isinstance(element, tuple) and element and isinstance(element[-1], Article):
        return describe(element[-1])
    ref = getattr(element, "source_ref", None)
    if isinstance(ref, str):  # a page request: what it names, not its repr
        return ref, getattr(element, "source_kind", None), getattr(element, "url", None), None
    return str(element), None, None, None


# Longest error message kept in a dead-letter row.
MAX_MESSAGE = 2000


class StageError(ValueError):
    """Why a stage stops a record: the stage, the dead-letter reason code and a message.

    A stage's pure functions raise it for input they refuse (a feed that is not a feed, a
    sitemap too large); the stage catches it and hands it to ``dead_letter`` as the row's why.
    """

    def __init__(self, stage: str, reason: str, message: str | None = None):
        super().__init__(f"{reason}: {message}" if message is not None else reason)
        self.stage = stage
        self.reason = reason
        self.message = message


def dead_letter(
    error: StageError,
    source_ref: str,
    *,
    source_kind: str | None = None,
    url: str | None = None,
    error_type: str | None = None,
    excerpt: str | None = None,
) -> DeadLetter:
    """The one way a ``DeadLetter`` is built: every stage's rows look alike. ``error`` gives
    the stage, the reason and the message (capped at ``MAX_MESSAGE`` characters)."""
    message = error.message
    return DeadLetter(
        source_ref=source_ref,
        source_kind=source_kind,
        url=url,
        stage=error.stage,
        reason=error.reason,
        error_type=error_type,
        error_message=message[:MAX_MESSAGE] if message is not None else None,
        excerpt=excerpt,
    )


def rejection(
    element: Any,
    stage: str,
    reason: str,
    message: str | None = None,
    error_type: str | None = None,
) -> DeadLetter:
    """An expected rejection (not an exception) of ``element`` at ``stage``."""
    source_ref, kind, url, excerpt = describe(element)
    return dead_letter(
        StageError(stage, reason, message),
        source_ref,
        source_kind=kind,
        url=url,
        error_type=error_type,
        excerpt=excerpt,
    )


def failure(stage: str, bad: tuple[Any, tuple[Any, Any, Any]]) -> DeadLetter:
    """The dead letter of an element whose processing raised (Beam's dead-letter shape)."""
    element, (exc_type, exc_repr, _traceback) = bad
    source_ref, kind, url, excerpt = describe(element)
    type_name = getattr(exc_type, "__name__", str(exc_type))
    reason = "timeout" if type_name == "TimeoutError" else "exception"
    return dead_letter(
        StageError(stage, reason, str(exc_repr)),
        source_ref,
        source_kind=kind,
        url=url,
        error_type=type_name,
        excerpt=excerpt,
    )


class _SplitRejections(beam.DoFn):
    def __init__(self, namespace: str):
        self.namespace = namespace
        self.passed = Metrics.counter(namespace, "passed")
        self.rejected = Metrics.counter(namespace, "rejected")

    def process(self, element: Any) -> Iterable[Any]:
        if isinstance(element, DeadLetter):
            self.rejected.inc()
            Metrics.counter(self.namespace, f"reason:{element.reason}").inc()
            yield pvalue.TaggedOutput(DEAD, element)
        else:
            self.passed.inc()
            yield element


class _CountFailure(beam.DoFn):
    def __init__(self, stage: str, namespace: str):
        self.stage = stage
        self.namespace = namespace
        self.failed = Metrics.counter(namespace, "failed")

    def process(self, bad: Any) -> Iterable[DeadLetter]:
        self.failed.inc()
        dead = failure(self.stage, bad)
        Metrics.counter(self.namespace, f"reason:{dead.reason}").inc()
        yield dead


class ApplyStage(beam.PTransform):
    """Run ``dofn`` as stage ``stage``; returns ``(records, dead_letters)``.

    The DoFn yields records and ``DeadLetter`` rejections; an exception (or a timeout, when
    ``timeout`` seconds are given) turns into a dead letter with reason ``exception``/``timeout``.
    With ``use_subprocess`` the DoFn runs in a child process that is killed on a timeout or a
    crash (a thread cannot be stopped: it keeps running after its timeout).

    Its counters (``passed``, ``rejected``, ``failed``, ``reason:*``) are in namespace
    ``counters`` (default: the stage): a stage applied in two passes counts each pass under its
    own name, so no document is counted twice as passing one stage.
    """

    def __init__(
        self,
        stage: str,
        dofn: beam.DoFn,
        timeout: float | None = None,
        use_subprocess: bool = False,
        counters: str | None = None,
    ):
        super().__init__(label=None)
        if not stage:
            raise ValueError("stage needs a name")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.stage = stage
        self.dofn = dofn
        self.timeout = timeout
        self.use_subprocess = use_subprocess
        self.counters = counters or stage

    def expand(self, pcoll):  # type: ignore[no-untyped-def]
        good, bad = pcoll | "Process" >> beam.ParDo(self.dofn).with_exception_handling(
            timeout=self.timeout, use_subprocess=self.use_subprocess
        )
        split = good | "SplitRejections" >> beam.ParDo(
            _SplitRejections(self.counters)
        ).with_outputs(DEAD, main=OK)
        failed = bad | "ToDeadLetters" >> beam.ParDo(_CountFailure(self.stage, self.counters))
        dead = (split[DEAD], failed) | "MergeDeadLetters" >> beam.Flatten()
        return split[OK], dead
