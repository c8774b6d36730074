"""The one LSH toolkit of dedup and stories: banding checks, band keys of a MinHash signature,
order-independent union-find, and the spanning-set search inside one LSH bucket. Each stage
brings its own signature (word shingles, story terms) and its own pair verification."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

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
