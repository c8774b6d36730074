"""Config: packaged defaults agree with the dataclasses; overlays; eager validation."""

from __future__ import annotations

import dataclasses

import pytest
from news_ingest.pipeline import config
from news_ingest.pipeline.config import Config, ConfigError


def test_default_yaml_states_exactly_the_dataclass_defaults():
    assert config.load() == Config()


def test_default_yaml_covers_every_section_and_key():
    data = config.read_yaml(config.DEFAULT_CONFIG)

    def keys(cls, prefix=""):
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type) or dataclasses.is_dataclass(f.default):
                yield from keys(type(f.default), f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}"

    def flat(d, cls, prefix=""):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for k, v in d.items():
            section = fields[k].default if k in fields else None
            if isinstance(v, dict) and dataclasses.is_dataclass(section):
                yield from flat(v, type(section), f"{prefix}{k}.")
            else:  # a leaf, including mapping-valued settings such as runner.options
                yield f"{prefix}{k}"

    assert set(flat(data, Config)) == set(keys(Config))


def test_user_file_and_overrides_overlay_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("output:\n  shards: 3\nrunner:\n  workers: 2\n")
    cfg = config.load(path, {"runner": {"workers": 4}})
    assert cfg.output.shards == 3
    assert cfg.runner.workers == 4
    assert cfg.output.path == Config().output.path


@pytest.mark.parametrize(
    "text, message",
    [
        ("nope: 1\n", "unknown config key: nope"),
        ("read:\n  max_bytes: lots\n", "read.max_bytes: expected int"),
        ("runner:\n  name: spark\n", "unknown runner"),
        ("runner:\n  workers: 0\n", "runner.workers"),
        ("clean:\n  min_repeat_words: 0\n", "clean.min_repeat_words"),
        ("inputs: seeds\n", "inputs: expected a list"),
        ("- a\n- b\n", "mapping at the top level"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_configs_fail_eagerly_naming_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(path)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().runner.workers = 3  # type: ignore[misc]


def test_each_stage_section_is_that_stage_options_object():
    from news_ingest.pipeline.graph import extract_options
    from news_ingest.transforms.clean import CleanOptions
    from news_ingest.transforms.dedup import NearParams
    from news_ingest.transforms.extract import ExtractOptions
    from news_ingest.transforms.normalize import NormalizeOptions
    from news_ingest.transforms.sources import ReadOptions
    from news_ingest.transforms.stories import StoryParams

    cfg = config.load(
        overrides={
            "dedup": {"threshold": 0.9, "near": False},
            "extract": {"max_elements": 7},
            "normalize": {"min_language_confidence": 0.7},
            "clean": {"min_repeat_words": 5},
        }
    )
    sections = {
        "read": ReadOptions,
        "extract": ExtractOptions,
        "clean": CleanOptions,
        "normalize": NormalizeOptions,
        "dedup": NearParams,
        "stories": StoryParams,
    }
    for name, cls in sections.items():
        assert type(getattr(cfg, name)) is cls, name
    assert cfg.dedup.threshold == 0.9 and cfg.dedup.near is False
    assert cfg.normalize.min_language_confidence == 0.7
    assert cfg.clean.min_repeat_words == 5
    assert extract_options(cfg).max_elements == 7


def test_stream_durations_are_seconds_given_as_durations(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stream:\n  window: 2m\n  duration: 90\ndedup:\n  ttl: 7d\n")
    cfg = config.load(path)
    assert (cfg.stream.window, cfg.dedup.ttl, cfg.stream.duration) == (120.0, 604800.0, 90.0)
    assert Config().dedup.ttl == 30 * 86400.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"extract": {"max_link_density": 1.5}}, "extract.max_link_density"),
        ({"extract": {"timeout_s": 0}}, "extract.timeout_s"),
        ({"normalize": {"min_language_confidence": 2}}, "normalize.min_language_confidence"),
        ({"clean": {"min_repeat_words": 0}}, "clean.min_repeat_words"),
        ({"dedup": {"bands": 7}}, "dedup.num_perm"),
        ({"stories": {"window_hours": 0}}, "stories.window_hours"),
        ({"stream": {"window": "5 minutes"}}, "stream.window: not a duration"),
        ({"dedup": {"ttl": 0}}, "dedup.ttl must be positive"),
        ({"stream": {"seen_ttl": "0s"}}, "stream.seen_ttl must be positive"),
    ],
)
def test_a_stage_option_checks_itself_and_the_error_names_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config.load(overrides=overrides)


@pytest.mark.parametrize(
    "text, overrides, inputs",
    [
        ("runner:\n  workers: 1\n", None, ("seeds",)),
        ("feeds:\n  sources:\n    - url: https://example.org/feed.xml\n", None, ()),
        ("inputs: [a, b]\n", None, ("a", "b")),
        ("feeds:\n  sources: []\n", None, ("seeds",)),
        ("runner:\n  workers: 1\n", {"inputs": ["x"]}, ("x",)),
    ],
)
def test_the_seeds_are_the_default_input_only_when_nothing_names_an_input(
    tmp_path, text, overrides, inputs
):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert config.load(path, overrides).inputs == inputs


@pytest.mark.parametrize(
    "text, message",
    [("stream:\n  marker: READY\n", "stream.marker"), ("stream:\n  settle_s: -1\n", "settle_s")],
)
def test_a_bad_landing_rule_fails_at_start(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(path)
