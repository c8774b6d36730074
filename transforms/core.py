"""The core both drivers share: RawDocument -> (Article, DeadLetter) through extract, clean and
normalize.

The batch graph (``pipeline/graph.py``) and the streaming graph (``pipeline/stream/graph.py``)
differ only in where documents come from and how results are committed; every per-document
stage is wired here, once, so a fix to the chain is made in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam
from news_ingest.transforms.clean import Clean, CleanOptions
from news_ingest.transforms.extract import Extract, ExtractOptions
from news_ingest.transforms.normalize import Normalize, NormalizeOptions
from news_ingest.transforms.rulepack import RulePack


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

    def expand(self, docs):  # type: ignore[no-untyped-def]
        extracted, extract_dead = docs | "Extract" >> self.extract
        cleaned, clean_dead = extracted | "Clean" >> self.clean
        normalized, normalize_dead = cleaned | "Normalize" >> self.normalize
        dead = (extract_dead, clean_dead, normalize_dead) | "CoreDeadLetters" >> beam.Flatten()
        return normalized, dead
