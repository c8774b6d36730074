"""The file layer on a real S3-compatible server on 127.0.0.1 (moto in server mode): Beam's S3
file system works on one boto3 client per process and settings, and readers that share it keep
their own download state."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from apache_beam.io.aws import s3io
from apache_beam.options.pipeline_options import PipelineOptions
from news_ingest.transforms import files

from tests.objectstore import S3Server, s3_server

BUCKET = "shared-client"
# Two objects larger than one read, with different bytes at every offset.
BODIES = {
    "a.bin": bytes(range(256)) * 4096,
    "b.bin": bytes(reversed(range(256))) * 4096,
}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for key, body in BODIES.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
        files.set_options(server.beam_args)
        yield server


def test_every_s3_call_of_a_process_uses_one_boto3_client_per_settings(s3) -> None:
    options = PipelineOptions(s3.beam_args)
    first, second = s3io.S3IO(options=options), s3io.S3IO(options=options)
    assert first.client is not second.client  # Beam's wrapper: one per call, as Beam makes it
    assert first.client.client is second.client.client  # the boto3 client under it: one
    other = s3io.S3IO(options=PipelineOptions([*s3.beam_args, "--s3_region_name=eu-west-1"]))
    assert other.client.client is not first.client.client
    # Beam's own calls go through it and still work.
    assert files.exists(f"s3://{BUCKET}/a.bin")
    assert not files.exists(f"s3://{BUCKET}/missing.bin")
    assert sorted(files.basename(p) for p in files.glob(f"s3://{BUCKET}/*.bin")) == [
        "a.bin",
        "b.bin",
    ]


def test_readers_sharing_the_client_read_their_own_bytes_interleaved(s3) -> None:
    readers = {key: files.open_read(f"s3://{BUCKET}/{key}") for key in BODIES}
    got: dict[str, bytearray] = {key: bytearray() for key in BODIES}
    while any(len(got[k]) < len(BODIES[k]) for k in BODIES):
        for key, reader in readers.items():
            got[key] += reader.read(70_001)
    for reader in readers.values():
        reader.close()
    assert {k: bytes(v) for k, v in got.items()} == BODIES


def test_threads_reading_through_the_shared_client_get_whole_objects(s3) -> None:
    results: dict[tuple[int, str], bytes] = {}

    def read(n: int, key: str) -> None:
        results[(n, key)] = files.read_bytes(f"s3://{BUCKET}/{key}")

    threads = [threading.Thread(target=read, args=(n, k)) for n in range(4) for k in BODIES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 8
    assert all(body == BODIES[key] for (_, key), body in results.items())
