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


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        found += [sub, *_subclasses(sub)]
    return found


def beam_parser() -> argparse.ArgumentParser:
    """An argument parser that knows every flag of Beam's PipelineOptions and of the
    runner-specific subclasses (Dataflow, Flink, Dask, ... and ours), as Beam parses them."""
    # Imported for their side effect: each module registers its runner's PipelineOptions.
    import apache_beam.runners.dask.dask_runner  # noqa: F401
    import apache_beam.runners.portability.flink_runner  # noqa: F401
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {c: None for c in _subclasses(PipelineOptions)}:
        cls._add_argparse_args(parser)  # type: ignore[attr-defined]
    return parser


def unknown_flags(flags: list[str]) -> list[str]:
    """The arguments of ``flags`` that no Beam PipelineOptions class defines (in order)."""
    _known, unknown = beam_parser().parse_known_args(flags)
    return list(unknown)
