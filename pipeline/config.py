"""Configuration: configs/default.yaml overlaid by the user's file, then by CLI flags.

Everything is parsed eagerly into frozen dataclasses; an unknown key or a value of the wrong
type fails at start with the key's dotted path, never halfway through a run.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from transforms.feeds import FeedSource, feed_source
from transforms.fetch import FetchPolicy
from transforms.landing import LandingRule

if typing.TYPE_CHECKING:
    from transforms.dedup import NearParams
    from transforms.stories import StoryParams

HOME = Path(os.environ.get("NEWS_INGEST_HOME", Path(__file__).resolve().parents[1]))
CONFIG_DIR = HOME / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


T = typing.TypeVar("T")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    max_bytes: int = 20 * 1024 * 1024
    # Directory and glob inputs are landing folders: the stream section's landing rule applies.
    landing: bool = False


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    timeout_s: float = 30.0
    isolation: str = "auto"
    max_elements: int = 50_000
    favor_precision: bool = False
    include_tables: bool = True
    drop_title_block: bool = True
    max_link_density: float | None = 0.5
    second_opinion: bool = True
    min_agreement: float = 0.5


@dataclasses.dataclass(frozen=True)
class CleanConfig:
    min_words: int = 1
    # The default rule pack, and a directory of per-source packs ("" for none).
    rules: str = "configs/boilerplate.yaml"
    packs: str = "configs/packs"


@dataclasses.dataclass(frozen=True)
class FeedsConfig:
    """Feeds polled by a run, besides feed files and feeds lists given as inputs."""

    sources: tuple[Any, ...] = ()
    fetch_pages: bool = True
    max_entries: int = 1000
    state_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    near: bool = True
    threshold: float = 0.8
    containment: float = 0.85
    min_length_ratio: float = 0.6
    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 32
    seed: int = 1
    max_bucket: int = 200
    index: bool = True
    index_path: str | None = None


@dataclasses.dataclass(frozen=True)
class StoriesConfig:
    enabled: bool = True
    threshold: float = 0.25
    lead_words: int = 200
    window_hours: float = 72.0
    num_perm: int = 128
    bands: int = 64
    seed: int = 7
    max_bucket: int = 200


@dataclasses.dataclass(frozen=True)
class ErrorsConfig:
    max_failure_ratio: float = 0.5


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    path: str = "output"
    shards: int = 1


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    name: str = "direct"
    workers: int = 1
    # Beam pipeline options for the runner (flag name -> value); command-line flags win.
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """``news-ingest stream`` and ``replay``: durations as seconds or "30s", "5m", "2h", "7d"."""

    window: str = "5m"
    allowed_lateness: str = "1h"
    watermark_lag: str = "1h"
    poll_every: str = "30s"
    seen_ttl: str = "30d"
    dedup_ttl: str = "30d"
    duration: str | None = None
    speed: float = 1.0
    # The landing-zone rule of watched folders (and of batch inputs with read.landing).
    settle_s: float = 10.0
    marker: str | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    inputs: tuple[str, ...] = ("seeds",)
    read: ReadConfig = ReadConfig()
    extract: ExtractConfig = ExtractConfig()
    clean: CleanConfig = CleanConfig()
    # the section is the fetch policy itself (one set of defaults, checked by its __post_init__)
    fetch: FetchPolicy = FetchPolicy()
    feeds: FeedsConfig = FeedsConfig()
    dedup: DedupConfig = DedupConfig()
    stories: StoriesConfig = StoriesConfig()
    errors: ErrorsConfig = ErrorsConfig()
    output: OutputConfig = OutputConfig()
    runner: RunnerConfig = RunnerConfig()
    stream: StreamConfig = StreamConfig()


RUNNERS = ("direct", "dask", "dataflow", "flink")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        dotted = ", ".join(f"{where}.{k}".lstrip(".") for k in unknown)
        raise ConfigError(f"unknown config key: {dotted}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}".lstrip(".")) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section that validates itself (e.g. the fetch policy)
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    return data


def validate(cfg: Config) -> Config:
    if cfg.runner.name not in RUNNERS:
        raise ConfigError(f"runner.name: unknown runner {cfg.runner.name!r}; one of {RUNNERS}")
    if cfg.runner.workers < 1:
        raise ConfigError(f"runner.workers: must be at least 1, got {cfg.runner.workers}")
    if cfg.output.shards < 1:
        raise ConfigError(f"output.shards: must be at least 1, got {cfg.output.shards}")
    if cfg.extract.timeout_s <= 0:
        raise ConfigError("extract.timeout_s: must be positive")
    if cfg.extract.isolation not in ("auto", "subprocess", "thread"):
        raise ConfigError(
            f"extract.isolation: one of auto, subprocess, thread; got {cfg.extract.isolation!r}"
        )
    if cfg.extract.isolation == "subprocess" and cfg.runner.name == "dask":
        # dask's worker processes are daemonic, and those may not start child processes
        raise ConfigError("extract.isolation: subprocess is not possible on dask; use thread")
    if cfg.extract.max_elements < 1:
        raise ConfigError("extract.max_elements: must be at least 1")
    density = cfg.extract.max_link_density
    if density is not None and not 0 <= density <= 1:
        raise ConfigError(f"extract.max_link_density: must be in [0, 1] or null, got {density}")
    if not 0 <= cfg.extract.min_agreement <= 1:
        raise ConfigError(
            f"extract.min_agreement: must be in [0, 1], got {cfg.extract.min_agreement}"
        )
    if cfg.read.max_bytes <= 0:
        raise ConfigError("read.max_bytes: must be positive")
    if cfg.clean.min_words < 1:
        raise ConfigError("clean.min_words: must be at least 1")
    feed_sources(cfg)
    if cfg.feeds.max_entries < 1:
        raise ConfigError("feeds.max_entries: must be at least 1")
    if not cfg.clean.rules:
        raise ConfigError("clean.rules: a default rule pack is required")
    _validate_stream(cfg)
    for section, build in (("dedup", near_params), ("stories", story_params)):
        try:
            build(cfg)
        except ValueError as exc:
            raise ConfigError(f"{section}: {exc}") from exc
    if not 0.0 <= cfg.errors.max_failure_ratio <= 1.0:
        raise ConfigError("errors.max_failure_ratio: must be between 0 and 1")
    return cfg


STREAM_DURATIONS = (
    "window",
    "allowed_lateness",
    "watermark_lag",
    "poll_every",
    "seen_ttl",
    "dedup_ttl",
)


def stream_seconds(cfg: Config, key: str) -> float:
    """A duration of the ``stream:`` section in seconds (``duration`` may be None: 0.0)."""
    from transforms.windows import parse_duration

    value = getattr(cfg.stream, key)
    if value is None:
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"stream.{key}: {exc}") from exc


def _validate_stream(cfg: Config) -> None:
    for key in (*STREAM_DURATIONS, "duration"):
        stream_seconds(cfg, key)
    for key in ("window", "poll_every", "seen_ttl", "dedup_ttl"):
        if stream_seconds(cfg, key) <= 0:
            raise ConfigError(f"stream.{key}: must be positive")
    if cfg.stream.speed <= 0:
        raise ConfigError(f"stream.speed: must be positive, got {cfg.stream.speed}")
    landing_rule(cfg)


def landing_rule(cfg: Config) -> LandingRule:
    """The landing-zone rule of the ``stream:`` section (``settle_s``, ``marker``)."""
    try:
        return params_of(LandingRule, cfg.stream)
    except ValueError as exc:
        raise ConfigError(f"stream.{exc}") from exc


def fetch_policy(cfg: Config) -> FetchPolicy:
    """The fetch policy of the ``fetch:`` section (validated when the config was loaded)."""
    return cfg.fetch


def feed_sources(cfg: Config) -> list[FeedSource]:
    """The feeds of the ``feeds.sources`` section."""
    try:
        return [feed_source(f, f"feeds.sources[{i}]") for i, f in enumerate(cfg.feeds.sources)]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def params_of(cls: type[T], section: Any) -> T:
    """``cls`` (a stage's parameter dataclass) built from the same-named fields of a config
    section; the section may hold more (switches the graph reads itself)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    missing = names - set(values)
    if missing:  # a programming error: the section must cover every parameter
        raise TypeError(f"{type(section).__name__} lacks {sorted(missing)} of {cls.__name__}")
    return cls(**{k: v for k, v in values.items() if k in names})


def near_params(cfg: Config) -> NearParams:
    """The near-duplicate parameters of the ``dedup`` section."""
    # Imported here: transforms import Beam, which the CLI must not load before logging is set.
    from transforms.dedup import NearParams

    return params_of(NearParams, cfg.dedup)


def story_params(cfg: Config) -> StoryParams:
    """The story parameters of the ``stories`` section."""
    from transforms.stories import StoryParams

    return params_of(StoryParams, cfg.stories)


def _names_inputs(data: dict[str, Any]) -> bool:
    """Whether a config file or the flags name inputs of their own: inputs or feeds."""
    feeds = data.get("feeds")
    return "inputs" in data or bool(isinstance(feeds, dict) and feeds.get("sources"))


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """The effective config: packaged defaults, then ``path``, then ``overrides`` (dotted
    sections as nested dicts).

    The default inputs (the seeds) are used only when neither the file nor the flags name any
    input: a file that lists ``feeds.sources`` reads those feeds, not the seeds as well.
    """
    data: dict[str, Any] = read_yaml(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else {}
    user = read_yaml(path) if path is not None else {}
    if _names_inputs(user) or _names_inputs(overrides or {}):
        data["inputs"] = []
    data = _merge(data, user)
    if overrides:
        data = _merge(data, overrides)
    return validate(_build(Config, data, ""))


def resolve(path: str) -> str:
    """A path from the config, relative to the project home when it is not found as given."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = HOME / path
    return str(candidate) if candidate.exists() else path
