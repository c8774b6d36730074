"""The ``news-ingest`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from pipeline import __version__
from pipeline.config import RUNNERS, ConfigError


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
    run.add_argument("--output", metavar="DIR", help="output root (default: output/)")
    run.add_argument("--config", metavar="FILE", help="YAML file overlaying configs/default.yaml")
    run.add_argument("--workers", type=int, metavar="N", help="worker processes (default 1)")
    run.add_argument("--runner", choices=RUNNERS, help="Beam runner (default direct)")
    run.add_argument(
        "--run-id", metavar="ID", help="run id; a rerun with the same id replaces its files"
    )
    run.add_argument("--shards", type=int, metavar="N", help="Parquet files per table")
    run.set_defaults(func=_cmd_run)


def _add_load(sub: Any) -> None:
    load = sub.add_parser(
        "load",
        help="merge an output folder's Parquet into a DuckDB database",
        description="Merge the committed tables of an output folder into DuckDB tables "
        "articles, duplicates and dead_letters, keyed by their ids (loading twice is a no-op).",
    )
    load.add_argument("--duckdb", required=True, metavar="FILE", help="DuckDB database file")
    load.add_argument("--output", metavar="DIR", help="output root to load (default: output/)")
    load.add_argument("--config", metavar="FILE", help="YAML file overlaying configs/default.yaml")
    load.add_argument("--run-id", metavar="ID", help="load only this run's files")
    load.set_defaults(func=_cmd_load)


def _cmd_load(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline import config, load

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
    if args.output:
        over.setdefault("output", {})["path"] = args.output
    if args.shards is not None:
        over.setdefault("output", {})["shards"] = args.shards
    if args.workers is not None:
        over.setdefault("runner", {})["workers"] = args.workers
    if args.runner:
        over.setdefault("runner", {})["name"] = args.runner
    return over


def _cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline import batch, config, manifest

    cfg = config.load(args.config, _overrides(args))
    result = batch.run(cfg, args.run_id, beam_args, show_progress=sys.stderr.isatty())
    if result.launched:
        print("news-ingest: job staged; it commits the run and writes the manifest itself")
        return 0
    print("\n".join(manifest.summary_lines(result.manifest)))
    return manifest.exit_code(result.manifest)


def _add_replay(sub: Any) -> None:
    replay = sub.add_parser(
        "replay-dead-letters",
        help="re-run the inputs of a run's dead letters once their cause is fixed",
        description="Re-run the inputs of a run's dead letters as a new run in the same output "
        "folder; the manifests link the two runs. Inputs that already succeeded are not "
        "ingested again. The original run's config is reused, overlaid by --config.",
    )
    replay.add_argument("output", metavar="OUT", help="output root of the original run")
    replay.add_argument("--run-id", metavar="ID", help="run to replay (default: the current run)")
    replay.add_argument("--config", metavar="FILE", help="YAML overlaying the original config")
    replay.add_argument("--new-run-id", metavar="ID", help="id of the replay run")
    replay.add_argument(
        "--reason",
        action="append",
        metavar="CODE",
        help="replay only the dead letters with this reason code; repeatable",
    )
    replay.set_defaults(func=_cmd_replay)


def _cmd_replay(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline import manifest, replay_dead_letters

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
        cmd.add_argument("--output", metavar="DIR", help="output root (default: output/)")
        cmd.add_argument(
            "--config", metavar="FILE", help="YAML file overlaying configs/default.yaml"
        )
        cmd.add_argument("--window", metavar="W", help="window size (default 5m)")
        cmd.add_argument("--run-id", metavar="ID", help="run id carried by every file name")


def _stream_overrides(args: argparse.Namespace) -> dict[str, Any]:
    over: dict[str, Any] = {}
    stream: dict[str, Any] = {}
    if getattr(args, "input", None):
        over["inputs"] = list(args.input)
    if getattr(args, "runner", None):
        over["runner"] = {"name": args.runner}
    if args.output:
        over["output"] = {"path": args.output}
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
    from pipeline import config
    from pipeline.stream import launcher
    from pipeline.stream.manifest import summary_lines

    cfg = config.load(args.config, _stream_overrides(args))
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
    from pipeline import config
    from pipeline.stream import launcher
    from pipeline.stream.manifest import summary_lines

    cfg = config.load(args.config, _stream_overrides(args))
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
    ev.add_argument("--config", metavar="FILE", help="YAML file overlaying configs/default.yaml")
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
    from pipeline import config, eval_extraction
    from pipeline.batch import UsageError

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
    cmd.add_argument("--config", metavar="FILE", help="YAML file overlaying configs/default.yaml")
    cmd.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any boilerplate is left, sentence lost or field wrong",
    )
    cmd.set_defaults(func=_cmd_eval_cleaning)


def _cmd_eval_cleaning(args: argparse.Namespace, beam_args: list[str]) -> int:
    import os

    from pipeline import config, eval_cleaning, graph
    from pipeline.batch import UsageError
    from transforms.normalize import load_language_identifier

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
    top.add_argument("-v", "--verbose", action="store_true", help="show Beam's own logging")
    sub = top.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_replay(sub)
    _add_stream(sub)
    _add_eval_extraction(sub)
    _add_eval_cleaning(sub)
    _add_load(sub)
    from pipeline import schema_cmd

    schema_cmd.add_parser(sub)
    return top


# commands whose unknown flags are Beam pipeline options
PASSTHROUGH = {"run", "stream", "replay", "replay-dead-letters"}


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args, rest = top.parse_known_args(argv)
    if rest and args.command not in PASSTHROUGH:
        top.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        # trafilatura warns about every odd link or discarded page; the outcome is in the tables
        logging.getLogger("trafilatura").setLevel(logging.ERROR)
    from pipeline.batch import UsageError
    from transforms.sinks import OutputValidationError

    try:
        return int(args.func(args, rest))
    except (UsageError, ConfigError) as exc:
        print(f"news-ingest: error: {exc}", file=sys.stderr)
        return 2
    except OutputValidationError as exc:
        # Nothing of the run was committed; a rerun with the same --run-id starts clean.
        print(f"news-ingest: error: output validation failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("news-ingest: interrupted", file=sys.stderr)
        return 130
