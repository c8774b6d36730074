"""End to end: dedup and stories through the real CLI (in-process), across runs and worker
counts."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import SEEDS, read_table, run_main

LATER = " date 2024-10-29"


def later(raw: str) -> str:
    """The same document, published a day later (keeps the outlet part of the header)."""
    assert raw.startswith(" date 2024-10-28")
    return LATER + raw[len(" date 2024-10-28") :]


def cut(raw: str, share: float = 0.85) -> str:
    paragraphs = [p for p in raw.split("\n") if p.strip()]
    return "\n".join(paragraphs[: round(len(paragraphs) * share)]) + "\n"


def rewrap(raw: str) -> str:
    return "\n".join(textwrap.wrap(" ".join(raw.split()), 60)) + "\n"


BOILERPLATE = "Subscribe to our newsletter\nSign in | Register\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds plus copies of the two dated seeds, each published a day later."""
    folder = tmp_path_factory.mktemp("inputs")
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, folder / path.name)
    s0 = (SEEDS / "000_9101e3246db773c2.txt").read_text(encoding="utf-8")
    s1 = (SEEDS / "001_d29600079a7d50f2.txt").read_text(encoding="utf-8")
    copies = {
        "copy_wrap_0.txt": rewrap(later(s0)),
        "copy_cut_0.txt": cut(later(s0)),
        "copy_boiler_1.txt": later(s1).replace("\n", "\n" + BOILERPLATE, 1) + BOILERPLATE,
        "copy_cut_1.txt": cut(later(s1)),
    }
    for name, text in copies.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def ids_by_file(table) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        Path(ref).name: aid
        for ref, aid in zip(
            table.column("source_ref").to_pylist(),
            table.column("article_id").to_pylist(),
            strict=True,
        )
    }


def run(inputs: Path, out: Path, run_id: str, *extra: str) -> None:
    result = run_main(
        "run", "--input", str(inputs), "--output", str(out), "--run-id", run_id, *extra
    )
    assert result.returncode == 0, result.stderr


def dedup_view(out: Path, run_id: str) -> tuple[list[tuple], list[tuple]]:  # type: ignore[type-arg]
    """(article_id, story_id) of the kept articles and (article_id, duplicate_of, kind,
    similarity) of the duplicates that ``run_id`` wrote."""
    arts = read_table(out, "articles").to_pylist()
    dups = read_table(out, "duplicates").to_pylist()
    return (
        sorted((a["article_id"], a["story_id"]) for a in arts if a["run_id"] == run_id),
        sorted(
            (d["article_id"], d["duplicate_of"], d["dedup_kind"], round(d["similarity"], 6))
            for d in dups
            if d["run_id"] == run_id
        ),
    )


@pytest.fixture(scope="module")
def first_run(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    run(inputs, out, "first")
    return out


def test_seeds_and_copies(first_run: Path) -> None:
    arts = read_table(first_run, "articles")
    dups = read_table(first_run, "duplicates")
    kept = ids_by_file(arts)
    assert sorted(kept) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert len(set(arts.column("story_id").to_pylist())) == 1  # the five seeds: one story
    seed0, seed1 = kept["000_9101e3246db773c2.txt"], kept["001_d29600079a7d50f2.txt"]
    found = {
        Path(d["source_ref"]).name: (d["duplicate_of"], d["dedup_kind"], d["similarity"])
        for d in dups.to_pylist()
    }
    assert {name: v[:2] for name, v in found.items()} == {
        # Refilled as one block, the copy's photo caption and dateline no longer stand on lines
        # of their own, so cleaning cannot move them out: a near copy, not an exact one.
        "copy_wrap_0.txt": (seed0, "near"),
        "copy_cut_0.txt": (seed0, "near"),
        "copy_boiler_1.txt": (seed1, "near"),
        "copy_cut_1.txt": (seed1, "near"),
    }
    assert found["copy_wrap_0.txt"][2] >= 0.8
    # Duplicates carry their keeper's story.
    assert set(dups.column("story_id").to_pylist()) == set(arts.column("story_id").to_pylist())
    assert all(0.6 < v[2] <= 1.0 for v in found.values())
    index = pq.read_table(first_run / "_index" / "run=first")
    assert sorted(index.column("article_id").to_pylist()) == sorted(kept.values())
    assert index.column("signature").null_count == 0


def test_second_run_finds_nothing_new_and_rerun_reproduces(inputs: Path, first_run: Path) -> None:
    before = dedup_view(first_run, "first")
    kept_first = {aid for aid, _ in before[0]}
    run(inputs, first_run, "second")
    arts, dups = dedup_view(first_run, "second")
    assert arts == []
    assert len(dups) == 9
    assert {d[1] for d in dups} <= kept_first
    # The seeds match by content hash; the refilled, cut and boilerplate copies stay near.
    assert sorted(d[2] for d in dups) == ["exact"] * 5 + ["near"] * 4
    # A rerun of the first run id ignores its own index entries (and, being earlier, is not a
    # copy of the second run, which kept nothing): same articles, same duplicates.
    run(inputs, first_run, "first")
    assert dedup_view(first_run, "first") == before
    assert sorted(p.name for p in (first_run / "_index").iterdir()) == ["run=first", "run=second"]


def test_output_does_not_depend_on_workers_or_shards(
    inputs: Path, first_run: Path, tmp_path: Path
) -> None:
    run(inputs, tmp_path, "first", "--workers", "2", "--shards", "3")
    assert dedup_view(tmp_path, "first") == dedup_view(first_run, "first")


def test_index_can_be_turned_off(inputs: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text("dedup:\n  index: false\nstories:\n  enabled: false\n", encoding="utf-8")
    for run_id in ("a", "b"):
        run(inputs, tmp_path / "out", run_id, "--config", str(config))
    arts = read_table(tmp_path / "out", "articles").to_pylist()
    assert sum(1 for a in arts if a["run_id"] == "b") == 5
    assert all(a["story_id"] is None for a in arts)
    assert not (tmp_path / "out" / "_index").exists()
