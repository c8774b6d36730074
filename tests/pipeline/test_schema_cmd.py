"""``news-ingest schema``: every format from the one Arrow schema, and the README's BigQuery
section that uses it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from news_ingest.pipeline import cli, schema_cmd
from news_ingest.pipeline.load import KEYS
from news_ingest.transforms.schema import TABLES

README = Path(__file__).resolve().parents[2] / "README.md"
BQ_TYPES = {"STRING", "TIMESTAMP", "INTEGER", "FLOAT", "BOOLEAN"}


def schema_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["schema", *args]) == 0
    return capsys.readouterr().out


def check_bigquery(fields: list[dict[str, str]], table: str) -> None:
    arrow = TABLES[table]
    assert [f["name"] for f in fields] == arrow.names
    for f in fields:
        assert set(f) == {"name", "type", "mode", "description"}
        assert f["type"] in BQ_TYPES
        assert f["description"].strip(), f["name"]
        arrow_field = arrow.field(f["name"])
        if pa.types.is_list(arrow_field.type):
            assert (f["mode"], f["type"]) == ("REPEATED", "STRING"), f
        else:
            assert f["mode"] == ("NULLABLE" if arrow_field.nullable else "REQUIRED"), f
    modes = {f["name"]: f["mode"] for f in fields}
    if table != "dead_letters":
        assert modes["tags"] == "REPEATED" and modes["article_id"] == "REQUIRED"
        assert modes["published_at"] == "NULLABLE"


@pytest.mark.parametrize("table", sorted(TABLES))
def test_bigquery_schema(capsys: pytest.CaptureFixture[str], table: str) -> None:
    check_bigquery(
        json.loads(schema_output(capsys, "--format", "bigquery", "--table", table)), table
    )


def test_all_tables_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    body = json.loads(schema_output(capsys, "--format", "bigquery"))
    assert sorted(body) == sorted(TABLES)
    plain = json.loads(schema_output(capsys, "--format", "json"))
    for name, schema in TABLES.items():
        cols = plain[name]["columns"]
        assert [c["name"] for c in cols] == schema.names
        assert [c["nullable"] for c in cols] == [f.nullable for f in schema]
        assert all(c["description"] for c in cols)
        assert plain[name]["table"] == name
    text = schema_output(capsys, "--format", "arrow", "--table", "articles")
    assert "published_at" in text and "Publication time in UTC" in text
    assert re.search(r"^article_id\s+string not null\s+-- Stable id", text, re.M)


def test_duckdb_ddl_runs_and_keeps_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    ddl = schema_output(capsys, "--format", "duckdb")
    with duckdb.connect() as con:
        con.execute(ddl)
        pks = dict(
            con.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        )
        assert pks == {name: list(keys) for name, keys in KEYS.items()}
        (comment,) = con.execute(
            "SELECT comment FROM duckdb_columns() "
            "WHERE table_name = 'articles' AND column_name = 'tags'"
        ).fetchone()
        assert comment == "Tags from page or feed metadata."
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'articles'"
            ).fetchall()
        )
        assert types["tags"] == "VARCHAR[]"
        assert types["published_at"] == "TIMESTAMP WITH TIME ZONE"
        assert types["ingest_date"] == "DATE"
        assert types["published_offset_min"] == "SMALLINT"


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n### {title}\n")
    end = text.find("\n##", start + 5)
    return text[start:end]


def test_readme_bigquery_section_uses_the_schema_and_list_inference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    section = readme_section("BigQuery")
    blocks = dict(re.findall(r"```(bash|sql)\n(.*?)```", section, re.S))
    shell = blocks["bash"].replace("\\\n", " ")
    commands = [shlex.split(line) for line in shell.splitlines() if line.strip()]
    (schema_cmd,) = [c for c in commands if c[:2] == ["news-ingest", "schema"]]
    assert schema_cmd[-2] == ">"  # written to the file that `bq mk` takes
    schema_file = schema_cmd[-1]
    table = schema_cmd[schema_cmd.index("--table") + 1]
    check_bigquery(json.loads(schema_output(capsys, *schema_cmd[2:-2])), table)
    (mk,) = [c for c in commands if c[:2] == ["bq", "mk"]]
    assert mk[-1] == "./" + schema_file
    (load,) = [c for c in commands if c[:2] == ["bq", "load"]]
    assert "--source_format=PARQUET" in load and "--parquet_enable_list_inference" in load
    assert re.search(r"enable_list_inference\s*=\s*TRUE", blocks["sql"])
    assert "format = 'PARQUET'" in blocks["sql"]


@pytest.mark.parametrize(
    ("arrow", "bigquery", "duck"),
    [
        (pa.string(), "STRING", "VARCHAR"),
        (pa.large_string(), "STRING", "VARCHAR"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMP", "TIMESTAMPTZ"),
        (pa.timestamp("us"), "TIMESTAMP", "TIMESTAMP"),
        (pa.int8(), "INTEGER", None),
        (pa.int16(), "INTEGER", "SMALLINT"),
        (pa.int32(), "INTEGER", "INTEGER"),
        (pa.int64(), "INTEGER", "BIGINT"),
        (pa.float32(), "FLOAT", None),
        (pa.float64(), "FLOAT", "DOUBLE"),
        (pa.bool_(), "BOOLEAN", "BOOLEAN"),
        (pa.date32(), None, "DATE"),
        (pa.binary(), None, None),
        (pa.list_(pa.string()), "STRING", "VARCHAR[]"),  # BigQuery: mode REPEATED
        (pa.large_list(pa.int16()), "INTEGER", "SMALLINT[]"),
        (pa.list_(pa.list_(pa.string())), None, "VARCHAR[][]"),
    ],
)
def test_each_arrow_type_has_one_row_for_both_targets(
    arrow: pa.DataType, bigquery: str | None, duck: str | None
) -> None:
    schema = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("c", arrow)])
    if bigquery is None:
        with pytest.raises(schema_cmd.SchemaError, match=r"^c: no BigQuery type for "):
            schema_cmd.bigquery_schema(schema)
    else:
        mode = "REPEATED" if pa.types.is_list(arrow) or pa.types.is_large_list(arrow) else None
        assert schema_cmd.bigquery_schema(schema)[1]["type"] == bigquery
        assert schema_cmd.bigquery_schema(schema)[1]["mode"] == (mode or "NULLABLE")
    if duck is None:
        with pytest.raises(schema_cmd.SchemaError, match=r"^c: no DuckDB type for "):
            schema_cmd.duckdb_create("t", schema, ["id"])
        return
    ddl = schema_cmd.duckdb_create("t", schema, ["id"])
    assert f'"c" {duck},' in ddl
    with duckdb.connect() as con:
        con.execute(ddl)  # DuckDB takes the type it is given
        assert con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = 't'"
        ).fetchone() == (2,)
