"""End to end: `news-ingest run` (in-process; its bad usage as a process), Parquet read back with
pyarrow."""

from __future__ import annotations

import gzip
import json
import shutil

import pyarrow.parquet as pq
import pytest
from news_ingest.transforms.schema import ARTICLES_SCHEMA, DEAD_LETTERS_SCHEMA, DUPLICATES_SCHEMA

from tests.conftest import SEEDS, read_table, run_cli, run_main
from tests.transforms.test_schema import REQUIRED_ARTICLE_COLUMNS


def test_seeds_give_five_articles_with_the_contract_columns(seeds_run):
    out, _ = seeds_run
    articles = read_table(out, "articles")
    assert articles.num_rows == 5
    assert set(REQUIRED_ARTICLE_COLUMNS) <= set(articles.schema.names)
    assert articles.schema.equals(ARTICLES_SCHEMA, check_metadata=False)
    assert sorted(r.split("/")[-1] for r in articles.column("source_ref").to_pylist()) == sorted(
        p.name for p in SEEDS.glob("*.txt")
    )
    assert set(articles.column("run_id").to_pylist()) == {"seeds-1"}
    assert all(t.strip() for t in articles.column("text").to_pylist())
    assert len(set(articles.column("article_id").to_pylist())) == 5


def test_all_three_tables_exist_with_their_schemas(seeds_run):
    out, _ = seeds_run
    assert read_table(out, "duplicates").schema.equals(DUPLICATES_SCHEMA, check_metadata=False)
    assert read_table(out, "dead_letters").schema.equals(DEAD_LETTERS_SCHEMA, check_metadata=False)
    path = next((out / "articles").glob("ingest_date=*/*.parquet"))
    meta = pq.read_metadata(path)
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(path).field("text").metadata[b"description"]


def test_manifest_counts_match_the_tables(seeds_run):
    out, proc = seeds_run
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["run_id"] == "seeds-1"
    assert manifest["status"] == "succeeded"
    for table in ("articles", "duplicates", "dead_letters"):
        assert manifest["counts"][table] == read_table(out, table).num_rows
    assert manifest["inputs"]["documents"] == 5
    assert manifest["schema_version"] and manifest["pipeline_version"]
    assert manifest["runner"] == "direct"
    assert manifest["started_at"] <= manifest["finished_at"]
    assert (out / "_manifests" / "seeds-1.json").exists()
    # the summary a person reads
    assert "articles" in proc.stdout and "docs/s" in proc.stdout


def test_every_input_lands_in_exactly_one_table(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, inputs / seed.name)
    shutil.copy(SEEDS / "000_9101e3246db773c2.txt", inputs / "copy_of_000.txt")  # exact copy
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "blank.txt").write_bytes(b"  \n\t\n")
    (inputs / "junk.txt").write_bytes(bytes(range(256)) * 40)
    (inputs / "broken.html.gz").write_bytes(gzip.compress(b"<html>" * 500)[:-20])
    (inputs / "page.html").write_bytes(
        b"<html><head><title>Test page</title></head><body><article><h1>Heading</h1>"
        + b"<p>"
        + b"A full sentence of article text that goes on for a while. " * 20
        + b"</p>"
        + b"</article></body></html>"
    )
    out = tmp_path / "out"
    proc = run_main("run", "--input", str(inputs), "--output", str(out), "--run-id", "acct")
    assert proc.returncode == 0, proc.stderr

    refs = {
        table: read_table(out, table).column("source_ref").to_pylist()
        for table in ("articles", "duplicates", "dead_letters")
    }
    landed = [r for rs in refs.values() for r in rs]
    inputs_given = sorted(str(p) for p in inputs.iterdir())
    assert sorted(landed) == inputs_given  # each exactly once
    assert len(refs["duplicates"]) == 1
    dead = read_table(out, "dead_letters").to_pylist()
    assert {d["source_ref"].split("/")[-1] for d in dead} == {
        "empty.txt",
        "blank.txt",
        "junk.txt",
        "broken.html.gz",
    }
    assert all(d["stage"] and d["reason"] for d in dead)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["inputs"]["documents"] == len(inputs_given)
    assert sum(manifest["dead_letter_reasons"].values()) == 4


def test_rerun_with_the_same_run_id_replaces_its_files(tmp_path):
    out = tmp_path / "out"
    for _ in range(2):
        proc = run_main("run", "--output", str(out), "--run-id", "same", "--shards", "2")
        assert proc.returncode == 0, proc.stderr
    assert read_table(out, "articles").num_rows == 5
    proc = run_main("run", "--output", str(out), "--run-id", "other")
    assert proc.returncode == 0, proc.stderr
    # another run id adds its own files beside: here, copies of what "same" already kept
    assert read_table(out, "articles").column("run_id").to_pylist() == ["same"] * 5
    assert read_table(out, "duplicates").column("run_id").to_pylist() == ["other"] * 5
    # and rerunning "same" again leaves "other" alone
    proc = run_main("run", "--output", str(out), "--run-id", "same")
    assert proc.returncode == 0, proc.stderr
    assert read_table(out, "duplicates").num_rows == 5


def test_leftovers_of_a_crashed_attempt_are_never_visible(tmp_path):
    out = tmp_path / "out"
    staging = out / "_staging" / "crashed" / "articles"
    staging.mkdir(parents=True)
    (staging / "part-crashed-00000.parquet.tmp-1").write_bytes(b"partial")
    proc = run_main("run", "--output", str(out), "--run-id", "crashed")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "_staging").exists()
    assert read_table(out, "articles").num_rows == 5


def test_two_workers_give_the_same_rows_as_one(seeds_run, tmp_path):
    # One worker: the shared seeds run; two worker processes: the same run id again.
    one, _ = seeds_run
    two = tmp_path / "w2"
    proc = run_main("run", "--output", str(two), "--run-id", "seeds-1", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    tables = []
    for out in (one, two):
        rows = read_table(out, "articles").drop(["ingested_at"]).sort_by("article_id")
        tables.append(rows.to_pylist())
    assert tables[0] == tables[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "no/such/file.txt"], "input not found"),
        (["--run-id", "../escape"], "run id"),
        (["--output", "/proc/forbidden"], "not writable"),
        (["--config", "no/such.yaml"], "cannot read config"),
    ],
)
def test_bad_usage_is_a_one_line_error_and_nonzero_exit(tmp_path, args, message):
    proc = run_cli(
        "run", *(["--output", str(tmp_path / "o")] if "--output" not in args else []), *args
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_unknown_config_key_fails_at_start(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output:\n  shardz: 2\n")
    proc = run_cli("run", "--config", str(cfg), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "output.shardz" in proc.stderr


def test_the_same_file_in_three_folders_is_one_article_and_two_duplicates(tmp_path):
    # Equal bytes and base name give one article_id: the two copies are two duplicates rows
    # with the same id (each an input occurrence), which must not fail the run.
    inputs = tmp_path / "in"
    for folder in ("a", "b", "c"):
        (inputs / folder).mkdir(parents=True)
        shutil.copy(SEEDS / "002_c9ef6f29cfe5848e.txt", inputs / folder / "same.txt")
    out = tmp_path / "out"
    proc = run_main("run", "--input", str(inputs), "--output", str(out), "--run-id", "tri")
    assert proc.returncode == 0, proc.stderr
    (kept,) = read_table(out, "articles").column("article_id").to_pylist()
    dups = read_table(out, "duplicates").to_pylist()
    assert [d["article_id"] for d in dups] == [kept, kept]
    assert {d["duplicate_of"] for d in dups} == {kept}
    refs = [
        r for t in ("articles", "duplicates") for r in read_table(out, t)["source_ref"].to_pylist()
    ]
    assert sorted(refs) == sorted(str(p) for p in inputs.rglob("same.txt"))
