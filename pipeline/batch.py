"""One batch run: list inputs, build and run the graph, commit the files, write the manifest."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import multiprocessing
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions
from news_ingest.pipeline import __version__, error_budget, graph, manifest, progress, runners
from news_ingest.pipeline.config import Config, landing_rule, resolve
from news_ingest.transforms import atomic, files, sinks, split
from news_ingest.transforms.children import kill_children
from news_ingest.transforms.files import is_remote
from news_ingest.transforms.landing import is_ready
from news_ingest.transforms.schema import ROW_ID, SCHEMA_VERSION, TABLES, UTC
from news_ingest.transforms.sources import list_inputs

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UsageError(ValueError):
    """Bad usage: a missing input, an unwritable output, a malformed run id."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped a run before its commit; its staged files are removed.

    A ``BaseException`` (as ``KeyboardInterrupt``): no ``except Exception`` on the way up (in
    Beam or in a stage) may take it for a failed element and carry on.
    """

    def __init__(self, signum: int, run_id: str):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.run_id = run_id

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# Set once the interruption of this process's run has been reported (by the CLI or the
# watchdog below), so that it is reported once.
_REPORTED = threading.Event()
# Seconds the main thread has to unwind after a signal before the watchdog ends the process.
UNWIND_S = 10.0


def interrupted_line(run_id: str) -> str:
    return f"news-ingest: interrupted; nothing committed for run {run_id}"


def report_interrupted(run_id: str) -> None:
    """Print the one line of an interrupted run on stderr (once per process)."""
    if not _REPORTED.is_set():
        _REPORTED.set()
        print(interrupted_line(run_id), file=sys.stderr, flush=True)


def _watchdog(signum: int, run_id: str, cleanup: Any) -> None:
    """End the process if the run has not unwound ``UNWIND_S`` after the signal.

    Beam may catch the exception a signal raises (it arrives wherever the main thread is, in a
    wait loop too) and wait on for workers that are gone; a signal must still end the run.
    """
    deadline = time.monotonic() + UNWIND_S
    while time.monotonic() < deadline:
        kill_children()  # Beam may have started new workers meanwhile
        time.sleep(0.25)
    if cleanup is not None:
        cleanup()  # again: a writer may have staged a file after the first cleanup
    report_interrupted(run_id)
    os._exit(128 + signum)


@contextlib.contextmanager
def interruptible(run_id: str, cleanup: Any = None) -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into ``Interrupted`` while the pipeline runs; yields the signals got.

    On the signal, the run's child processes are killed and ``cleanup()`` removes what it
    staged, at once: whatever Beam does next, nothing of the run is committed, and a watchdog
    ends the process if it has not ended within ``UNWIND_S``. Logging and the tracebacks of
    Beam's threads are silenced from the signal on: what Beam reports while the run unwinds is
    noise, the caller reports the interruption in one line (``report_interrupted``).
    """
    got: list[int] = []
    excepthook = threading.excepthook
    unraisablehook = sys.unraisablehook

    def quiet_after_signal(hook_args: Any) -> None:
        if not got:
            excepthook(hook_args)

    def quiet_unraisable(hook_args: Any) -> None:
        if not got:
            unraisablehook(hook_args)

    def handler(signum: int, _frame: Any) -> None:
        if not got:
            got.append(signum)
            logging.disable(logging.CRITICAL)
            # Without their worker processes and extraction child, the run's waits end.
            kill_children()
            if cleanup is not None:
                cleanup()
            threading.Thread(target=_watchdog, args=(signum, run_id, cleanup), daemon=True).start()
            raise Interrupted(signum, run_id)

    previous: list[tuple[int, Any]] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous.append((sig, signal.signal(sig, handler)))
        threading.excepthook = quiet_after_signal
        sys.unraisablehook = quiet_unraisable
    try:
        yield got
    finally:
        for signum, old in previous:
            signal.signal(signum, old)
        if previous and not got:
            # After a signal the hooks stay: Beam's threads end (and complain) after the run.
            threading.excepthook = excepthook
            sys.unraisablehook = unraisablehook
        if got:
            logging.disable(logging.NOTSET)


def launch(p: beam.Pipeline, runner: str, options: Any) -> beam.runners.runner.PipelineResult:
    """Start the pipeline; a remote runner that cannot start it (missing options, a missing
    ``apache-beam[gcp]``, no Flink job server) is a one-line usage error, not a traceback."""
    try:
        return p.run()
    except Exception as exc:
        if runners.is_local(runner, options):
            raise  # a failure of the pipeline itself: its traceback is the diagnosis
        raise UsageError(f"{runner} did not start the job: {runners.launch_hint(exc)}") from exc


def discard_run(output: str, run_id: str, index: str | None) -> None:
    """Remove what an interrupted run staged, and stop the child processes it started."""
    # An extraction subprocess would otherwise finish its page first, and Beam's worker
    # processes (--workers N) ignore SIGINT: the launcher's threads would wait for them.
    kill_children()
    multiprocessing.active_children()  # reaps the killed multiprocessing children
    sinks.prepare_run(output, run_id)
    files.remove_empty_dir(files.join(output, sinks.STAGING))  # unless another run stages there
    if index:
        sinks.prepare_index(index, run_id)
        files.remove_empty_dir(files.join(index, sinks.STAGING))


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise UsageError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-'")
    return run_id


def check_output(output: str) -> None:
    """Fail early with a clear message when the output folder (or bucket) cannot be written."""
    try:
        files.makedirs(output)
        probe = files.join(output, f".write-test-{os.getpid()}")
        atomic.write_text(probe, "ok")
        files.remove(probe)
    except OSError as exc:
        raise UsageError(f"output {output} is not writable: {exc.strerror or exc}") from exc
    except Exception as exc:  # Beam's object-store errors (no bucket, no access) are its own
        if not is_remote(output):
            raise
        raise UsageError(f"output {output} is not writable: {exc}") from exc


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
            table = sinks.read_parquet(path)
            keep = pc.invert(pc.is_in(table.column(ROW_ID[name]), value_set=pa.array(sorted(ids))))
            kept = table.filter(keep)
            if kept.num_rows < table.num_rows:
                dropped += table.num_rows - kept.num_rows
                sinks.write_parquet(kept, name, path)
    return dropped


def input_paths(cfg: Config, now: float) -> tuple[list[str], list[str]]:
    """The input files of a run, and those left for a later run by the landing rule.

    With ``read.landing`` the inputs are landing folders written by other programs: a file is
    taken only when complete (``news_ingest.transforms.landing``, ``stream.settle_s`` and ``stream.marker``).
    """
    try:
        listed = list_inputs([resolve(p) for p in cfg.inputs])
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not cfg.read.landing:
        return listed, []
    rule = landing_rule(cfg)
    ready: list[str] = []
    waiting: list[str] = []
    for path in listed:
        if is_remote(path):
            # An object store shows an object only once its upload is complete.
            ready.append(path)
            continue
        try:
            complete = is_ready(path, os.stat(path), now, rule)
        except OSError:
            continue  # gone since it was listed
        (ready if complete else waiting).append(path)
    if not ready:
        raise UsageError(
            f"no input is complete yet ({len(waiting)} waiting for the landing rule: "
            f"stream.settle_s {rule.settle_s:g} s, marker {rule.marker})"
        )
    return ready, waiting


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
    ``failed_error_budget``; see ``news_ingest.pipeline.error_budget``.
    """
    started = dt.datetime.now(UTC)
    t0 = time.monotonic()
    run_id = check_run_id(run_id) if run_id else new_run_id(started)
    options = runners.pipeline_options(
        cfg.runner.name, cfg.runner.workers, beam_args or [], cfg.runner.options
    )
    # Remote inputs (s3://, gs://) are listed here, with the file-system settings the workers get.
    FileSystems.set_options(options)
    paths, waiting = input_paths(cfg, time.time())
    output = cfg.output.path
    check_output(output)
    sinks.prepare_run(output, run_id)
    index = sinks.index_dir(output, cfg.dedup.index_path) if cfg.dedup.index else None
    index_files = sinks.index_files(index, exclude_run=run_id) if index else []
    if index:
        sinks.prepare_index(index, run_id)

    ctx = graph.RunContext(run_id=run_id, started_at=started, pipeline_version=__version__)
    try:
        p = beam.Pipeline(options=options)  # Dataflow checks its options here
    except ValueError as exc:
        raise UsageError(f"{cfg.runner.name}: {runners.launch_hint(exc)}") from exc
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
        not_ready=len(waiting),
    )
    if options.view_as(GoogleCloudOptions).template_location:
        # A template launch (a Dataflow Flex Template's launcher): run() only stages the job,
        # which starts after this process has exited, so the commit is the job's last step.
        marker = files.join(sinks.staging_dir(output, run_id), LAUNCH_MARKER)
        atomic.write_text(marker, run_id)
        _ = (
            p
            | "StartCommit" >> beam.Create([marker])
            | "CommitRun"
            >> beam.Map(_finish_in_job, finish, *[beam.pvalue.AsList(shards) for shards in written])
        )
        p.run()
        return RunResult(manifest={}, manifest_path="", launched=True)
    discard = functools.partial(discard_run, output, run_id, index)
    with interruptible(run_id, discard) as got, contextlib.ExitStack() as stack:
        try:
            if show_progress and runners.is_local(cfg.runner.name, options):
                reporter = stack.enter_context(progress.Reporter(total=len(paths)))
                outputs.finished | "ReportProgress" >> progress.CountDocuments(reporter.port)
            with runners.worker_processes(cfg.runner.name, options):
                result = launch(p, cfg.runner.name, options)
                result.wait_until_finish()
        except BaseException:
            if got:
                # Beam may have wrapped the signal's exception in its own (RuntimeError).
                discard()
                raise Interrupted(got[0], run_id) from None
            raise
        if got:
            # The exception was swallowed on its way (raised inside a finalizer, or caught by
            # a wait loop of Beam's), and Beam finished: still nothing may be committed.
            discard()
            raise Interrupted(got[0], run_id)
    return finish(stage_counters(result), t0)


# Left in a run's staging folder by a template launch; the commit removes the folder with it.
LAUNCH_MARKER = ".template-launch"


def commit_once(marker: str, finish: Callable[..., RunResult]) -> RunResult | None:
    """``finish`` the run unless it is already committed: the commit removes the staging folder
    and ``marker`` with it, so a commit step the runner retries after it succeeded (a lost
    worker) finds no marker and leaves the committed tables alone."""
    if not files.exists(marker):
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
    not_ready: int = 0,
) -> RunResult:
    """Commit a run whose pipeline has finished and write its manifest (on the launcher after
    the job, or as the job's last step in a template launch). ``t0`` is the launcher's
    monotonic start time (None: the wall clock since ``started``)."""
    output = cfg.output.path
    excluded = exclude_ingested(output, run_id, exclude_ids) if exclude_ids else 0
    # The writers' counters hold the figures; without them (a template launch, a runner
    # without metrics) or after a replay dropped rows, the written files are read instead.
    written = stages.get(split.STAGE)
    counted = written is not None and not exclude_ids
    reasons = split.dead_letter_reasons(written) if written is not None and counted else None
    budget, staged = error_budget.measure(output, run_id, cfg.errors.max_failure_ratio, reasons)
    if budget.exceeded:
        error_budget.withhold(output, run_id)
    # The manifest is the commit marker: an earlier attempt's goes before its files are replaced.
    manifest.withdraw(output, run_id)
    committed = sinks.commit_run(output, run_id, started.date())
    if budget.exceeded:
        committed = error_budget.uncommit(output, run_id, committed)
    finished = dt.datetime.now(UTC)
    seconds = time.monotonic() - t0 if t0 is not None else (finished - started).total_seconds()
    counts = {name: 0 for name in TABLES} | manifest.table_counts(committed)
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
        "inputs": {
            "paths": inputs,
            "documents": documents,
            "specs": list(cfg.inputs),
            "not_ready": not_ready,
        },
        "dedup_index": {"path": index, "files_read": index_files} if index else None,
        "counts": counts,
        "error_budget": budget.as_dict(),
        "stages": stages,
        "dead_letter_reasons": (
            reasons
            if reasons is not None
            else manifest.dead_letter_reasons(committed["dead_letters"])
        ),
        "top_rules": (
            ({} if budget.exceeded else split.rules_fired(written))
            if written is not None and counted
            else manifest.top_rules(committed.get("articles", []))
        ),
        "files": manifest.relative_files(output, committed),
        "config": dataclasses.asdict(cfg),
    }
    if budget.exceeded:
        body["withheld"] = {name: staged[name] for name in error_budget.WITHHELD_TABLES}
    if replay_of:
        body["replay_of"] = replay_of
        body["excluded_already_ingested"] = excluded
    path = manifest.write_manifest(output, body)
    if index:
        if budget.exceeded:
            # The withheld articles must not count as seen by later runs: commit an empty
            # index for this run (replacing an earlier attempt's).
            sinks.prepare_index(index, run_id)
        # After the manifest, the commit marker: a crash in between re-ingests this run's
        # articles next time (a loader merges them on their ids), but never marks an article
        # as a copy of one that no manifest lists.
        sinks.commit_index(index, run_id)
        # Entries past the TTL no longer match; files holding only those go.
        sinks.prune_index(index, started - dt.timedelta(seconds=cfg.dedup.ttl))
    return RunResult(manifest=body, manifest_path=path)
