"""One batch run: list inputs, build and run the graph, commit the files, write the manifest."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions

from pipeline import __version__, error_budget, graph, manifest, progress, runners
from pipeline.config import Config, resolve
from transforms import sinks
from transforms.schema import ROW_ID, SCHEMA_VERSION, TABLES, UTC
from transforms.sources import list_inputs

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UsageError(ValueError):
    """Bad usage: a missing input, an unwritable output, a malformed run id."""


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise UsageError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-'")
    return run_id


def check_output(output: str) -> None:
    """Fail early with a clear message when the output folder cannot be written."""
    try:
        os.makedirs(output, exist_ok=True)
        probe = os.path.join(output, f".write-test-{os.getpid()}")
        with open(probe, "w", encoding="utf-8") as fh:
            fh.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise UsageError(f"output {output} is not writable: {exc.strerror or exc}") from exc


def stage_counters(result: beam.runners.runner.PipelineResult) -> dict[str, dict[str, int]]:
    """Beam counters summed per namespace (stage) and name; empty when the runner has none."""
    stages: dict[str, dict[str, int]] = collections.defaultdict(dict)
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # some runners do not report metrics; the tables still count
        return {}
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        key = counter.key.metric
        stages[key.namespace][key.name] = stages[key.namespace].get(key.name, 0) + int(value or 0)
    return {k: dict(sorted(v.items())) for k, v in sorted(stages.items())}


def exclude_ingested(output: str, run_id: str, ids: frozenset[str]) -> int:
    """Drop staged article and duplicate rows whose id is in ``ids``; return how many.

    A replay re-reads whole input files; a file that held several documents (a feed) may hold
    some that an earlier run already ingested, and those must not be ingested twice.
    """
    dropped = 0
    for name in ("articles", "duplicates"):
        for path in error_budget.staged_files(output, run_id, name):
            table = pq.read_table(path)
            keep = pc.invert(pc.is_in(table.column(ROW_ID[name]), value_set=pa.array(sorted(ids))))
            kept = table.filter(keep)
            if kept.num_rows < table.num_rows:
                dropped += table.num_rows - kept.num_rows
                sinks.write_parquet(kept, name, path)
    return dropped


@dataclasses.dataclass(frozen=True)
class RunResult:
    manifest: dict[str, Any]
    manifest_path: str
    # A template launch: the job was staged, and commits and writes the manifest itself.
    launched: bool = False


def run(
    cfg: Config,
    run_id: str | None = None,
    beam_args: list[str] | None = None,
    show_progress: bool = False,
    *,
    replay_of: str | None = None,
    exclude_ids: frozenset[str] = frozenset(),
) -> RunResult:
    """Run the batch pipeline described by ``cfg``.

    Args:
        cfg: the effective configuration.
        run_id: the run id (a rerun with the same id replaces that run's files).
        beam_args: Beam pipeline flags.
        show_progress: redraw a progress line on stderr while it runs (local runners only:
            remote workers cannot reach it).
        replay_of: the run whose dead letters this run replays (recorded in the manifest).
        exclude_ids: article ids already ingested: rows with these ids are not committed.

    When more than ``cfg.errors.max_failure_ratio`` of the records failed, the run's articles
    and duplicates are not committed (its dead letters are) and the manifest's status is
    ``failed_error_budget``; see ``pipeline.error_budget``.
    """
    started = dt.datetime.now(UTC)
    t0 = time.monotonic()
    run_id = check_run_id(run_id) if run_id else new_run_id(started)
    options = runners.pipeline_options(
        cfg.runner.name, cfg.runner.workers, beam_args or [], cfg.runner.options
    )
    # Remote inputs (s3://, gs://) are listed here, with the file-system settings the workers get.
    FileSystems.set_options(options)
    try:
        paths = list_inputs([resolve(p) for p in cfg.inputs])
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    output = cfg.output.path
    check_output(output)
    sinks.prepare_run(output, run_id)
    index = sinks.index_dir(output, cfg.dedup.index_path) if cfg.dedup.index else None
    index_files = sinks.index_files(index, exclude_run=run_id) if index else []
    if index:
        sinks.prepare_index(index, run_id)

    ctx = graph.RunContext(run_id=run_id, started_at=started, pipeline_version=__version__)
    p = beam.Pipeline(options=options)
    not_before = started - dt.timedelta(seconds=cfg.dedup.ttl)
    outputs = graph.build(p, cfg, paths, index_files, run_id, not_before)
    written = graph.write(outputs, output, ctx, cfg.output.shards, index)
    finish = functools.partial(
        finish_run,
        cfg,
        run_id,
        started,
        len(paths),
        index,
        len(index_files),
        options.get_all_options(drop_default=True),
        replay_of=replay_of,
        exclude_ids=exclude_ids,
    )
    if options.view_as(GoogleCloudOptions).template_location:
        # A template launch (a Dataflow Flex Template's launcher): run() only stages the job,
        # which starts after this process has exited, so the commit is the job's last step.
        marker = os.path.join(sinks.staging_dir(output, run_id), LAUNCH_MARKER)
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write(run_id)
        _ = (
            p
            | "StartCommit" >> beam.Create([marker])
            | "CommitRun"
            >> beam.Map(_finish_in_job, finish, *[beam.pvalue.AsList(files) for files in written])
        )
        p.run()
        return RunResult(manifest={}, manifest_path="", launched=True)
    with contextlib.ExitStack() as stack:
        if show_progress and runners.is_local(cfg.runner.name, options):
            reporter = stack.enter_context(progress.Reporter(total=len(paths)))
            outputs.finished | "ReportProgress" >> progress.CountDocuments(reporter.port)
        result = p.run()
        result.wait_until_finish()
    return finish(stage_counters(result), t0)


# Left in a run's staging folder by a template launch; the commit removes the folder with it.
LAUNCH_MARKER = ".template-launch"


def commit_once(marker: str, finish: Callable[..., RunResult]) -> RunResult | None:
    """``finish`` the run unless it is already committed: the commit removes the staging folder
    and ``marker`` with it, so a commit step the runner retries after it succeeded (a lost
    worker) finds no marker and leaves the committed tables alone."""
    if not os.path.exists(marker):
        return None
    return finish({}, None)


def _finish_in_job(marker: str, finish: Callable[..., RunResult], *_written: list[str]) -> None:
    """The job's commit step: runs once every table writer is done (their files are its side
    inputs); Beam's counters are not readable from inside the job."""
    commit_once(marker, finish)


def finish_run(
    cfg: Config,
    run_id: str,
    started: dt.datetime,
    inputs: int,
    index: str | None,
    index_files: int,
    options: dict[str, Any],
    stages: dict[str, dict[str, int]],
    t0: float | None,
    *,
    replay_of: str | None = None,
    exclude_ids: frozenset[str] = frozenset(),
) -> RunResult:
    """Commit a run whose pipeline has finished and write its manifest (on the launcher after
    the job, or as the job's last step in a template launch). ``t0`` is the launcher's
    monotonic start time (None: the wall clock since ``started``)."""
    output = cfg.output.path
    excluded = exclude_ingested(output, run_id, exclude_ids) if exclude_ids else 0
    budget, staged = error_budget.measure(output, run_id, cfg.errors.max_failure_ratio)
    if budget.exceeded:
        error_budget.withhold(output, run_id)
    files = sinks.commit_run(output, run_id, started.date())
    if budget.exceeded:
        files = error_budget.uncommit(output, run_id, files)
    if index:
        if budget.exceeded:
            # The withheld articles must not count as seen by later runs: commit an empty
            # index for this run (replacing an earlier attempt's).
            sinks.prepare_index(index, run_id)
        # After the tables: a crash in between re-ingests this run's articles next time, but
        # never marks an article as a copy of one that was not written.
        sinks.commit_index(index, run_id)
        # Entries past the TTL no longer match; files holding only those go.
        sinks.prune_index(index, started - dt.timedelta(seconds=cfg.dedup.ttl))
    finished = dt.datetime.now(UTC)
    seconds = time.monotonic() - t0 if t0 is not None else (finished - started).total_seconds()
    counts = {name: 0 for name in TABLES} | manifest.table_counts(files)
    documents = budget.records
    body: dict[str, Any] = {
        "run_id": run_id,
        "status": error_budget.STATUS_EXCEEDED if budget.exceeded else "succeeded",
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 3),
        "docs_per_s": round(documents / seconds, 2) if seconds > 0 else 0.0,
        "pipeline_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "runner": cfg.runner.name,
        "workers": cfg.runner.workers,
        "options": dict(options),
        "output": output,
        "ingest_date": started.date().isoformat(),
        "inputs": {"paths": inputs, "documents": documents, "specs": list(cfg.inputs)},
        "dedup_index": {"path": index, "files_read": index_files} if index else None,
        "counts": counts,
        "error_budget": budget.as_dict(),
        "stages": stages,
        "dead_letter_reasons": manifest.dead_letter_reasons(files["dead_letters"]),
        "top_rules": manifest.top_rules(files.get("articles", [])),
        "files": {k: [os.path.relpath(p, output) for p in v] for k, v in files.items()},
        "config": dataclasses.asdict(cfg),
    }
    if budget.exceeded:
        body["withheld"] = {name: staged[name] for name in error_budget.WITHHELD_TABLES}
    if replay_of:
        body["replay_of"] = replay_of
        body["excluded_already_ingested"] = excluded
    path = manifest.write_manifest(output, body)
    return RunResult(manifest=body, manifest_path=path)
