"""news-ingest: the application (CLI, config, graph assembly, runners)."""

from importlib import metadata

try:
    __version__ = metadata.version("news-ingest")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
