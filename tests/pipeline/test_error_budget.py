"""The error budget's arithmetic and its config key."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import config, error_budget
from news_ingest.pipeline.error_budget import Budget
from news_ingest.transforms.schema import DEAD_LETTERS_SCHEMA, to_table


@pytest.mark.parametrize(
    ("failed", "records", "ceiling", "exceeded"),
    [
        (0, 0, 0.0, False),
        (1, 2, 0.5, False),
        (2, 3, 0.5, True),
        (3, 3, 1.0, False),
        (1, 10, 0.0, True),
    ],
)
def test_the_budget_is_exceeded_only_above_the_ceiling(failed, records, ceiling, exceeded):
    budget = Budget(failed, records, ceiling)
    assert budget.exceeded is exceeded
    assert budget.as_dict()["exceeded"] is exceeded


def test_only_exceptions_and_stage_timeouts_count_as_failures(tmp_path):
    dead = [
        ("extract", "exception"),
        ("extract", "timeout"),
        ("clean", "empty_text"),
        ("extract", "not_text"),
        ("fetch", "exception"),
        ("read", "too_large"),
        ("fetch", "timeout"),
        ("fetch", "http_503"),
        ("feeds", "timeout"),
    ]
    rows = [
        {
            "dead_letter_id": str(i),
            "source_ref": f"doc-{i}",
            "stage": stage,
            "reason": reason,
            "ingested_at": None,
            "run_id": "r",
            "schema_version": "1",
        }
        for i, (stage, reason) in enumerate(dead)
    ]
    path = tmp_path / "dead.parquet"
    table = to_table(
        rows, DEAD_LETTERS_SCHEMA.set(9, DEAD_LETTERS_SCHEMA.field(9).with_nullable(True))
    )
    pq.write_table(table, path)
    assert error_budget.count_failures([str(path)]) == 3


def test_the_default_ceiling_is_half_and_yaml_agrees():
    assert config.load().errors.max_failure_ratio == 0.5
    assert config.Config().errors.max_failure_ratio == 0.5


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_ceiling_outside_zero_to_one_is_a_config_error(bad):
    with pytest.raises(config.ConfigError, match="errors.max_failure_ratio"):
        config.load(None, {"errors": {"max_failure_ratio": bad}})
