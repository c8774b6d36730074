"""``news-ingest load``: merging Parquet output into a real DuckDB file, idempotently."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import manifest
from news_ingest.pipeline.load import KEYS, LoadError, load_duckdb
from news_ingest.transforms import schema, sinks
from news_ingest.transforms.schema import Article, Duplicate

from tests.conftest import read_table, run_cli, run_main
from tests.pipeline.corpus import make_corpus


def _key_dupes(db: Path) -> dict[str, int]:
    """Per table, how many keys occur more than once."""
    with duckdb.connect(str(db), read_only=True) as con:
        out = {}
        for name, keys in KEYS.items():
            cols = ", ".join(keys)
            (n,) = con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM {name} GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()
            out[name] = n
        return out


def _count(db: Path, name: str, where: str = "true") -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {name} WHERE {where}").fetchone()[0]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One output folder holding two runs of the same generated corpus that both keep every
    article: a reprocessing run with the cross-run index off (with it on, run-b would keep
    nothing), so that the two runs write the same keys and the load must merge them."""
    root = tmp_path_factory.mktemp("load")
    make_corpus(root / "corpus", n=24)
    config = root / "reprocess.yaml"
    config.write_text("dedup:\n  index: false\n", encoding="utf-8")
    for run_id in ("run-a", "run-b"):
        done = run_main(
            "run", "--input", str(root / "corpus"), "--output", str(root / "out"),
            "--run-id", run_id, "--config", str(config),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    return root / "out"


def test_load_twice_leaves_one_row_per_key(two_runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    first = run_main("load", "--duckdb", str(db), "--output", str(two_runs), "--run-id", "run-a")
    assert first.returncode == 0, first.stderr
    table = read_table(two_runs, "articles")
    articles = table.filter(pc.equal(table["run_id"], "run-a"))
    assert _count(db, "articles") == articles.num_rows > 0

    for _ in range(2):
        again = run_main("load", "--duckdb", str(db), "--output", str(two_runs))
        assert again.returncode == 0, again.stderr
    assert _key_dupes(db) == {"articles": 0, "duplicates": 0, "dead_letters": 0}
    assert _count(db, "articles") == articles.num_rows
    assert _count(db, "duplicates") == 4
    assert _count(db, "dead_letters") == 2
    # Both runs hold every key: the later run's rows replace the earlier run's.
    assert _count(db, "articles", "run_id = 'run-b'") == articles.num_rows
    assert "replaced" in again.stdout


def test_loaded_values_match_parquet(two_runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    load_duckdb(str(db), str(two_runs), "run-a")
    expected = read_table(two_runs, "articles")
    expected = sorted(
        (r["article_id"], r["title"], r["word_count"], r["authors"])
        for r in expected.to_pylist()
        if r["run_id"] == "run-a"
    )
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute(
            "SELECT article_id, title, word_count, authors FROM articles ORDER BY ALL"
        ).fetchall()
    assert [(a, t, w, list(au)) for a, t, w, au in got] == expected


def _article(source_ref: str, url: str) -> Article:
    return Article(
        article_id=schema.stable_id("url", url),
        source_kind="html",
        source_ref=source_ref,
        url=url,
        text="Same story.",
        word_count=2,
        ingested_at=dt.datetime(2026, 1, 1, tzinfo=schema.UTC),
        run_id="r1",
        pipeline_version="test",
    )


def test_copies_sharing_an_article_id_stay_separate_duplicates(tmp_path: Path) -> None:
    # Two copies of one URL under different paths share article_id but are two rows.
    out = tmp_path / "out"
    kept = _article("a.html", "https://example.org/x")
    dups = [
        Duplicate(dataclasses.replace(kept, source_ref=ref), kept.article_id, "url", 1.0)
        for ref in ("b.html", "c.html")
    ]
    staging = Path(sinks.staging_dir(str(out), "r1"))
    rows = [schema.duplicate_row(d) for d in dups]
    table = schema.to_table(rows, schema.DUPLICATES_SCHEMA)
    (staging / "duplicates").mkdir(parents=True)
    pq.write_table(table, staging / "duplicates" / sinks.shard_name("r1", 0))
    sinks.write_shard("articles", [schema.article_row(kept)], str(staging / "articles"), "r1", 0)
    committed = sinks.commit_run(str(out), "r1", dt.date(2026, 1, 1))
    # The manifest is the commit marker: load reads the files it lists.
    manifest.write_manifest(
        str(out), {"run_id": "r1", "files": manifest.relative_files(str(out), committed)}
    )

    db = tmp_path / "news.duckdb"
    for _ in range(2):
        loads = load_duckdb(str(db), str(out))
    assert {t.table: t.total for t in loads} == {"articles": 1, "duplicates": 2, "dead_letters": 0}


def test_load_without_output_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no committed Parquet"):
        load_duckdb(str(tmp_path / "x.duckdb"), str(tmp_path / "missing"))
    done = run_cli("load", "--duckdb", str(tmp_path / "x.duckdb"), "--output", str(tmp_path))
    assert done.returncode == 2
    assert "no committed Parquet" in done.stderr


def test_tables_have_keys_not_null_and_comments(two_runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    load_duckdb(str(db), str(two_runs))
    with duckdb.connect(str(db)) as con:
        keys = dict(
            con.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        )
        assert keys == {name: list(cols) for name, cols in KEYS.items()}
        columns = {
            (t, c): (nullable, comment)
            for t, c, nullable, comment in con.execute(
                "SELECT table_name, column_name, is_nullable, comment FROM duckdb_columns() "
                "WHERE NOT internal"
            ).fetchall()
        }
        for name, table_schema in schema.TABLES.items():
            for field in table_schema:
                nullable, comment = columns[(name, field.name)]
                assert nullable == field.nullable, (name, field.name)
                assert comment == field.metadata[b"description"].decode(), (name, field.name)
        assert columns[("articles", "ingest_date")][0] is False
        # The primary key holds: the same article again is refused, and so is a null text.
        with pytest.raises(duckdb.ConstraintException, match="primary key"):
            con.execute("INSERT INTO articles SELECT * FROM articles LIMIT 1")
        with pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
            con.execute(
                "INSERT INTO articles BY NAME SELECT 'new-id' AS article_id, NULL AS text, "
                "* EXCLUDE (article_id, text) FROM articles LIMIT 1"
            )


def test_a_table_without_keys_is_rebuilt_with_them(two_runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    files = sinks.committed_files(str(two_runs), "dead_letters", "run-a")
    with duckdb.connect(str(db)) as con:  # as an older `load` made it: no keys, no comments
        con.execute(
            "CREATE TABLE dead_letters AS SELECT * FROM read_parquet(?, hive_partitioning = true)",
            [files],
        )
        (before,) = con.execute("SELECT count(*) FROM dead_letters").fetchone()
    load_duckdb(str(db), str(two_runs), "run-b")
    with duckdb.connect(str(db), read_only=True) as con:
        (pk,) = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'dead_letters' AND constraint_type = 'PRIMARY KEY'"
        ).fetchone()
        (after,) = con.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert pk == ["dead_letter_id"]
    assert before > 0 and after == before  # run-b has the same dead letters: replaced, kept
