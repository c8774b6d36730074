"""A generated input corpus for end-to-end tests: HTML and text articles, exact copies under
other names (duplicates), an empty page and binary junk (dead letters)."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = [
    "council",
    "harbour",
    "minister",
    "budget",
    "railway",
    "election",
    "storm",
    "vaccine",
    "court",
    "river",
    "factory",
    "strike",
    "museum",
    "festival",
    "treaty",
    "drought",
    "market",
    "bridge",
    "school",
    "hospital",
]


def _paragraph(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_corpus(root: Path, n: int = 48, seed: int = 7) -> int:
    """Write a varied corpus under ``root``; returns the number of files."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    count = 0
    for i in range(n):
        paras = [_paragraph(rng, rng.randint(25, 60)) for _ in range(rng.randint(3, 7))]
        if i % 3:
            body = "".join(f"<p>{p}</p>" for p in paras)
            page = (
                f"<html><head><title>Story {i} - Example News</title></head><body>"
                f"<nav><a href='/'>Home</a></nav><article><h1>Story {i}</h1>{body}</article>"
                f"<footer>Copyright Example News</footer></body></html>"
            )
            (root / f"page_{i:03d}.html").write_text(page, encoding="utf-8")
        else:
            (root / f"note_{i:03d}.txt").write_text("\n\n".join(paras), encoding="utf-8")
        count += 1
    # Exact copies under other names (duplicates), an empty page and junk (dead letters).
    for i in (1, 2, 3, 4):
        src = next(root.glob(f"*_{i:03d}.*"))
        (root / f"copy_{i:03d}{src.suffix}").write_bytes(src.read_bytes())
        count += 1
    (root / "empty.html").write_text("<html><body></body></html>", encoding="utf-8")
    (root / "junk.txt").write_bytes(bytes(rng.randrange(0, 32) for _ in range(4000)))
    return count + 2
