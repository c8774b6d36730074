"""news-ingest: the application (CLI, config, graph assembly, runners)."""

import logging
from importlib import metadata


def _drop_import_noise(record: logging.LogRecord) -> bool:
    # Beam logs this on import (through the root logger) when the optional GCP client libraries
    # are absent; it is noise for every runner but Dataflow with BigQuery I/O, which we don't use.
    return not str(record.msg).startswith("apitools not found")


logging.getLogger().addFilter(_drop_import_noise)

try:
    __version__ = metadata.version("news-ingest")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
