"""Beam transforms of news-ingest and the pure functions they wrap. Never imports ``pipeline``."""
