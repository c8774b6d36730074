"""robots.txt rules as RFC 9309 reads them (protego): wildcards ``*``, the end anchor ``$``,
the longest match wins (``Allow`` on a tie), groups by product token, ``Crawl-delay``.

What a fetch of robots.txt itself means (RFC 9309, section 2.3.1): a 2xx body holds the
rules; a 4xx (no robots.txt) allows everything; a 5xx, or a robots.txt that cannot be reached
at all, disallows everything for now.
"""

from __future__ import annotations

import dataclasses

from protego import Protego

# RFC 9309 asks crawlers to read at least 500 KiB of a robots.txt; more is not rules.
MAX_ROBOTS_BYTES = 512 * 1024


@dataclasses.dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt allows; ``unavailable`` names why it could not be read
    (then everything is disallowed), ``parser`` is None when everything is allowed."""

    parser: Protego | None = None
    unavailable: str | None = None
    message: str | None = None

    def allows(self, url: str, agent: str) -> bool:
        if self.unavailable is not None:
            return False
        return self.parser is None or bool(self.parser.can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return float(delay) if delay else None


ALLOW_ALL = RobotsRules()


def parse_robots(content: bytes) -> RobotsRules:
    """The rules of a robots.txt body (UTF-8, RFC 9309; undecodable bytes are replaced)."""
    text = content[:MAX_ROBOTS_BYTES].decode("utf-8", "replace").lstrip("\ufeff")
    return RobotsRules(parser=Protego.parse(text))


def unavailable(reason: str, message: str | None = None) -> RobotsRules:
    """The rules of a robots.txt that could not be read (``reason``): disallow all."""
    return RobotsRules(unavailable=reason, message=message)
