"""The ``news-ingest`` command line."""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from typing import Any

from news_ingest.pipeline import __version__
from news_ingest.pipeline.config import RUNNERS, Config, ConfigError

# The flags the run, stream and replay commands share (others take some of them), each
# defined once; a command may say in its own words what the flag means for it.
SHARED_FLAGS: dict[str, dict[str, Any]] = {
    "--output": {"metavar": "DIR", "help": "output root (default: output/)"},
    "--config": {"metavar": "FILE", "help": "YAML file overlaying configs/default.yaml"},
    "--run-id": {"metavar": "ID", "help": "run id carried by every file name"},
}


def _shared(cmd: argparse.ArgumentParser, flag: str, **override: Any) -> None:
    """Add shared flag ``flag`` to ``cmd`` (in ``cmd``'s order of flags: its help lists them
    so), with ``override`` for the command's own wording."""
    cmd.add_argument(flag, **{**SHARED_FLAGS[flag], **override})


def _load_config(args: argparse.Namespace, over: dict[str, Any]) -> Config:
    """The config of a run, stream or replay: ``--config`` over the packaged defaults, then
    the command's flags as ``over`` and ``--output``."""
    from news_ingest.pipeline import config

    if args.output:
        over.setdefault("output", {})["path"] = args.output
    return config.load(args.config, over)


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the batch pipeline (default: seeds/ -> output/)",
        description="Run the batch pipeline. Flags not listed here are passed to Beam.",
    )
    run.add_argument(
        "--input",
        action="append",
        metavar="PATH",
        help="file, directory (recursive) or glob; repeatable (default: seeds/)",
    )
    run.add_argument(
        "--sitemap",
        action="append",
        metavar="URL|FILE",
        help="sitemap, sitemap index or news sitemap to fetch pages from; repeatable",
    )
    run.add_argument(
        "--urls", action="append", metavar="FILE", help="file of page URLs, one per line"
    )
    _shared(run, "--output")
    _shared(run, "--config")
    run.add_argument("--workers", type=int, metavar="N", help="worker processes (default 1)")
    run.add_argument("--runner", choices=RUNNERS, help="Beam runner (default direct)")
    _shared(run, "--run-id", help="run id; a rerun with the same id replaces its files")
    run.add_argument("--shards", type=int, metavar="N", help="Parquet files per table")
    run.add_argument(
        "--summary-json",
        metavar="FILE",
        help="also write the run's summary (its manifest) to FILE as JSON, for schedulers",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="list the inputs, feeds and settings the run would use, and exit without running",
    )
    run.set_defaults(func=_cmd_run)


def _add_load(sub: Any) -> None:
    load = sub.add_parser(
        "load",
        help="merge an output folder's Parquet into a DuckDB database",
        description="Merge the committed tables of an output folder into DuckDB tables "
        "articles, duplicates and dead_letters, keyed by their ids (loading twice is a no-op). "
        "Only files a run's manifest lists are read. Flags not listed here are passed to Beam's "
        "file systems (--s3_endpoint_url ... for an output on s3://).",
    )
    load.add_argument("--duckdb", required=True, metavar="FILE", help="DuckDB database file")
    _shared(load, "--output", help="output root to load, or s3://, gs:// (default: output/)")
    _shared(load, "--config")
    _shared(load, "--run-id", help="load only this run's files")
    load.set_defaults(func=_cmd_load)


def _cmd_load(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from news_ingest.pipeline import config, load

    cfg = config.load(args.config)
    output = args.output or config.resolve(cfg.output.path)
    try:
        loads = load.load_duckdb(args.duckdb, output, args.run_id)
    except load.LoadError as exc:
        print(f"news-ingest: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(load.summary_lines(args.duckdb, loads)))
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    over: dict[str, Any] = {}
    if args.input:
        over["inputs"] = list(args.input)
    elif args.sitemap or args.urls:
        over["inputs"] = []  # pages to fetch were named: not the default seeds as well
    if args.sitemap:
        over.setdefault("discover", {})["sitemaps"] = list(args.sitemap)
    if args.urls:
        over.setdefault("discover", {})["url_lists"] = list(args.urls)
    if args.shards is not None:
        over.setdefault("output", {})["shards"] = args.shards
    if args.workers is not None:
        over.setdefault("runner", {})["workers"] = args.workers
    if args.runner:
        over.setdefault("runner", {})["name"] = args.runner
    return over


def _cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from news_ingest.pipeline import batch, manifest

    cfg = _load_config(args, _overrides(args))
    if args.dry_run:
        print("\n".join(dry_run_lines(cfg, args.run_id, beam_args)))
        return 0
    show_progress = sys.stderr.isatty() and not args.quiet
    result = batch.run(cfg, args.run_id, beam_args, show_progress=show_progress)
    if result.launched:
        print("news-ingest: job staged; it commits the run and writes the manifest itself")
        return 0
    if args.summary_json:
        write_summary(args.summary_json, result.manifest)
    if not args.quiet:
        print("\n".join(manifest.summary_lines(result.manifest)))
    return manifest.exit_code(result.manifest)


def write_summary(path: str, body: dict[str, Any]) -> None:
    """Write a run's summary as JSON to ``path`` (through a temporary name: a scheduler that
    polls for the file never reads half of it)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def dry_run_lines(cfg: Any, run_id: str | None, beam_args: list[str]) -> list[str]:
    """What a batch run of ``cfg`` would read and how it would run (nothing is written)."""
    import time

    from news_ingest.pipeline import batch, config, runners

    paths, waiting = batch.input_paths(cfg, time.time())
    feeds = config.feed_sources(cfg)
    options = runners.pipeline_options(
        cfg.runner.name, cfg.runner.workers, beam_args, cfg.runner.options
    )
    lines = [f"news-ingest run (dry run{f', run id {run_id}' if run_id else ''}): nothing runs"]
    lines.append(f"  inputs ({len(paths)} files from {', '.join(cfg.inputs) or 'none'}):")
    lines += [f"    {p}" for p in paths]
    if waiting:
        lines.append(f"  not complete yet (landing rule), left for a later run: {len(waiting)}")
        lines += [f"    {p}" for p in waiting]
    lines.append(f"  feeds ({len(feeds)} from feeds.sources):")
    lines += [f"    {f.url}" for f in feeds]
    lines.append(f"  output: {cfg.output.path} ({cfg.output.shards} shards per table)")
    lines.append(f"  runner: {cfg.runner.name}, {cfg.runner.workers} workers")
    beam = options.get_all_options(drop_default=True)
    lines.append("  beam options: " + ", ".join(f"{k}={v}" for k, v in sorted(beam.items())))
    lines.append(
        f"  dedup: near {cfg.dedup.near}, index {cfg.dedup.index}; stories {cfg.stories.enabled}; "
        f"fetch pages {cfg.feeds.fetch_pages}, robots {cfg.fetch.respect_robots}"
    )
    return lines


def _add_replay(sub: Any) -> None:
    replay = sub.add_parser(
        "replay-dead-letters",
        help="re-run the inputs of a run's dead letters once their cause is fixed",
        description="Re-run the inputs of a run's dead letters as a new run in the same output "
        "folder; the manifests link the two runs. Inputs that already succeeded are not "
        "ingested again. The original run's config is reused, overlaid by --config.",
    )
    replay.add_argument("output", metavar="OUT", help="output root of the original run")
    _shared(replay, "--run-id", help="run to replay (default: the current run)")
    _shared(replay, "--config", help="YAML overlaying the original config")
    replay.add_argument("--new-run-id", metavar="ID", help="id of the replay run")
    replay.add_argument(
        "--reason",
        action="append",
        metavar="CODE",
        help="replay only the dead letters with this reason code; repeatable",
    )
    replay.set_defaults(func=_cmd_replay)


def _cmd_replay(args: argparse.Namespace, beam_args: list[str]) -> int:
    from news_ingest.pipeline import manifest, replay_dead_letters

    reasons = frozenset(args.reason or ())
    plan, result = replay_dead_letters.replay(
        args.output, args.run_id, args.config, args.new_run_id, reasons, beam_args
    )
    if plan.missing:
        print(f"news-ingest: {len(plan.missing)} dead-letter inputs are gone", file=sys.stderr)
    if result is None:
        print(f"news-ingest: run {plan.run_id} has no dead letters to replay")
        return 0
    print("\n".join(manifest.summary_lines(result.manifest)))
    return manifest.exit_code(result.manifest)


def _add_stream(sub: Any) -> None:
    stream = sub.add_parser(
        "stream",
        help="poll feeds and watch folders, writing Parquet per event-time window",
        description=(
            "Run the streaming graph: poll each feed on its own interval (conditional GET), "
            "watch folders for new files, write Parquet per window. Stops on SIGINT/SIGTERM "
            "or after --duration, finalizing the open windows; a restart continues."
        ),
    )
    stream.add_argument(
        "--input",
        action="append",
        metavar="FEEDS_OR_DIR",
        help="feed URL, feeds list (.yaml) or folder to watch; repeatable",
    )
    stream.add_argument("--duration", metavar="D", help="stop after D (e.g. 90s, 10m)")
    stream.add_argument(
        "--runner",
        choices=("direct", "dataflow", "flink"),
        help="direct (default): polling rounds here; dataflow/flink: submit the unbounded job",
    )
    stream.set_defaults(func=_cmd_stream)
    replay = sub.add_parser(
        "replay",
        help="replay seed-style files as a timed stream through the streaming graph",
        description=(
            "Replay files (default seeds/) in the order of their dates, --speed times faster "
            "than the dates are apart, through the streaming graph."
        ),
    )
    replay.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: seeds/)"
    )
    replay.add_argument("--speed", type=float, metavar="X", help="time compression (default 1)")
    replay.set_defaults(func=_cmd_replay_stream)
    for cmd in (stream, replay):
        _shared(cmd, "--output")
        _shared(cmd, "--config")
        cmd.add_argument("--window", metavar="W", help="window size (default 5m)")
        _shared(cmd, "--run-id")


def _stream_overrides(args: argparse.Namespace) -> dict[str, Any]:
    over: dict[str, Any] = {}
    stream: dict[str, Any] = {}
    if getattr(args, "input", None):
        over["inputs"] = list(args.input)
    if getattr(args, "runner", None):
        over["runner"] = {"name": args.runner}
    if args.window:
        stream["window"] = args.window
    if getattr(args, "duration", None):
        stream["duration"] = args.duration
    if getattr(args, "speed", None) is not None:
        stream["speed"] = args.speed
    if stream:
        over["stream"] = stream
    return over


def _cmd_stream(args: argparse.Namespace, beam_args: list[str]) -> int:
    from news_ingest.pipeline.stream import launcher
    from news_ingest.pipeline.stream.manifest import summary_lines

    cfg = _load_config(args, _stream_overrides(args))
    if cfg.runner.name != "direct":
        print(launcher.submit_unbounded(cfg, args.run_id, beam_args))
        return 0
    body = launcher.run_stream(
        cfg,
        launcher.stream_source(cfg),
        mode="stream",
        duration_s=cfg.stream.duration,
        run_id=args.run_id,
        beam_args=beam_args,
    )
    print("\n".join(summary_lines(body)))
    return 0


def _cmd_replay_stream(args: argparse.Namespace, beam_args: list[str]) -> int:
    from news_ingest.pipeline.stream import launcher
    from news_ingest.pipeline.stream.manifest import summary_lines

    cfg = _load_config(args, _stream_overrides(args))
    source = launcher.replay_source(cfg, args.paths, cfg.stream.speed)
    body = launcher.run_stream(
        cfg, source, mode="replay", duration_s=None, run_id=args.run_id, beam_args=beam_args
    )
    print("\n".join(summary_lines(body)))
    return 0


DEFAULT_EVAL_DATA = os.path.join("..", "shared", "data")


def _add_eval_extraction(sub: Any) -> None:
    ev = sub.add_parser(
        "eval-extraction",
        help="score extraction and dates on labelled sets, beside trafilatura and htmldate",
        description="Score the pipeline (read, extract, clean, normalize; no Beam) on labelled "
        "sets beside trafilatura (default and favor_precision, comments off) and htmldate, per "
        "set and per half, with a paired bootstrap 95%% interval of the pipeline's difference "
        "to the best baseline. A set's format is told by its label file: ground-truth.json "
        "(shingle F1), snippets.json (snippet F1), dates.json (right dates).",
    )
    ev.add_argument(
        "data",
        nargs="*",
        metavar="DATA",
        help="a data root holding sets, or one set folder (default: ../shared/data)",
    )
    _shared(ev, "--config")
    ev.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="extraction processes (default: the number of CPUs)",
    )
    ev.add_argument(
        "--sets", action="append", metavar="NAME", help="only this set (by folder name); repeatable"
    )
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N pages of each set")
    ev.add_argument(
        "--worst", type=int, default=5, metavar="N", help="pages the pipeline loses most on (5)"
    )
    ev.add_argument(
        "--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples (1000)"
    )
    ev.add_argument(
        "--predictions", metavar="DIR", help="write DIR/<set>/<system>.json ({key: output})"
    )
    ev.add_argument("--json", metavar="FILE", help="write all figures as JSON")
    ev.set_defaults(func=_cmd_eval_extraction)


def _cmd_eval_extraction(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from news_ingest.pipeline import config, eval_extraction
    from news_ingest.pipeline.batch import UsageError

    if args.jobs < 1 or (args.limit is not None and args.limit < 1) or args.resamples < 1:
        raise UsageError("eval-extraction: --jobs, --limit and --resamples must be at least 1")
    paths = args.data or [DEFAULT_EVAL_DATA]
    if not args.data and not os.path.isdir(DEFAULT_EVAL_DATA):
        print(f"news-ingest eval-extraction: skipped: no data at {DEFAULT_EVAL_DATA}")
        return 0
    cfg = config.load(args.config)
    try:
        sets = eval_extraction.select(eval_extraction.find_sets(paths), args.sets, args.limit)
    except eval_extraction.DataError as exc:
        raise UsageError(f"eval-extraction: {exc}") from exc
    report = eval_extraction.evaluate(sets, cfg, args.jobs, args.resamples)
    print("\n".join(eval_extraction.report_lines(report, sets, args.worst)))
    if args.predictions:
        eval_extraction.write_predictions(args.predictions, report)
    if args.json:
        eval_extraction.write_json(args.json, report)
    return 0


def _add_eval_cleaning(sub: Any) -> None:
    cmd = sub.add_parser(
        "eval-cleaning",
        help="score cleaning on a labelled set: boilerplate left, sentences lost",
        description="Clean every labelled document of DIR (NAME.txt + NAME.labels.json) with the "
        "configured rule packs; print boilerplate lines left and article sentences lost.",
    )
    cmd.add_argument("directory", metavar="DIR", help="directory of the labelled set")
    _shared(cmd, "--config")
    cmd.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any boilerplate is left, sentence lost or field wrong",
    )
    cmd.set_defaults(func=_cmd_eval_cleaning)


def _cmd_eval_cleaning(args: argparse.Namespace, beam_args: list[str]) -> int:
    import os

    from news_ingest.pipeline import config, eval_cleaning, graph
    from news_ingest.pipeline.batch import UsageError
    from news_ingest.transforms.normalize import load_language_identifier

    if not os.path.isdir(args.directory):
        raise UsageError(f"eval-cleaning: {args.directory} is not a directory")
    default, sources = graph.rule_packs(config.load(args.config))
    scores = eval_cleaning.evaluate(args.directory, default, sources, load_language_identifier())
    if not scores:
        raise UsageError(f"eval-cleaning: no *.labels.json documents in {args.directory}")
    print("\n".join(eval_cleaning.report_lines(scores)))
    bad = sum(len(s.left) + len(s.lost) + len(s.wrong) for s in scores)
    return 1 if args.strict and bad else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="news-ingest",
        description="Ingest news (text, HTML, feeds, WARC) into clean, deduplicated Parquet.",
    )
    top.add_argument("--version", action="version", version=f"news-ingest {__version__}")
    # Taken out of the arguments before parsing (split_verbosity): valid anywhere.
    top.add_argument("-v", "--verbose", action="store_true", help="show Beam's own logging")
    top.add_argument(
        "-q", "--quiet", action="store_true", help="print errors only (no summary, no progress)"
    )
    sub = top.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_replay(sub)
    _add_stream(sub)
    _add_eval_extraction(sub)
    _add_eval_cleaning(sub)
    _add_load(sub)
    from news_ingest.pipeline import schema_cmd

    schema_cmd.add_parser(sub)
    return top


# commands whose unknown flags are Beam pipeline options
PASSTHROUGH = {"run", "stream", "replay", "replay-dead-letters", "load"}
VERBOSE = ("-v", "--verbose")
QUIET = ("-q", "--quiet")
# Libraries whose records below ERROR are noise on a terminal: a run's outcome is in its
# tables and summary. -v shows them.
NOISY = ("apache_beam", "distributed", "dask", "trafilatura", "htmldate", "courlan")


def split_verbosity(argv: list[str]) -> tuple[list[str], bool, bool]:
    """``argv`` without ``-v/--verbose`` and ``-q/--quiet`` (wherever they are, up to a
    ``--``), and whether each was given."""
    rest: list[str] = []
    verbose = quiet = False
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        if arg in VERBOSE:
            verbose = True
        elif arg in QUIET:
            quiet = True
        else:
            rest.append(arg)
    return rest, verbose, quiet


class _LibraryNoise(logging.Filter):
    """Drops records below ERROR that the libraries log on the root logger (Beam's import logs
    ``apitools not found`` there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        path = record.pathname.replace(os.sep, "/")
        return not any(f"/{name}/" in path for name in NOISY)


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Our messages at WARNING (INFO with -v, ERROR with -q); the libraries' at ERROR unless -v."""
    level = logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    root.filters = [f for f in root.filters if not isinstance(f, _LibraryNoise)]
    if not verbose:
        root.addFilter(_LibraryNoise())
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)


def _subparser(top: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in top._subparsers._group_actions:  # type: ignore[union-attr]
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]  # type: ignore[no-any-return]
    raise KeyError(command)


def closest_flag(bad: str, ours: list[str], theirs: list[str]) -> str | None:
    """The known flag most like ``bad`` (difflib's ratio at least 0.6); ours win a tie, since
    a misspelt ``--output`` is likelier than a Beam option."""
    best: tuple[float, int, str] | None = None
    for rank, flags in enumerate((ours, theirs)):
        for flag in difflib.get_close_matches(bad, flags, n=1, cutoff=0.6):
            score = (difflib.SequenceMatcher(None, bad, flag).ratio(), -rank, flag)
            best = max(best, score) if best else score
    return best[2] if best else None


def check_beam_flags(top: argparse.ArgumentParser, command: str, rest: list[str]) -> None:
    """Fail (exit 2) on arguments that neither ``command`` nor Beam's options know.

    Only flags some Beam ``PipelineOptions`` class defines (with the Dataflow, Flink, Dask and
    news-ingest runner options) are handed to Beam; anything else is a mistake (``--ouput``),
    reported with the closest known flag.
    """
    from news_ingest.pipeline.options import beam_parser

    beam = beam_parser()
    _known, unknown = beam.parse_known_args(rest)
    if not unknown:
        return
    sub = _subparser(top, command)
    flags = [f for f in unknown if f.startswith("-")]
    if not flags:
        sub.error(f"unrecognized arguments: {' '.join(unknown)}")
    bad = flags[0].split("=", 1)[0]
    ours = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
    theirs = [o for o in beam._option_string_actions if o.startswith("--")]
    close = closest_flag(bad, ours, theirs)
    hint = f"; did you mean {close}?" if close else ""
    sub.error(f"unrecognized argument {bad}{hint}")


def main(argv: list[str] | None = None) -> int:
    top = parser()
    argv, verbose, quiet = split_verbosity(list(sys.argv[1:] if argv is None else argv))
    args, rest = top.parse_known_args(argv)
    args.verbose, args.quiet = verbose, quiet and not verbose
    if rest and args.command not in PASSTHROUGH:
        _subparser(top, args.command).error(f"unrecognized arguments: {' '.join(rest)}")
    configure_logging(args.verbose, args.quiet)
    from news_ingest.transforms.children import tie_forks_to_parent

    tie_forks_to_parent()  # no child forked by a run outlives it, however it ends
    from news_ingest.pipeline.memory import lean_allocators

    lean_allocators()  # here and in every worker this run starts
    if rest:
        check_beam_flags(top, args.command, rest)
        from news_ingest.transforms.files import set_options

        # Before anything is read: a --config, a rule pack or the output may be on a bucket
        # that these flags (--s3_endpoint_url, credentials) describe.
        set_options(rest)
    from news_ingest.pipeline.batch import Interrupted, UsageError
    from news_ingest.transforms.sinks import OutputValidationError

    try:
        return int(args.func(args, rest))
    except (UsageError, ConfigError) as exc:
        print(f"news-ingest: error: {exc}", file=sys.stderr)
        return 2
    except OutputValidationError as exc:
        # Nothing of the run was committed; a rerun with the same --run-id starts clean.
        print(f"news-ingest: error: output validation failed: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        from news_ingest.pipeline.batch import report_interrupted

        report_interrupted(exc.run_id)
        return exc.exit_code
    except KeyboardInterrupt:
        print("news-ingest: interrupted", file=sys.stderr)
        return 130
