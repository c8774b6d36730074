"""Runner choice: the Beam PipelineOptions for each supported runner."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


def pipeline_options(runner: str, workers: int, beam_args: list[str]) -> PipelineOptions:
    """Options for ``runner`` with ``workers`` worker processes, plus free-form Beam flags.

    The local runner is named explicitly (``DirectRunner``): Beam's default may try to download
    a Prism binary at start-up, which on a closed network only wastes time.
    """
    if runner == "direct":
        mode = "in_memory" if workers == 1 else "multi_processing"
        return PipelineOptions(
            beam_args,
            runner="DirectRunner",
            direct_num_workers=workers,
            direct_running_mode=mode,
        )
    raise ValueError(f"runner {runner!r} is not available in this build")
