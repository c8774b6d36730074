"""A stream into a bucket on a real S3-compatible server on 127.0.0.1 (moto in server mode):
``news-ingest stream --output s3://...`` writes its window panes, index rounds, state and manifest
through Beam's file systems, the manifest last, and ``news-ingest load`` reads it back.

One short stream (one polling round over a watched local folder of the five seeds), then a
restart that finds the seen store on the bucket and writes nothing again (no round runs)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import duckdb
import pytest
from news_ingest.pipeline.stream import state
from news_ingest.transforms import files, sinks

from tests.conftest import SEEDS, run_main
from tests.objectstore import S3Server, s3_server

BUCKET = "stream-out"
OUT = f"s3://{BUCKET}/live"
TABLES = ("articles", "duplicates", "dead_letters")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        server.client().create_bucket(Bucket=BUCKET)
        files.set_options(server.beam_args)
        yield server


@pytest.fixture(scope="module")
def streamed(s3, tmp_path_factory):
    """One stream run of a watched folder of the seeds into the bucket: (work dir, result)."""
    work = tmp_path_factory.mktemp("stream-s3")
    watch = work / "watch"
    shutil.copytree(SEEDS, watch)
    (work / "stream.yaml").write_text("stream:\n  settle_s: 0\n  poll_every: 1s\n  window: 1d\n")
    done = run_main(
        "stream", "--input", str(watch), "--config", str(work / "stream.yaml"),
        "--output", OUT, "--run-id", "s3-1", "--duration", "1s", *s3.beam_args, cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return work, done


def _manifest(s3: S3Server, run_id: str | None = None) -> dict:
    key = f"live/_manifests/{run_id}.json" if run_id else "live/_manifest.json"
    return json.loads(s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_a_stream_into_a_bucket_writes_panes_state_index_and_the_manifest_there(s3, streamed):
    work, done = streamed
    assert not (work / "s3:").exists()  # nothing went to a local folder named after the URL
    manifest = _manifest(s3, "s3-1")
    assert manifest == _manifest(s3)
    assert manifest["mode"] == "stream" and manifest["stream"]["rounds"] == 1
    assert manifest["counts"] == {"articles": 5, "duplicates": 0, "dead_letters": 0}
    keys = s3.keys(BUCKET, "live/")
    # Every table file is one the manifest lists (no temporary or probe objects), and back.
    listed = sorted(f"live/{p}" for name in TABLES for p in manifest["files"][name])
    assert sorted(k for k in keys if k.split("/")[1] in TABLES) == listed
    assert all("/part-s3-1-w" in k for k in listed if "articles/" in k)
    assert [k for k in keys if ".tmp" in k or ".write-test" in k or "_staging" in k] == []
    assert {"live/_stream/state.json", "live/_stream/meta.json"} <= set(keys)
    index = [k for k in keys if k.startswith("live/_index/")]
    assert index and all(k.startswith("live/_index/run=s3-1/part-w") for k in index)
    entries = list(sinks.read_index(f"s3://{BUCKET}/{k}" for k in index))
    assert len(entries) == 5 and {e.run_id for e in entries} == {"s3-1"}
    assert "stream: 1 rounds, 5 new items" in done.stdout

    # Read back through the loader, which reads only what the manifests list.
    db = work / "news.duckdb"
    loaded = run_main("load", "--duckdb", str(db), "--output", OUT, *s3.beam_args, cwd=work)
    assert loaded.returncode == 0, loaded.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 5
        assert con.execute("SELECT DISTINCT run_id FROM articles").fetchall() == [("s3-1",)]


def test_the_state_on_the_bucket_carries_a_restart_and_crash_recovery_reads_it(s3, streamed):
    work, _ = streamed
    saved = state.saved_at(OUT)
    assert saved > 0  # the store's own clock, from state.json's last-modified
    # What a restart after a crash reads back: the rows written since the save (none here),
    # and every row when nothing was saved.
    assert list(state.written_since(OUT, saved + 60)) == []
    assert len(list(state.written_since(OUT, 0.0))) == 5

    again = run_main(
        "stream", "--input", str(work / "watch"), "--config", str(work / "stream.yaml"),
        "--output", OUT, "--run-id", "s3-2", "--duration", "1s", *s3.beam_args, cwd=work,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    manifest = _manifest(s3)
    assert manifest["run_id"] == "s3-2"
    assert manifest["stream"]["items"] == 0 and manifest["stream"]["skipped_seen"] == 5
    assert manifest["counts"] == {"articles": 0, "duplicates": 0, "dead_letters": 0}
    # The run of s3-1 is still whole; a run id that starts with another never claims its files.
    assert all("part-s3-2-empty" in p for v in manifest["files"].values() for p in v)
    assert state.table_files(OUT, "articles", "s3") == []
