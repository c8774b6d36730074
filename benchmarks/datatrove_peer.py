"""Variant (e) of bench_throughput.py: the same job as a datatrove pipeline.

Run by the benchmark with the python of its own datatrove venv (never the project's venv):

    DATATROVE_PYTHON benchmarks/datatrove_peer.py CORPUS WORKDIR [--tasks 2] [--workers 2]

Four LocalPipelineExecutor stages, wired as datatrove's own MinHash example
(``examples/minhash_deduplication.py``) on top of its extraction step:

1. read the HTML files, extract with its ``Trafilatura`` step, keep the extracted documents
   (``JsonlWriter``) and write MinHash signatures (``MinhashDedupSignature``); ``--tasks`` tasks;
2. ``MinhashDedupBuckets``: one task per bucket;
3. ``MinhashDedupCluster``: one task;
4. re-read the extracted documents, drop all but one per cluster (``MinhashDedupFilter``, the
   dropped ones to an exclusion ``ParquetWriter``), write the rest with ``ParquetWriter``;
   ``--tasks`` tasks (stage 4 must see the same documents per task as stage 1).

Stages 2-4 move only signatures and ``(file, doc)`` ids; text is written twice (the extracted
JSONL and the Parquet output), as in datatrove's own pipelines. Prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter


class HtmlFileReader(BaseDiskReader):
    """One document per HTML file: datatrove reads WARC, JSONL, Parquet ..., not a folder of
    pages. Bytes are decoded as UTF-8, else by the charset cchardet guesses (what its
    ``WarcReader`` does)."""

    name = "HTML files"

    def read_file(self, filepath: str) -> Iterator[Any]:
        with self.data_folder.open(filepath, "rb") as fh:
            content = fh.read()
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            import cchardet

            charset = cchardet.detect(content).get("encoding") or "utf-8"
            text = content.decode(charset, errors="replace")
        document = self.get_document_from_dict({"text": text, "id": filepath}, filepath, 0)
        if document:
            yield document


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", help="folder of *.html files")
    ap.add_argument("workdir", help="folder for datatrove's intermediate files and output")
    ap.add_argument("--tasks", type=int, default=2, help="tasks of stages 1 and 4 (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--timeout", type=float, default=30.0, help="extraction timeout per page")
    ap.add_argument("--favour-precision", action="store_true", help="trafilatura precision mode")
    ap.add_argument("--no-tables", action="store_true", help="trafilatura include_tables=False")
    args = ap.parse_args()

    work = args.workdir
    config = MinhashConfig()  # datatrove's defaults: 5-grams, 14 buckets of 8 hashes
    extractor = Trafilatura(
        favour_precision=args.favour_precision,
        timeout=args.timeout,
        # trafilatura's own default, as in the bare loop (a); datatrove's default is True
        deduplicate=False,
        include_tables=not args.no_tables,
    )
    common = {"workers": args.workers, "skip_completed": False}
    stage1 = LocalPipelineExecutor(
        pipeline=[
            HtmlFileReader(args.corpus, glob_pattern="*.html"),
            extractor,
            JsonlWriter(os.path.join(work, "extracted")),
            MinhashDedupSignature(os.path.join(work, "signatures"), config=config),
        ],
        tasks=args.tasks,
        logging_dir=os.path.join(work, "logs", "1-signatures"),
        **common,
    )
    stage2 = LocalPipelineExecutor(
        pipeline=[
            MinhashDedupBuckets(
                os.path.join(work, "signatures"), os.path.join(work, "buckets"), config=config
            )
        ],
        tasks=config.num_buckets,
        logging_dir=os.path.join(work, "logs", "2-buckets"),
        depends=stage1,
        **common,
    )
    stage3 = LocalPipelineExecutor(
        pipeline=[
            MinhashDedupCluster(
                os.path.join(work, "buckets"), os.path.join(work, "remove_ids"), config=config
            )
        ],
        tasks=1,
        logging_dir=os.path.join(work, "logs", "3-clusters"),
        depends=stage2,
        **common,
    )
    stage4 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(os.path.join(work, "extracted")),
            MinhashDedupFilter(
                os.path.join(work, "remove_ids"),
                exclusion_writer=ParquetWriter(os.path.join(work, "removed")),
            ),
            ParquetWriter(os.path.join(work, "output")),
        ],
        tasks=args.tasks,
        logging_dir=os.path.join(work, "logs", "4-filter"),
        depends=stage3,
        **common,
    )
    t0 = time.perf_counter()
    stage4.run()
    seconds = time.perf_counter() - t0

    import pyarrow.parquet as pq

    def rows(folder: str) -> int:
        path = os.path.join(work, folder)
        if not os.path.isdir(path):
            return 0
        return sum(
            pq.ParquetFile(os.path.join(path, name)).metadata.num_rows
            for name in os.listdir(path)
            if name.endswith(".parquet")
        )

    print(json.dumps({"seconds": seconds, "kept": rows("output"), "removed": rows("removed")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
