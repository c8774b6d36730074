"""Entry point of the DirectRunner's worker processes (``--workers N``), see
``runners.worker_processes``: Beam's SDK harness, tied to the launcher and quiet."""

from __future__ import annotations

import logging
import os
import runpy


def main() -> None:
    # Before anything imports Beam: its import logs ("apitools not found") at WARNING.
    if os.environ.get("NEWS_INGEST_QUIET_WORKERS") == "1":
        handler = logging.StreamHandler()
        handler.setLevel(logging.ERROR)
        logging.basicConfig(
            handlers=[handler], format="%(levelname)s %(name)s: %(message)s", force=True
        )
    from news_ingest.transforms.children import tie_to_parent

    # The launcher's shell exec'd this process (runners.worker_processes): the parent is the
    # launcher, unless it died before the tie was made (then this worker exits at once).
    tie_to_parent(int(os.environ.get("NEWS_INGEST_LAUNCHER_PID") or os.getppid()))

    runpy.run_module("apache_beam.runners.worker.sdk_worker_main", run_name="__main__")


if __name__ == "__main__":
    main()
