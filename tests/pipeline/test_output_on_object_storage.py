"""The output on object storage: a run from a bucket into a bucket on a real S3-compatible server
on 127.0.0.1 (moto in server mode, Beam's S3 file system with ``--s3_endpoint_url``).

Staging, commit, manifest, the cross-run index and the feed state live on the bucket; the
commit copies files and writes the manifest last, so a run SIGKILLed while it stages or between
two copies of its commit leaves no manifest, nothing ``load`` reads, and a rerun that gives the
rows of a clean run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import batch, cli, config, graph, load
from news_ingest.transforms import files, sinks

from tests.conftest import ROOT, read_table
from tests.localhttp import LocalServer, Reply, html_reply, serving
from tests.objectstore import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_server
from tests.pipeline.corpus import make_corpus

LANDING = "s3://corpus-in/in"
TABLES = ("articles", "duplicates", "dead_letters")
# Columns that legitimately differ between two runs of the same inputs.
VOLATILE = ("ingested_at", "run_id")


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    """The server with a bucket of inputs (a generated corpus) and an empty output bucket."""
    corpus = tmp_path_factory.mktemp("corpus")
    make_corpus(corpus, n=12)
    with s3_server() as server:
        client = server.client()
        client.create_bucket(Bucket="corpus-in")
        client.create_bucket(Bucket="news-out")
        for path in sorted(corpus.iterdir()):
            client.put_object(Bucket="corpus-in", Key=f"in/{path.name}", Body=path.read_bytes())
        files.set_options(server.beam_args)
        yield server


def cfg_for(output: str, shards: int = 1) -> config.Config:
    return config.load(
        overrides={"inputs": [LANDING], "output": {"path": output, "shards": shards}}
    )


def without_volatile(rows: list[dict]) -> list[dict]:
    for row in rows:
        for column in VOLATILE:
            row.pop(column)
    return sorted(rows, key=lambda r: (r.get("article_id") or r["dead_letter_id"], r["source_ref"]))


@pytest.fixture(scope="module")
def reference(s3, tmp_path_factory) -> dict[str, list[dict]]:
    """The rows of a run of the bucket's inputs into a local folder."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = batch.run(cfg_for(str(out)), run_id="ref", beam_args=s3.beam_args)
    assert result.manifest["status"] == "succeeded"
    return {name: without_volatile(read_table(out, name).to_pylist()) for name in TABLES}


def arrow_s3(s3: S3Server) -> pafs.S3FileSystem:
    """pyarrow's own S3 client on the server: a reader that is not the pipeline's."""
    return pafs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        scheme="http",
        endpoint_override=s3.endpoint.removeprefix("http://"),
    )


def manifest_of(s3: S3Server, prefix: str, run_id: str | None = None) -> dict | None:
    key = f"{prefix}/_manifests/{run_id}.json" if run_id else f"{prefix}/_manifest.json"
    if key not in s3.keys("news-out", prefix):
        return None
    return json.loads(s3.client().get_object(Bucket="news-out", Key=key)["Body"].read())


def committed_rows(s3: S3Server, prefix: str) -> dict[str, list[dict]]:
    """The rows of the files the current manifest lists, read with pyarrow's S3 client."""
    manifest = manifest_of(s3, prefix)
    assert manifest is not None
    fs = arrow_s3(s3)
    tables = {}
    for name in TABLES:
        paths = [f"news-out/{prefix}/{p}" for p in manifest["files"][name]]
        tables[name] = without_volatile(
            pa.concat_tables([pq.read_table(p, filesystem=fs) for p in paths]).to_pylist()
        )
    return tables


def table_keys(s3: S3Server, prefix: str) -> list[str]:
    """Keys of Parquet files in the table folders under ``prefix``."""
    return [k for k in s3.keys("news-out", prefix) if k.split("/")[1] in TABLES]


def test_a_run_from_a_bucket_into_a_bucket_then_load(s3, reference, tmp_path):
    out = "s3://news-out/one"
    result = batch.run(cfg_for(out, shards=2), run_id="obj-1", beam_args=s3.beam_args)
    assert result.manifest["status"] == "succeeded"
    assert result.manifest_path == f"{out}/_manifests/obj-1.json"

    keys = s3.keys("news-out", "one/")
    assert "one/_manifest.json" in keys and "one/_manifests/obj-1.json" in keys
    assert [k for k in keys if "_staging" in k or ".write-test" in k or ".tmp" in k] == []
    day = result.manifest["ingest_date"]
    listed = result.manifest["files"]
    assert table_keys(s3, "one/") == sorted(f"one/{p}" for name in TABLES for p in listed[name])
    assert all(f"/ingest_date={day}/part-obj-1-" in k for k in table_keys(s3, "one/"))
    index_keys = [k for k in keys if k.startswith("one/_index/")]
    assert index_keys and all(k.startswith("one/_index/run=obj-1/part-") for k in index_keys)
    # Read back with another S3 client: the same rows as a run into a local folder.
    assert committed_rows(s3, "one") == reference
    assert result.manifest["counts"] == {name: len(rows) for name, rows in reference.items()}

    db = tmp_path / "news.duckdb"
    done = cli.main(["load", "--duckdb", str(db), "--output", out, *s3.beam_args])
    assert done == 0
    with duckdb.connect(str(db), read_only=True) as con:
        for name, rows in reference.items():
            assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == len(rows)
        ids = con.execute("SELECT article_id FROM articles ORDER BY 1").fetchall()
    assert [i for (i,) in ids] == sorted(r["article_id"] for r in reference["articles"])


# A run that SIGKILLs itself at its third copy from staging into a table folder: the moment
# between two copies of a commit on a bucket, which has no atomic rename.
KILL_IN_COPY = """
import os, signal, sys
from apache_beam.io.filesystems import FileSystems
real, copies = FileSystems.copy, []
def copy(sources, targets):
    into_tables = "/_staging/" not in targets[0] and "/_index/" not in targets[0]
    if "/_staging/" in sources[0] and into_tables:
        copies.append(targets[0])
        if len(copies) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(sources, targets)
FileSystems.copy = staticmethod(copy)
from news_ingest.pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""


def killed_run(s3: S3Server, out: str, run_id: str, shards: int, when: str) -> int:
    """``news-ingest run`` from the input bucket into ``out`` in a process of its own, SIGKILLed
    while it writes to staging (``when="staging"``: as soon as a staged object is on the
    bucket) or by itself between two copies of its commit (``when="commit"``); its exit status.
    """
    args = ["run", "--input", LANDING, "--output", out, "--run-id", run_id]
    args += ["--shards", str(shards), *s3.beam_args]
    launcher = ["-c", KILL_IN_COPY] if when == "commit" else ["-m", "news_ingest.pipeline"]
    proc = subprocess.Popen(
        [sys.executable, *launcher, *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    prefix = out.removeprefix("s3://news-out/") + "/_staging/"
    deadline = time.monotonic() + 240
    try:
        while when == "staging" and proc.poll() is None and time.monotonic() < deadline:
            if s3.keys("news-out", prefix):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        return proc.wait(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_run_killed_while_staging_leaves_nothing_to_load_and_the_rerun_is_clean(
    s3, reference, tmp_path
):
    out = "s3://news-out/staged"
    status = killed_run(s3, out, "staged-1", shards=2, when="staging")
    assert status == -signal.SIGKILL, "the run ended before it could be killed"
    assert [k for k in s3.keys("news-out", "staged/") if "/_staging/" in k] != []
    assert table_keys(s3, "staged/") == [] and manifest_of(s3, "staged") is None
    with pytest.raises(load.LoadError, match="no committed Parquet"):
        load.load_duckdb(str(tmp_path / "news.duckdb"), out)

    rerun = batch.run(cfg_for(out, shards=2), run_id="staged-1", beam_args=s3.beam_args)
    assert rerun.manifest["status"] == "succeeded"
    assert committed_rows(s3, "staged") == reference
    assert [k for k in s3.keys("news-out", "staged/") if "_staging" in k] == []


def test_a_run_killed_between_two_copies_leaves_no_manifest_and_the_rerun_is_clean(
    s3, reference, tmp_path
):
    out = "s3://news-out/kill"
    first = batch.run(cfg_for(out, shards=2), run_id="kill-1", beam_args=s3.beam_args)
    assert first.manifest["status"] == "succeeded"

    # A rerun of the run id with one shard per table is SIGKILLed after two copies into the
    # tables (by itself, at its third: the copies of a commit are too quick to catch).
    status = killed_run(s3, out, "kill-1", shards=1, when="commit")
    assert status == -signal.SIGKILL, "the run ended before it could be killed"

    # Files of the killed attempt are visible, but no manifest lists them: nothing is loaded.
    assert [k.rsplit("/", 1)[1] for k in table_keys(s3, "kill/")] == [
        "part-kill-1-00000.parquet",
        "part-kill-1-00000.parquet",
    ]
    assert manifest_of(s3, "kill", "kill-1") is None
    assert manifest_of(s3, "kill") is None
    with pytest.raises(load.LoadError, match="no committed Parquet"):
        load.load_duckdb(str(tmp_path / "news.duckdb"), out)

    rerun = batch.run(cfg_for(out, shards=1), run_id="kill-1", beam_args=s3.beam_args)
    assert rerun.manifest["status"] == "succeeded"
    assert committed_rows(s3, "kill") == reference
    # The rerun replaced the run's files: one per table, none of the two-shard run's.
    day = rerun.manifest["ingest_date"]
    assert table_keys(s3, "kill/") == [
        f"kill/{name}/ingest_date={day}/part-kill-1-00000.parquet" for name in sorted(TABLES)
    ]
    assert [k for k in s3.keys("news-out", "kill/") if "_staging" in k] == []
    assert s3.keys("news-out", "kill/_index/") == ["kill/_index/run=kill-1/part-00000.parquet"]


@pytest.fixture
def feed_server() -> Iterator[LocalServer]:
    with serving() as local:
        local.routes["/robots.txt"] = Reply(body=b"User-agent: *\nAllow: /\n")
        local.routes["/feed.json"] = Reply(
            body=json.dumps(
                {
                    "version": "https://jsonfeed.org/version/1.1",
                    "items": [{"id": "m1", "url": local.url("/news/museum.html")}],
                }
            ).encode(),
            headers={"Content-Type": "application/feed+json", "ETag": '"v1"'},
        )
        body = "".join(
            f"<p>The city museum opened a wing for maritime history ({i}), with models and "
            "letters from sailors who crossed the Atlantic a century ago.</p>"
            for i in range(4)
        )
        local.routes["/news/museum.html"] = html_reply(
            f"<html><head><title>Museum wing</title></head><body><article><h1>Museum wing"
            f"</h1>{body}</article></body></html>"
        )
        yield local


def test_feed_state_and_the_index_on_the_bucket_across_two_runs(s3, feed_server):
    out = "s3://news-out/twice"
    sections = {
        "fetch": {"allow_networks": ["127.0.0.1/32"], "min_delay_s": 0.0, "retries": 0},
        "feeds": {"sources": [{"url": feed_server.url("/feed.json")}], "state_dir": f"{out}/feeds"},
    }
    overrides = {"inputs": [LANDING], "output": {"path": out}, **sections}
    first = batch.run(config.load(overrides=overrides), run_id="day-1", beam_args=s3.beam_args)
    counts = first.manifest["counts"]
    articles = [
        r
        for p in first.manifest["files"]["articles"]
        for r in sinks.read_parquet(f"{out}/{p}").to_pylist()
    ]
    from_bucket = [a for a in articles if a["source_kind"] != "feed"]
    assert [a["url"] for a in articles if a["source_kind"] == "feed"] == [
        feed_server.url("/news/museum.html")
    ]
    (state_key,) = s3.keys("news-out", "twice/feeds/")
    state = json.loads(s3.client().get_object(Bucket="news-out", Key=state_key)["Body"].read())
    assert state["url"] == feed_server.url("/feed.json") and state["etag"] == '"v1"'

    second = batch.run(config.load(overrides=overrides), run_id="day-2", beam_args=s3.beam_args)
    # The feed is not due again (its state on the bucket says when it was polled) ...
    assert feed_server.hits["/feed.json"] == 1
    # ... and every document of the bucket is a duplicate of an article of the first run,
    # found in the index on the bucket.
    assert second.manifest["counts"]["articles"] == 0
    assert second.manifest["dedup_index"] == {"path": f"{out}/_index", "files_read": 1}
    duplicates = [
        r
        for p in second.manifest["files"]["duplicates"]
        for r in sinks.read_parquet(f"{out}/{p}").to_pylist()
    ]
    assert len(duplicates) == len(from_bucket) + counts["duplicates"]
    assert {r["duplicate_of"] for r in duplicates} <= {a["article_id"] for a in from_bucket}
    assert s3.keys("news-out", "twice/_index/") == [
        "twice/_index/run=day-1/part-00000.parquet",
        "twice/_index/run=day-2/part-00000.parquet",
    ]


def test_config_and_rule_packs_from_a_bucket(s3, tmp_path):
    client = s3.client()
    packs = sorted((ROOT / "configs" / "packs").glob("*.yaml"))
    for path in [ROOT / "configs" / "boilerplate.yaml", *packs]:
        key = "conf/" + ("packs/" if path.parent.name == "packs" else "") + path.name
        client.put_object(Bucket="news-out", Key=key, Body=path.read_bytes())
    client.put_object(
        Bucket="news-out",
        Key="conf/user.yaml",
        Body=b"clean:\n  rules: s3://news-out/conf/boilerplate.yaml\n  packs: s3://news-out/conf/packs\n",
    )
    cfg = config.load("s3://news-out/conf/user.yaml")
    default, sources = graph.rule_packs(cfg)
    local_default, local_sources = graph.rule_packs(config.load())
    assert default == local_default
    assert sources == local_sources and len(sources) == len(packs)

    with pytest.raises(config.ConfigError, match="cannot read config s3://news-out/conf/none.yaml"):
        config.load("s3://news-out/conf/none.yaml")
    bad = config.load(overrides={"clean": {"packs": "s3://news-out/no-packs"}})
    with pytest.raises(config.ConfigError, match="rule pack directory s3://news-out/no-packs"):
        graph.rule_packs(bad)

    # The command line reads a config on the bucket with Beam's flags for the server.
    done = cli.main(["run", "--config", "s3://news-out/conf/user.yaml", "--dry-run", *s3.beam_args])
    assert done == 0


def test_an_output_bucket_that_does_not_exist_is_a_usage_error(s3):
    with pytest.raises(batch.UsageError, match="output s3://no-such-bucket/out is not writable"):
        batch.check_output("s3://no-such-bucket/out")


def test_local_paths_keep_folder_semantics(tmp_path: Path):
    # The same helpers on a local folder: a folder rename is one os.replace.
    stage = tmp_path / "stage"
    (stage / "a").mkdir(parents=True)
    (stage / "a" / "x.parquet").write_bytes(b"x")
    files.rename(str(stage), str(tmp_path / "done"))
    assert files.files_under(str(tmp_path / "done")) == [str(tmp_path / "done" / "a" / "x.parquet")]
    assert not stage.exists()
    files.remove_tree(str(tmp_path / "done"))
    assert not (tmp_path / "done").exists()
