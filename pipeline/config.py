"""Configuration: configs/default.yaml overlaid by the user's file, then by CLI flags.

Everything is parsed eagerly into frozen dataclasses; an unknown key or a value of the wrong
type fails at start with the key's dotted path, never halfway through a run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from news_ingest.transforms import files
from news_ingest.transforms.clean import CleanOptions
from news_ingest.transforms.dedup import NearParams
from news_ingest.transforms.durations import parse_duration
from news_ingest.transforms.extract import ExtractOptions
from news_ingest.transforms.feeds import FeedSource, feed_source
from news_ingest.transforms.landing import LandingRule
from news_ingest.transforms.normalize import NormalizeOptions
from news_ingest.transforms.sources import ReadOptions
from news_ingest.transforms.stories import StoryParams
from news_ingest.transforms.web.http import FetchPolicy

if typing.TYPE_CHECKING:
    from news_ingest.transforms.sitemaps import SitemapLimits


def packaged(name: str) -> Path:
    """The folder of the package data ``news_ingest.<name>`` (``configs``, ``seeds``) as
    installed: inside site-packages for a wheel, the checkout's folder for an editable install."""
    spec = importlib.util.find_spec(f"news_ingest.{name}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"news_ingest.{name} is not installed with the package")
    return Path(next(iter(spec.submodule_search_locations)))


CONFIG_DIR = packaged("configs")
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
# Relative paths of the defaults (configs/boilerplate.yaml, seeds) that name package data when
# the current directory has no such file.
PACKAGED = ("configs", "seeds")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


@dataclasses.dataclass(frozen=True)
class FeedsConfig:
    """Feeds polled by a run, besides feed files and feeds lists given as inputs."""

    sources: tuple[Any, ...] = ()
    fetch_pages: bool = True
    max_entries: int = 1000
    state_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class DiscoverConfig:
    """Sitemaps and URL lists read by a run: their pages are fetched like feed entries'."""

    # Sitemaps, sitemap indexes or news sitemaps: http(s) URLs or files, gzip'd or not.
    sitemaps: tuple[str, ...] = ()
    # Files of page URLs, one per line.
    url_lists: tuple[str, ...] = ()
    max_depth: int = 3
    max_sitemaps: int = 1000
    max_urls: int = 50_000


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


def _duration(default: float | None) -> Any:
    """A field given in the config as seconds or a duration ("30s", "5m", "2h", "7d")."""
    return dataclasses.field(default=default, metadata={"duration": True})


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """``news-ingest stream`` and ``replay``: the stream driver's options, durations in seconds.

    Attributes:
        window: fixed event-time window size.
        allowed_lateness: how long after a window ends records still join it as a late pane.
        watermark_lag: how far the watermark trails the wall clock between polling rounds.
        poll_every: how often due feeds and watched folders are looked at.
        seen_ttl: how long an emitted feed entry or file is remembered.
        duration: stop after this long (None: run until a signal).
        speed: replay speed (how many times faster than the documents' dates are apart).
    """

    window: float = _duration(300.0)
    allowed_lateness: float = _duration(3600.0)
    watermark_lag: float = _duration(3600.0)
    poll_every: float = _duration(30.0)
    seen_ttl: float = _duration(30 * 86400.0)
    duration: float | None = _duration(None)
    speed: float = 1.0
    # The landing-zone rule of watched folders (and of batch inputs with read.landing).
    settle_s: float = 10.0
    marker: str | None = None

    def __post_init__(self) -> None:
        for name in ("window", "poll_every", "seen_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("allowed_lateness", "watermark_lag"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        LandingRule(self.settle_s, self.marker)  # checks both


@dataclasses.dataclass(frozen=True)
class Config:
    # Each stage's section is that stage's options object itself: one set of defaults, checked
    # by its own __post_init__ (raised here as ConfigError naming the key).
    inputs: tuple[str, ...] = ("seeds",)
    read: ReadOptions = ReadOptions()
    extract: ExtractOptions = ExtractOptions()
    clean: CleanOptions = CleanOptions()
    normalize: NormalizeOptions = NormalizeOptions()
    fetch: FetchPolicy = FetchPolicy()
    feeds: FeedsConfig = FeedsConfig()
    discover: DiscoverConfig = DiscoverConfig()
    dedup: NearParams = NearParams()
    stories: StoryParams = StoryParams()
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
    durations = {f.name for f in dataclasses.fields(cls) if f.metadata.get("duration")}
    kwargs = {}
    for k, v in data.items():
        key = f"{where}.{k}".lstrip(".")
        if k in durations and v is not None:
            try:
                v = parse_duration(v)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from exc
        kwargs[k] = _coerce(v, hints[k], key)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section that validates itself
        message = str(exc)
        if not where:
            raise ConfigError(message) from exc
        # Options name the field first ("max_bytes must be ..."): name it with its section.
        first = message.split(" ", 1)[0].rstrip(":")
        dotted = f"{where}.{message}" if first in names else f"{where}: {message}"
        raise ConfigError(dotted) from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; ``path`` may be local or on an object store (``s3://``)."""
    try:
        data = yaml.safe_load(files.read_text(str(path)))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text: {exc}") from exc
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
    if cfg.extract.isolation == "subprocess" and cfg.runner.name == "dask":
        # dask's worker processes are daemonic, and those may not start child processes
        raise ConfigError("extract.isolation: subprocess is not possible on dask; use thread")
    feed_sources(cfg)
    if cfg.feeds.max_entries < 1:
        raise ConfigError("feeds.max_entries: must be at least 1")
    sitemap_limits(cfg)
    if not 0.0 <= cfg.errors.max_failure_ratio <= 1.0:
        raise ConfigError("errors.max_failure_ratio: must be between 0 and 1")
    return cfg


def landing_rule(cfg: Config) -> LandingRule:
    """The landing-zone rule of the ``stream:`` section (``settle_s``, ``marker``): watched
    folders, and batch inputs with ``read.landing``."""
    return LandingRule(cfg.stream.settle_s, cfg.stream.marker)


def fetch_policy(cfg: Config) -> FetchPolicy:
    """The fetch policy of the ``fetch:`` section (validated when the config was loaded)."""
    return cfg.fetch


def feed_sources(cfg: Config) -> list[FeedSource]:
    """The feeds of the ``feeds.sources`` section."""
    try:
        return [feed_source(f, f"feeds.sources[{i}]") for i, f in enumerate(cfg.feeds.sources)]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def sitemap_limits(cfg: Config) -> SitemapLimits:
    """How far the ``discover`` section's sitemaps are followed (bodies capped as fetches are)."""
    from news_ingest.transforms.sitemaps import SitemapLimits

    d = cfg.discover
    try:
        return SitemapLimits(cfg.fetch.max_bytes, d.max_depth, d.max_sitemaps, d.max_urls)
    except ValueError as exc:
        raise ConfigError(f"discover: {exc}") from exc


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
    """A path from the config or the command line: as given (relative to the current
    directory) when it exists; else, for ``configs/...`` and ``seeds``, the package's copy."""
    if os.path.isabs(path) or os.path.exists(path) or "://" in path:
        return path
    head, _, rest = Path(path).as_posix().partition("/")
    if head in PACKAGED:
        candidate = packaged(head) / rest if rest else packaged(head)
        if candidate.exists():
            return str(candidate)
    return path
