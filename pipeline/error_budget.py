"""The error budget: a ceiling on the fraction of records whose processing FAILED.

A failure is a dead letter with reason ``exception`` (a stage raised) or ``timeout`` (a stage ran
out of time). Expected rejections (empty text, not an article, a dead link) are not failures,
and neither is a remote server's slowness: a ``timeout`` of the ``fetch`` or ``feeds`` stages is
the source's fault, like a 503. When the
ratio of failures to records is above ``errors.max_failure_ratio`` the run does not commit its
``articles`` and ``duplicates``: a warehouse loader would otherwise load a mostly empty dataset as
if it were the day's news. Its ``dead_letters`` are committed so the cause stays visible, the
manifest says ``failed_error_budget`` with the ratio, and the command exits 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from news_ingest.transforms import files, sinks
from news_ingest.transforms.schema import TABLES

FAILURE_REASONS = ("exception", "timeout")
# Stages whose timeouts are a remote server's (their exceptions still count).
REMOTE_STAGES = ("fetch", "feeds")
STATUS_EXCEEDED = "failed_error_budget"
# Tables a run over budget does not commit.
WITHHELD_TABLES = ("articles", "duplicates")


@dataclasses.dataclass(frozen=True)
class Budget:
    """Failures against records of one run, and the ceiling they are held to."""

    failed: int
    records: int
    max_failure_ratio: float

    @property
    def ratio(self) -> float:
        return self.failed / self.records if self.records else 0.0

    @property
    def exceeded(self) -> bool:
        return self.ratio > self.max_failure_ratio

    def as_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "records": self.records,
            "failure_ratio": round(self.ratio, 6),
            "max_failure_ratio": self.max_failure_ratio,
            "exceeded": self.exceeded,
        }


def staged_files(output: str, run_id: str, table: str) -> list[str]:
    """The Parquet shards of ``table`` the run wrote to staging (before commit)."""
    return files.glob(files.join(sinks.staging_dir(output, run_id), table, "*.parquet"))


def count_rows(paths: list[str]) -> int:
    return sum(sinks.parquet_metadata(p).num_rows for p in paths)


def is_failure(stage: str, reason: str) -> bool:
    """Whether a dead letter is a failure of the pipeline rather than an expected rejection."""
    if reason == "timeout":
        return stage not in REMOTE_STAGES
    return reason in FAILURE_REASONS


def count_failures(paths: list[str]) -> int:
    """Dead letters that are failures (not expected rejections)."""
    total = 0
    for path in paths:
        rows = sinks.read_parquet(path, columns=["stage", "reason"]).to_pylist()
        total += sum(1 for row in rows if is_failure(row["stage"], row["reason"]))
    return total


def measure(
    output: str, run_id: str, max_failure_ratio: float, reasons: dict[str, int] | None = None
) -> tuple[Budget, dict[str, int]]:
    """The budget of a finished, not yet committed run, and its staged rows per table (from
    the files' footers). ``reasons`` (``stage/reason`` -> dead letters, from the writers'
    counters) spare reading the dead letters back; None: they are read."""
    staged = {name: count_rows(staged_files(output, run_id, name)) for name in TABLES}
    if reasons is None:
        failed = count_failures(staged_files(output, run_id, "dead_letters"))
    else:
        failed = sum(n for key, n in reasons.items() if is_failure(*key.split("/", 1)))
    return Budget(failed, sum(staged.values()), max_failure_ratio), staged


def withhold(output: str, run_id: str) -> None:
    """Drop the staged ``articles`` and ``duplicates`` of a run over budget."""
    for table in WITHHELD_TABLES:
        files.remove_tree(files.join(sinks.staging_dir(output, run_id), table))


def uncommit(output: str, run_id: str, committed: dict[str, list[str]]) -> dict[str, list[str]]:
    """Remove the (empty) withheld tables ``commit_run`` wrote for the run; return the rest."""
    for table in WITHHELD_TABLES:
        for path in sinks.committed_files(output, table, run_id):
            files.remove(path)
    return {name: paths for name, paths in committed.items() if name not in WITHHELD_TABLES}
