"""The one Parquet row-group writer: rows are written as they come, a row group every
``rows_per_group`` rows or ``bytes_per_group`` bytes of strings, so no writer holds a whole
file's rows; and the output contract every written table file is held to (``validate_table``),
checked per row group and on the footer instead of by reading the file back.

A plain writer (no Beam): the batch table writers, the staging step and a streaming pane writer
can all use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from news_ingest.transforms.atomic import atomic_path
from news_ingest.transforms.schema import ROW_ID, TABLES, UNIQUE_ROW_ID, to_table

COMPRESSION = "zstd"
ROWS_PER_GROUP = 1000
# Strings of a row group held before it is written (article text is most of a row).
BYTES_PER_GROUP = 16 * 2**20


class OutputValidationError(RuntimeError):
    """A written file does not match its table's schema or contract."""


def validate_table(table: pa.Table, name: str) -> None:
    """Check a table (or one row group of it) against its schema: types, required columns
    non-null, article ids unique.

    Raises:
        OutputValidationError: on the first violation.
    """
    schema = TABLES[name]
    if not table.schema.equals(schema, check_metadata=False):
        raise OutputValidationError(f"{name}: schema differs from the declared schema")
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise OutputValidationError(f"{name}: required column {field.name} has nulls")
    ids = table.column(ROW_ID[name]).to_pylist()
    if name in UNIQUE_ROW_ID and len(set(ids)) != len(ids):
        raise OutputValidationError(f"{name}: {ROW_ID[name]} is not unique")


def _string_bytes(row: dict[str, Any]) -> int:
    return sum(len(v) for v in row.values() if isinstance(v, str))


class RowGroupWriter:
    """Writes one Parquet file of ``schema`` row group by row group.

    Args:
        sink: a path or a writable binary file.
        schema: the file's schema (never inferred).
        name: the table whose contract each row group is validated against (None: no
            validation, e.g. staged rows or index entries).
        rows_per_group: rows buffered before a row group is written.
        bytes_per_group: string bytes buffered before a row group is written.
    """

    def __init__(
        self,
        sink: str | BinaryIO,
        schema: pa.Schema,
        name: str | None = None,
        rows_per_group: int = ROWS_PER_GROUP,
        bytes_per_group: int = BYTES_PER_GROUP,
    ):
        if rows_per_group < 1 or bytes_per_group < 1:
            raise ValueError("rows_per_group and bytes_per_group must be positive")
        self.sink = sink
        self.schema = schema
        self.name = name
        self.rows_per_group = rows_per_group
        self.bytes_per_group = bytes_per_group
        self.rows = 0  # rows added so far (the position of the next row in the file)
        self._buffer: list[dict[str, Any]] = []
        self._buffered_bytes = 0
        self._tables: list[pa.Table] = []  # added tables not yet written
        self._table_rows = 0
        self._table_bytes = 0
        self._seen: set[str] | None = set() if name in UNIQUE_ROW_ID else None
        self._writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any]) -> int:
        """Add one row; returns its position in the file."""
        position = self.rows
        self._flush_tables()
        self._buffer.append(row)
        self._buffered_bytes += _string_bytes(row)
        self.rows += 1
        if len(self._buffer) >= self.rows_per_group or self._buffered_bytes >= self.bytes_per_group:
            self.flush()
        return position

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def add_table(self, table: pa.Table) -> None:
        """Add a table of ``schema`` (after the buffered rows); small tables are gathered into
        row groups of ``rows_per_group`` rows or ``bytes_per_group`` bytes, as rows are."""
        if self._buffer:
            self._flush_rows()
        self._tables.append(table)
        self._table_rows += table.num_rows
        self._table_bytes += table.nbytes
        self.rows += table.num_rows
        if self._table_rows >= self.rows_per_group or self._table_bytes >= self.bytes_per_group:
            self._flush_tables()

    def flush(self) -> None:
        """Write what is buffered (rows or tables) as a row group."""
        self._flush_tables()
        self._flush_rows()

    def _flush_rows(self) -> None:
        if self._buffer:
            table = to_table(self._buffer, self.schema)
            self._buffer, self._buffered_bytes = [], 0
            self._write(table)

    def _flush_tables(self) -> None:
        if self._tables:
            table = pa.concat_tables(self._tables) if len(self._tables) > 1 else self._tables[0]
            self._tables, self._table_rows, self._table_bytes = [], 0, 0
            self._write(table)

    def _write(self, table: pa.Table) -> None:
        if self.name is not None:
            validate_table(table, self.name)
            if self._seen is not None:
                ids = table.column(ROW_ID[self.name]).to_pylist()
                if not self._seen.isdisjoint(ids):
                    raise OutputValidationError(f"{self.name}: {ROW_ID[self.name]} is not unique")
                self._seen.update(ids)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.sink, self.schema, compression=COMPRESSION)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self) -> int:
        """Write what is buffered and the footer (a file with no rows still gets its schema);
        returns the number of rows."""
        self.flush()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.sink, self.schema, compression=COMPRESSION)
        self._writer.close()
        self._writer = None
        return self.rows

    def abort(self) -> None:
        """Give up the file (it is removed by whoever owns its name)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        self._buffer, self._tables = [], []


def check_footer(path: str, schema: pa.Schema, name: str, rows: int) -> None:
    """Check a closed file's footer: the declared schema and the rows written.

    Raises:
        OutputValidationError: when the file does not read back as written.
    """
    meta = pq.ParquetFile(path)
    if not meta.schema_arrow.equals(schema, check_metadata=False):
        raise OutputValidationError(f"{name}: schema differs from the declared schema")
    if meta.metadata.num_rows != rows:
        raise OutputValidationError(
            f"{name}: {meta.metadata.num_rows} rows read back, {rows} written"
        )


@contextlib.contextmanager
def table_file(
    path: str,
    name: str,
    rows_per_group: int = ROWS_PER_GROUP,
    bytes_per_group: int = BYTES_PER_GROUP,
) -> Iterator[RowGroupWriter]:
    """A validated file of table ``name`` at ``path``, written row group by row group under a
    temporary name and renamed into place only when complete and its footer checks out."""
    schema = TABLES[name]
    with atomic_path(path) as tmp:
        writer = RowGroupWriter(tmp, schema, name, rows_per_group, bytes_per_group)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        rows = writer.close()
        check_footer(tmp, schema, name, rows)


def write_rows(
    name: str, rows: Iterable[dict[str, Any]], path: str, rows_per_group: int = ROWS_PER_GROUP
) -> int:
    """Write rows of table ``name`` to ``path`` (validated, atomically) as they are iterated;
    returns how many."""
    with table_file(path, name, rows_per_group) as writer:
        writer.add_rows(rows)
    return writer.rows
