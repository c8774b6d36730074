"""Beam transforms of news-ingest and the pure functions they wrap. Never imports ``pipeline``."""

from news_ingest.transforms import beam_patches

# Before any of our DoFns is built or unpickled (in the launcher and in every worker process).
beam_patches.install()
