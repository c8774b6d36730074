"""The core both drivers share: RawDocument -> (Article, DeadLetter) through extract, clean and
normalize.

The batch graph (``pipeline/graph.py``) and the streaming graph (``pipeline/stream/graph.py``)
differ only in where documents come from and how results are committed; every per-document
stage is wired here, once, so a fix to the chain is made in one place.

``to_article`` is the same chain as plain calls, for a caller without Beam (the extraction
evaluation): the functions the three stages' DoFns apply, in the order ``DocumentsToArticles``
applies the stages, with the state their ``setup`` builds (``DocumentsToArticles.steps``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import apache_beam as beam
from news_ingest.transforms.clean import Clean, CleanOptions, RuleSet, clean_article
from news_ingest.transforms.extract import Extract, ExtractOptions, extract
from news_ingest.transforms.normalize import (
    LanguageIdentifier,
    Normalize,
    NormalizeOptions,
    load_language_identifier,
    normalize_article,
)
from news_ingest.transforms.rulepack import RulePack
from news_ingest.transforms.schema import Article, DeadLetter, RawDocument


@dataclasses.dataclass(frozen=True)
class ArticleSteps:
    """What the core's stages run with, built: the sections and the state their DoFns build
    in ``setup`` (the cleaning rule set, the language identifier)."""

    extract: ExtractOptions
    rules: RuleSet
    clean: CleanOptions
    identifier: LanguageIdentifier | None
    normalize: NormalizeOptions


def to_article(raw: RawDocument, steps: ArticleSteps) -> Article | DeadLetter:
    """One document through extract, clean and normalize without Beam: the article, or the
    rejection of the stage that stopped it. An exception propagates (in a pipeline the stage
    makes it a dead letter; so does an extraction past its timeout)."""
    article = extract(raw, steps.extract)
    if isinstance(article, Article):
        article = clean_article(article, steps.rules, steps.clean.min_words)
    if isinstance(article, Article):
        article = normalize_article(article, steps.identifier, steps.normalize)
    return article


class DocumentsToArticles(beam.PTransform):
    """RawDocument -> (normalized Article, DeadLetter of any of the three stages).

    Args:
        extract: the ``extract:`` section (its isolation resolved for the runner).
        clean: the ``clean:`` section.
        normalize: the ``normalize:`` section.
        default_pack: the default cleaning rule pack, loaded from ``clean.rules``.
        source_packs: the per-source rule packs, loaded from ``clean.packs``.
    """

    def __init__(
        self,
        extract: ExtractOptions,
        clean: CleanOptions,
        normalize: NormalizeOptions,
        default_pack: RulePack,
        source_packs: Sequence[RulePack] = (),
    ):
        super().__init__()
        self.extract = Extract(extract)
        # Built now so that a bad rule pack fails while the graph is built.
        self.clean = Clean(default_pack, source_packs, clean)
        self.normalize = Normalize(normalize)

    def steps(self) -> ArticleSteps:
        """This core's settings and state for ``to_article`` (built now, as its DoFns' setup
        builds them on a worker)."""
        clean = self.clean.options
        rules = RuleSet(
            self.clean.default, self.clean.sources, min_repeat_words=clean.min_repeat_words
        )
        return ArticleSteps(
            self.extract.options, rules, clean, load_language_identifier(), self.normalize.options
        )

    def expand(self, docs):  # type: ignore[no-untyped-def]
        extracted, extract_dead = docs | "Extract" >> self.extract
        cleaned, clean_dead = extracted | "Clean" >> self.clean
        normalized, normalize_dead = cleaned | "Normalize" >> self.normalize
        dead = (extract_dead, clean_dead, normalize_dead) | "CoreDeadLetters" >> beam.Flatten()
        return normalized, dead
