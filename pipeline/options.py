"""Runner flags of news-ingest that Beam does not define itself.

Only flags about where and how the pipeline runs belong here; what the pipeline does is in the
YAML config (``pipeline/config.py``).
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions


class NewsIngestRunnerOptions(PipelineOptions):
    """Flags for the runners news-ingest starts itself."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dask_local_workers",
            type=int,
            default=None,
            help="Worker processes of the local Dask cluster started (on 127.0.0.1) and shut "
            "down by the run when no --dask_client_address is given.",
        )
        parser.add_argument(
            "--dask_threads_per_worker",
            type=int,
            default=1,
            help="Threads per worker process of that local Dask cluster. Extraction holds the "
            "GIL, so more than one thread per process rarely helps.",
        )
