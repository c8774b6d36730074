"""Warehouse load: merge the committed Parquet of an output folder into a DuckDB database.

Each table (``articles``, ``duplicates``, ``dead_letters``) is merged on its key, so loading the
same output twice, or an output that holds several runs, leaves one row per key: the row of the
latest run (by ``ingested_at``, then ``run_id``). ``duplicates`` is keyed by
``(article_id, source_ref)``: copies found under the same URL share an ``article_id``, and each
copy is a row of its own.

The tables are created from the Arrow schemas (``news_ingest.pipeline.schema_cmd.duckdb_ddl``): the merge
key is the primary key, a non-null Arrow field is ``NOT NULL``, and every column carries its
description (``COMMENT ON COLUMN``). A table made by an older ``load`` without those is rebuilt
with them on the next load.

Only files a manifest lists are loaded (``news_ingest.pipeline.manifest.committed_files``): the
per-run manifest is the commit marker, so the files of a run that was killed, or that is
committing right now (on an object store they appear one by one), are left out. An output on
an object store (``s3://``, ``gs://``) is read through Beam's file systems: the listed files are
copied into a temporary folder first (DuckDB's own S3 reader is an extension it would download).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from news_ingest.pipeline import manifest
from news_ingest.pipeline.schema_cmd import duckdb_ddl
from news_ingest.transforms import files
from news_ingest.transforms.schema import ROW_ID, TABLES

# Merge keys per table; ROW_ID[name] always comes first.
KEYS: dict[str, tuple[str, ...]] = {
    "articles": (ROW_ID["articles"],),
    "duplicates": (ROW_ID["duplicates"], "source_ref"),
    "dead_letters": (ROW_ID["dead_letters"],),
}


class LoadError(ValueError):
    """The output folder or the database cannot be loaded."""


@dataclasses.dataclass(frozen=True)
class TableLoad:
    table: str
    files: int
    rows_in: int
    replaced: int
    total: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _has_primary_key(con: Any, name: str) -> bool | None:
    """Whether table ``name`` has a primary key; None when there is no such table."""
    (tables,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]
    ).fetchone()
    if not tables:
        return None
    (keys,) = con.execute(
        "SELECT count(*) FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [name],
    ).fetchone()
    return bool(keys)


def create_table(con: Any, name: str) -> None:
    """Create table ``name`` with its primary key, NOT NULL columns and comments; an existing
    table without a primary key (made by an older load) is rebuilt so, keeping its rows."""
    ddl = duckdb_ddl(name, TABLES[name], KEYS[name])
    if _has_primary_key(con, name) is False:
        old = _quote(f"{name}__before_keys")
        con.execute(f"ALTER TABLE {_quote(name)} RENAME TO {old}")
        con.execute(ddl[0])
        con.execute(f"INSERT INTO {_quote(name)} BY NAME SELECT * FROM {old}")
        con.execute(f"DROP TABLE {old}")
    else:
        con.execute(ddl[0])
    for statement in ddl[1:]:
        con.execute(statement)


def _merge_table(con: Any, name: str, paths: list[str]) -> TableLoad:
    keys = KEYS[name]
    key_list = ", ".join(_quote(k) for k in keys)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE incoming AS "
        "SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = true, "
        "hive_types = {'ingest_date': DATE}) "
        f"QUALIFY row_number() OVER (PARTITION BY {key_list} "
        "ORDER BY ingested_at DESC, run_id DESC) = 1",
        [paths],
    )
    (rows_in,) = con.execute("SELECT count(*) FROM incoming").fetchone()
    create_table(con, name)
    match = " AND ".join(f"t.{_quote(k)} IS NOT DISTINCT FROM i.{_quote(k)}" for k in keys)
    (replaced,) = con.execute(
        f"DELETE FROM {_quote(name)} t WHERE EXISTS (SELECT 1 FROM incoming i WHERE {match})"
    ).fetchone()
    con.execute(f"INSERT INTO {_quote(name)} BY NAME SELECT * FROM incoming")
    (total,) = con.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()
    con.execute("DROP TABLE incoming")
    return TableLoad(name, len(paths), int(rows_in), int(replaced), int(total))


@contextlib.contextmanager
def local_copies(output: str, found: dict[str, list[str]]) -> Iterator[dict[str, list[str]]]:
    """``found`` as local paths: as they are for a local output; for an object store, copies
    in a temporary folder laid out as under ``output`` (``ingest_date=`` folders kept, which
    the load reads as a column), removed on exit."""
    if not files.is_remote(output):
        yield found
        return
    with tempfile.TemporaryDirectory(prefix="news-ingest-load-") as tmp:
        local: dict[str, list[str]] = {}
        for name, paths in found.items():
            local[name] = []
            for path in paths:
                target = os.path.join(tmp, *files.relative(path, output).split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with files.open_read(path) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                local[name].append(target)
        yield local


def load_duckdb(database: str, output: str, run_id: str | None = None) -> list[TableLoad]:
    """Merge the committed tables under ``output`` (one run's when ``run_id`` is given) into
    the DuckDB file ``database``, in one transaction. Committed: listed by a run's manifest.

    Raises:
        LoadError: ``output`` holds no committed tables, or the database rejects the load.
    """
    import duckdb

    try:
        found = manifest.committed_files(output, run_id)
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot read the manifests under {output}: {exc}") from exc
    if not any(found.values()):
        which = f" of run {run_id}" if run_id else ""
        raise LoadError(f"no committed Parquet{which} under {output}")
    parent = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(parent):
        raise LoadError(f"folder of the database does not exist: {parent}")
    with local_copies(output, found) as local:
        try:
            con = duckdb.connect(database)
        except duckdb.Error as exc:
            raise LoadError(f"cannot open {database}: {exc}") from exc
        try:
            con.execute("BEGIN TRANSACTION")
            loads = [_merge_table(con, name, paths) for name, paths in local.items() if paths]
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise LoadError(f"load into {database} failed: {exc}") from exc
        finally:
            con.close()
    return loads


def summary_lines(database: str, loads: list[TableLoad]) -> list[str]:
    lines = [f"news-ingest load into {database}:"]
    lines.append(f"  {'table':<14}{'files':>7}{'rows in':>10}{'replaced':>10}{'total':>10}")
    for t in loads:
        lines.append(f"  {t.table:<14}{t.files:>7}{t.rows_in:>10}{t.replaced:>10}{t.total:>10}")
    return lines
