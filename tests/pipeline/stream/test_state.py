"""The stream launcher's view of its output: which files a round wrote."""

from __future__ import annotations

import datetime as dt

from news_ingest.pipeline.stream import state


def test_a_round_lists_only_its_run_s_files_of_its_day(tmp_path):
    day = dt.date(2026, 12, 3)
    names = {
        # this run, this day: a round's files, and the run's empty file
        ("articles", "2026-12-03", "part-live-w20261203T100000Z-0a1b.parquet"),
        ("duplicates", "2026-12-03", "part-live-w20261203T100000Z-late-2c3d.parquet"),
        ("dead_letters", "2026-12-03", "part-live-empty.parquet"),
        # another day of the same run, another run, a run whose id starts with this one's
        ("articles", "2026-12-02", "part-live-w20261202T100000Z-4e5f.parquet"),
        ("articles", "2026-12-03", "part-batch-00000.parquet"),
        ("articles", "2026-12-03", "part-live2-w20261203T100000Z-6a7b.parquet"),
    }
    for table, date, name in names:
        folder = tmp_path / table / f"ingest_date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    found = state.round_files(str(tmp_path), "live", day)
    assert sorted(p.removeprefix(str(tmp_path) + "/") for p in found) == [
        "articles/ingest_date=2026-12-03/part-live-w20261203T100000Z-0a1b.parquet",
        "dead_letters/ingest_date=2026-12-03/part-live-empty.parquet",
        "duplicates/ingest_date=2026-12-03/part-live-w20261203T100000Z-late-2c3d.parquet",
    ]
    assert state.round_files(str(tmp_path), "live", dt.date(2026, 12, 4)) == set()
