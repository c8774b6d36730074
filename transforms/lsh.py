"""The one LSH toolkit of dedup and stories: banding checks, band keys of a MinHash signature,
order-independent union-find, and the spanning-set search inside one LSH bucket. Each stage
brings its own signature (word shingles, story terms) and its own pair verification.

``CandidateBuckets`` is the one Beam wrapper: the band grouping, over ids only. The buckets
(band memberships of two or more) are then merged by their head, their smallest member key, and
a sketch is joined to the groups of the heads of its buckets, usually one, instead of being
copied into every band or every distinct membership (on Beam's local runner a grouping holds its
decoded values in memory: 32 copies of a signed node per document were most of a run's peak
memory; with many near copies of one page, e.g. a wire story syndicated a hundred times, nearly
every band holds a slightly different membership, so distinct memberships came close to that
again). A head's group is the union of its buckets, so the verification inside it compares every
pair that shares a bucket, and some that do not: it can only find more verified pairs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import apache_beam as beam
import numpy as np

SIGNATURE_DTYPE = np.dtype("<u4")


class _Member(Protocol):
    @property
    def node_id(self) -> str: ...


N = TypeVar("N", bound=_Member)


def check_banding(num_perm: int, bands: int, max_bucket: int) -> None:
    """Check MinHash/LSH banding parameters.

    Raises:
        ValueError: ``num_perm`` is not a positive multiple of ``bands``, or ``max_bucket`` < 2.
    """
    if num_perm < 1 or bands < 1 or num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a positive multiple of bands ({bands})")
    if max_bucket < 2:
        raise ValueError(f"max_bucket must be at least 2, got {max_bucket}")


def band_keys(signature: bytes, bands: int, rows: int) -> list[str]:
    """One LSH key per band: the band number and a hash of its rows."""
    width = rows * SIGNATURE_DTYPE.itemsize
    return [
        f"{b:03d}:{hashlib.blake2b(signature[b * width : (b + 1) * width], digest_size=8).hexdigest()}"
        for b in range(bands)
    ]


class UnionFind:
    """Union-find over string ids; the root of a component is its smallest id, so the result
    does not depend on the order in which edges arrive."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = parent.setdefault(x, x)
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra

    def components(self) -> dict[str, str]:
        return {x: self.find(x) for x in self.parent}


def spanning_pairs(
    members: Sequence[N],
    verify: Callable[[N, N], bool],
    max_bucket: int,
    skip: Callable[[N, N], bool] | None = None,
) -> list[tuple[N, N]]:
    """Verified pairs (later member, earlier member) among the members of one LSH bucket,
    given in ``node_id`` order: a spanning set, each verified pair merging two local
    components once.

    Each member is compared with every earlier member, or, in buckets larger than
    ``max_bucket``, with the representative of each local cluster found so far (linear
    instead of quadratic; a copy then joins through the representative). ``skip`` names pairs
    never compared (e.g. two entries of earlier runs).
    """
    exhaustive = len(members) <= max_bucket
    local = UnionFind()
    reps: list[N] = []
    pairs: list[tuple[N, N]] = []
    for i, node in enumerate(members):
        node_id = node.node_id
        local.find(node_id)
        joined = False
        for other in members[:i] if exhaustive else reps:
            if skip is not None and skip(node, other):
                continue
            other_id = other.node_id
            if local.find(node_id) == local.find(other_id):
                joined = True
            elif verify(node, other):
                local.union(node_id, other_id)
                pairs.append((node, other))
                joined = True
        if not joined:
            reps.append(node)
    return pairs


# --------------------------------------------------------------------------------------------
# Candidate buckets over ids (the Beam wrapper)


def member_key(node_id: str) -> bytes:
    """The 8-byte id a node travels under through the band grouping (a hash of ``node_id``;
    at 10^6 nodes the chance of any collision is about 3e-8)."""
    return hashlib.blake2b(node_id.encode("utf-8"), digest_size=8).digest()


# The band grouping's entries: (hash of the band key, member key as a big-endian integer, so
# that the smallest integer is the smallest key). Packed into arrays, so that a grouping holds
# 16 bytes per entry instead of a Python key, list and value per band of every member (on Beam's
# local runner those were ~300 bytes per entry, 32 entries per document: most of the peak of a
# deduplication of 20,000 documents).
BAND_ENTRY = np.dtype([("band", "<u8"), ("member", "<u8")])
# Keys of the band grouping (each holds the entries whose band hash falls in it) and documents
# packed per batch; a batch gives one array per shard it touches.
BAND_SHARDS = 256
PACK_DOCS = 2048


def band_hash(key: str) -> int:
    """The 64-bit hash a band key travels under (a collision of two keys only puts two
    buckets' members in one candidate group, which the caller's verification sorts out)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


def pack_bands(batch: Sequence[tuple[bytes, list[str]]]) -> Iterator[tuple[int, bytes]]:
    """(member key, band keys) of a batch of members -> (shard, packed ``BAND_ENTRY`` array),
    one per shard the batch's band hashes fall in."""
    entries = np.fromiter(
        ((band_hash(key), int.from_bytes(member, "big")) for member, keys in batch for key in keys),
        dtype=BAND_ENTRY,
    )
    if not len(entries):
        return
    shards = entries["band"] % BAND_SHARDS
    order = np.argsort(shards, kind="stable")
    entries, shards = entries[order], shards[order]
    bounds = np.flatnonzero(np.diff(shards)) + 1
    for part in np.split(entries, bounds):
        yield int(part["band"][0] % BAND_SHARDS), part.tobytes()


def bucket_heads(packed: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(member, head) for each member of a band's bucket of two or more, from the packed
    entries of one shard; each pair once per shard. A bucket's head is its smallest member."""
    entries = np.unique(np.frombuffer(b"".join(packed), dtype=BAND_ENTRY))
    if len(entries) < 2:
        return
    band, member = entries["band"], entries["member"]
    starts = np.ones(len(band), dtype=bool)
    starts[1:] = band[1:] != band[:-1]
    run = np.cumsum(starts) - 1
    # unique() sorted by band, then member: a run's first member is its head
    heads = member[starts][run]
    shared = np.bincount(run)[run] >= 2
    pairs = np.unique(np.stack([member[shared], heads[shared]], axis=1), axis=0)
    for m, h in pairs.tolist():
        yield m.to_bytes(8, "big"), h.to_bytes(8, "big")


class CandidateBuckets(beam.PTransform):
    """(member key, band keys) -> (member key, group id) for every LSH bucket that holds at
    least two members: the group of a bucket is its head, its smallest member key, and each
    (member, head) pair comes once (copies that share many bands share one group, even when
    each band holds a slightly different set of them). Only packed (band hash, member key)
    entries cross the band grouping, ``BAND_SHARDS`` keys of 16-byte entries; the caller joins
    its sketches to the group ids by member key and verifies each group as it did a bucket."""

    def expand(self, keyed_bands):  # type: ignore[no-untyped-def]
        return (
            keyed_bands
            | "Batch" >> beam.BatchElements(min_batch_size=PACK_DOCS, max_batch_size=PACK_DOCS)
            | "PackBands" >> beam.FlatMap(pack_bands)
            | "GroupByBand" >> beam.GroupByKey()
            | "Heads" >> beam.FlatMap(lambda kv: bucket_heads(kv[1]))
            | "DistinctGroups" >> beam.Distinct()
        )


def _bucket_sketches(keyed: tuple[bytes, dict[str, list[Any]]]) -> Iterator[tuple[bytes, Any]]:
    joined = keyed[1]
    for sketch in joined["sketch"][:1]:
        for bucket in joined["bucket"]:
            yield bucket, sketch


class GroupCandidates(beam.PTransform):
    """Sketches keyed by member key -> (group id, the sketches of its members), grouped:
    ``CandidateBuckets`` of ``keys_of(sketch)``, then each sketch joined to its groups (the
    union of the LSH buckets with one head; verify each as a bucket).

    Args:
        keys_of: a sketch's band keys (empty: in no bucket).
    """

    def __init__(self, keys_of: Callable[[Any], list[str]]):
        super().__init__()
        self.keys_of = keys_of

    def expand(self, keyed_sketches):  # type: ignore[no-untyped-def]
        keys_of = self.keys_of
        buckets = (
            keyed_sketches
            | "BandKeys" >> beam.Map(lambda kv: (kv[0], keys_of(kv[1])))
            | "Candidates" >> CandidateBuckets()
        )
        return (
            {"sketch": keyed_sketches, "bucket": buckets}
            | "JoinSketches" >> beam.CoGroupByKey()
            | "SketchPerBucket" >> beam.FlatMap(_bucket_sketches)
            | "GroupByBucket" >> beam.GroupByKey()
        )
