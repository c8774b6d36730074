"""``news-ingest schema``: the tables' schema, with column descriptions, for other readers.

Everything here is rendered from the Arrow schemas of ``transforms/schema.py`` (their types,
nullability and ``description`` field metadata), so Arrow, BigQuery, DuckDB and a JSON reader
see one contract: a non-null Arrow field is ``REQUIRED`` in BigQuery and ``NOT NULL`` in
DuckDB, a ``list<string>`` is ``REPEATED STRING`` / ``VARCHAR[]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
from news_ingest.transforms.schema import SCHEMA_VERSION, TABLES

FORMATS = ("arrow", "json", "bigquery", "duckdb")


class SchemaError(ValueError):
    """A column type that a target cannot represent (a programming error in the schema)."""


def description(field: pa.Field) -> str:
    """The column description of an Arrow field ('' when it has none)."""
    meta = field.metadata or {}
    return meta.get(b"description", b"").decode("utf-8")


def _is_list(type_: pa.DataType) -> bool:
    return pa.types.is_list(type_) or pa.types.is_large_list(type_)


def _is_string(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _is_tz_timestamp(type_: pa.DataType) -> bool:
    return pa.types.is_timestamp(type_) and bool(type_.tz)


# The targets' names, as said in errors.
BIGQUERY = "BigQuery"
DUCKDB = "DuckDB"

# Arrow type -> each target's column type, the first row whose test holds decides (None: the
# target cannot hold it). BigQuery takes any integer or float width.
TYPES: tuple[tuple[Callable[[pa.DataType], bool], dict[str, str | None]], ...] = (
    (_is_string, {BIGQUERY: "STRING", DUCKDB: "VARCHAR"}),
    (_is_tz_timestamp, {BIGQUERY: "TIMESTAMP", DUCKDB: "TIMESTAMPTZ"}),
    (pa.types.is_timestamp, {BIGQUERY: "TIMESTAMP", DUCKDB: "TIMESTAMP"}),
    (pa.types.is_int16, {BIGQUERY: "INTEGER", DUCKDB: "SMALLINT"}),
    (pa.types.is_int32, {BIGQUERY: "INTEGER", DUCKDB: "INTEGER"}),
    (pa.types.is_int64, {BIGQUERY: "INTEGER", DUCKDB: "BIGINT"}),
    (pa.types.is_integer, {BIGQUERY: "INTEGER", DUCKDB: None}),
    (pa.types.is_float64, {BIGQUERY: "FLOAT", DUCKDB: "DOUBLE"}),
    (pa.types.is_floating, {BIGQUERY: "FLOAT", DUCKDB: None}),
    (pa.types.is_boolean, {BIGQUERY: "BOOLEAN", DUCKDB: "BOOLEAN"}),
    (pa.types.is_date32, {BIGQUERY: None, DUCKDB: "DATE"}),
)
# How a list column's type is written from its element's (None: a list is a column mode,
# REPEATED in BigQuery, so a list of lists has no type there).
LIST_TYPES: dict[str, str | None] = {BIGQUERY: None, DUCKDB: "{}[]"}


def column_type(type_: pa.DataType, target: str, name: str) -> str:
    """The ``target`` column type of Arrow type ``type_`` (of column ``name``, for errors).

    Raises:
        SchemaError: ``target`` cannot hold the type.
    """
    found: str | None = None
    if _is_list(type_):
        pattern = LIST_TYPES[target]
        if pattern is not None:
            found = pattern.format(column_type(type_.value_type, target, name))
    else:
        found = next((names[target] for test, names in TYPES if test(type_)), None)
    if found is None:
        raise SchemaError(f"{name}: no {target} type for {type_}")
    return found


# --- BigQuery -----------------------------------------------------------------------------


def bigquery_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """A BigQuery JSON schema (``bq mk``/``bq load`` schema file): a list column is its
    element type in mode ``REPEATED`` (what Parquet list inference gives), a non-null column
    ``REQUIRED``, any other ``NULLABLE``; each with the field's description."""
    out = []
    for field in schema:
        if _is_list(field.type):
            type_, mode = column_type(field.type.value_type, BIGQUERY, field.name), "REPEATED"
        else:
            type_ = column_type(field.type, BIGQUERY, field.name)
            mode = "NULLABLE" if field.nullable else "REQUIRED"
        out.append(
            {"name": field.name, "type": type_, "mode": mode, "description": description(field)}
        )
    return out


# --- DuckDB -------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The folder partition of every table (``ingest_date=YYYY-MM-DD``): a column for readers that
# read it from the path (DuckDB's hive partitioning, a BigQuery external table's partition column).
PARTITION_FIELD = pa.field(
    "ingest_date",
    pa.date32(),
    nullable=False,
    metadata={"description": "UTC date the run started: the ingest_date=YYYY-MM-DD folder."},
)


def with_partition(schema: pa.Schema) -> pa.Schema:
    """``schema`` and the ``ingest_date`` partition column."""
    return schema.append(PARTITION_FIELD)


def duckdb_create(table: str, schema: pa.Schema, keys: Sequence[str]) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table``: the Arrow non-null fields ``NOT NULL``,
    ``keys`` the primary key."""
    cols = [
        f"  {quote_ident(f.name)} {column_type(f.type, DUCKDB, f.name)}"
        + ("" if f.nullable else " NOT NULL")
        for f in schema
    ]
    cols.append(f"  PRIMARY KEY ({', '.join(quote_ident(k) for k in keys)})")
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(table)} (\n" + ",\n".join(cols) + "\n)"


def duckdb_comments(table: str, schema: pa.Schema) -> list[str]:
    """``COMMENT ON`` statements: the table's and each column's description."""
    meta = schema.metadata or {}
    name = meta.get(b"table", table.encode()).decode()
    stmts = [
        f"COMMENT ON TABLE {quote_ident(table)} IS "
        + _literal(f"news-ingest {name}, schema_version {SCHEMA_VERSION}")
    ]
    stmts += [
        f"COMMENT ON COLUMN {quote_ident(table)}.{quote_ident(f.name)} IS "
        + _literal(description(f))
        for f in schema
        if description(f)
    ]
    return stmts


def duckdb_ddl(table: str, schema: pa.Schema, keys: Sequence[str]) -> list[str]:
    """Every statement that creates ``table`` (with the ``ingest_date`` partition column, as
    ``load`` reads it from the folder names) with its keys, constraints and comments."""
    full = with_partition(schema)
    return [duckdb_create(table, full, keys), *duckdb_comments(table, full)]


# --- JSON and Arrow -----------------------------------------------------------------------


def json_schema(schema: pa.Schema) -> dict[str, Any]:
    """The schema as plain JSON: table metadata and per column name, Arrow type, nullability
    and description."""
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    return {
        **meta,
        "columns": [
            {
                "name": f.name,
                "type": str(f.type),
                "nullable": f.nullable,
                "description": description(f),
            }
            for f in schema
        ],
    }


def arrow_text(table: str, schema: pa.Schema) -> str:
    """The Arrow schema as text, one column a line with its description."""
    width = max(len(f.name) for f in schema)
    type_width = max(len(str(f.type)) for f in schema)
    lines = [f"-- {table} (schema_version {SCHEMA_VERSION})"]
    for f in schema:
        null = "" if f.nullable else " not null"
        lines.append(
            f"{f.name:<{width}}  {str(f.type) + null:<{type_width + 9}}  -- {description(f)}"
        )
    return "\n".join(lines)


# --- The command --------------------------------------------------------------------------


def render(fmt: str, tables: Sequence[str]) -> str:
    """The schema of ``tables`` in format ``fmt`` (one of ``FORMATS``)."""
    from news_ingest.pipeline.load import KEYS

    if fmt == "arrow":
        return "\n\n".join(arrow_text(t, TABLES[t]) for t in tables)
    if fmt == "duckdb":
        return "\n\n".join(";\n".join(duckdb_ddl(t, TABLES[t], KEYS[t])) + ";" for t in tables)
    build = bigquery_schema if fmt == "bigquery" else json_schema
    # One table: the bare schema (what `bq mk` takes as a schema file); several: by table.
    body: Any = (
        build(TABLES[tables[0]]) if len(tables) == 1 else {t: build(TABLES[t]) for t in tables}
    )
    return json.dumps(body, indent=2, ensure_ascii=False)


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "schema",
        help="print the tables' schema with column descriptions (arrow, json, bigquery, duckdb)",
        description="Print the schema of the output tables, with column descriptions, from "
        "transforms/schema.py: Arrow, plain JSON, a BigQuery JSON schema (lists REPEATED, "
        "non-null columns REQUIRED) or DuckDB DDL (primary key, NOT NULL, COMMENT ON COLUMN).",
    )
    cmd.add_argument("--format", choices=FORMATS, default="arrow", help="output format (arrow)")
    cmd.add_argument("--table", choices=tuple(TABLES), help="one table (default: all three)")
    cmd.set_defaults(func=_cmd_schema)


def _cmd_schema(args: argparse.Namespace, _beam_args: list[str]) -> int:
    tables = [args.table] if args.table else list(TABLES)
    print(render(args.format, tables))
    return 0
