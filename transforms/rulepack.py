"""Cleaning rule packs: YAML files of anchored boilerplate rules, validated when loaded.

A pack is plain, picklable data (``RulePack`` of ``Rule``); ``compile_pack`` turns it into
regular expressions. Loading validates every rule by compiling it, so a bad regex, an unknown
scope or action, or a move without a target field fails at start with the rule's name.

A rule has a ``name``, exactly one of ``literal`` or ``regex``, a ``scope`` and an ``action``:

* scope ``line``: the pattern must match a whole line (after trimming). This is how a rule for
  "Advertisement" drops the ad label but never touches a sentence that mentions an advertisement.
* scope ``leading`` / ``trailing``: the pattern must match at the very start / end of the text
  (it may span lines or end mid-line); these rules are applied repeatedly, so a header or footer
  made of several matching pieces is peeled off piece by piece.
* scope ``anywhere``: every match is removed, wherever it is (for inline chrome tokens).

Actions: ``drop`` removes the match; ``move`` removes it and stores values into article
fields; ``extract`` stores values and leaves the text alone (attributions in a sentence).
Values come from named groups called like a field (``(?P<published_at>...)``), or from the whole
match (or a group ``value``) when the rule names a ``field``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from news_ingest.transforms import files

SCOPES = ("line", "leading", "trailing", "anywhere")
ACTIONS = ("drop", "move", "extract")
# Article fields a rule may fill; ``credits`` collects every value, the others keep the first.
FIELDS = ("published_at", "dateline", "publisher", "distributor", "credits", "title", "section")
LIST_FIELDS = ("credits",)
_RULE_KEYS = {"name", "literal", "regex", "scope", "action", "field", "ignore_case", "note"}
_PACK_KEYS = {"pack", "description", "match", "aliases", "rules"}
_MATCH_KEYS = {"hosts", "publishers"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class RulePackError(ValueError):
    """A rule pack cannot be used; the message names the pack and the rule."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """One cleaning rule, as written in a pack (the regex source, not yet compiled)."""

    name: str
    pattern: str
    scope: str
    action: str = "drop"
    field: str | None = None
    ignore_case: bool = False
    literal: bool = False


@dataclasses.dataclass(frozen=True)
class RulePack:
    """A named list of rules, and which sources it is for (empty: every source)."""

    name: str
    rules: tuple[Rule, ...]
    hosts: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    # Canonical spellings of outlet names, keyed by their casefolded form.
    aliases: tuple[tuple[str, str], ...] = ()

    def selects(self, host: str | None, names: Iterable[str | None]) -> bool:
        """True when this source pack applies to an article from ``host`` attributed to ``names``."""
        if host:
            host = host.lower().removeprefix("www.")
            if any(host == h or host.endswith("." + h) for h in self.hosts):
                return True
        wanted = {p.casefold() for p in self.publishers}
        return any(n and n.casefold() in wanted for n in names)


@dataclasses.dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    regex: re.Pattern[str]
    # (group name, field) pairs the rule fills.
    targets: tuple[tuple[str | int, str], ...]


def _literal_regex(literal: str) -> str:
    # Any run of whitespace in a literal matches any run of whitespace in the text.
    return r"\s+".join(re.escape(part) for part in literal.split())


def _targets(rule: Rule, regex: re.Pattern[str]) -> tuple[tuple[str | int, str], ...]:
    groups = regex.groupindex
    found: list[tuple[str | int, str]] = [(g, g) for g in groups if g in FIELDS]
    if rule.field is not None:
        found.append(("value" if "value" in groups else 0, rule.field))
    return tuple(found)


def compile_rule(rule: Rule, pack: str = "?") -> CompiledRule:
    """Compile one rule; raises ``RulePackError`` naming the pack and the rule."""
    where = f"rule pack {pack!r}, rule {rule.name!r}"
    if rule.scope not in SCOPES:
        raise RulePackError(f"{where}: unknown scope {rule.scope!r}; one of {SCOPES}")
    if rule.action not in ACTIONS:
        raise RulePackError(f"{where}: unknown action {rule.action!r}; one of {ACTIONS}")
    if rule.field is not None and rule.field not in FIELDS:
        raise RulePackError(f"{where}: unknown field {rule.field!r}; one of {FIELDS}")
    source = _literal_regex(rule.pattern) if rule.literal else rule.pattern
    if not source.strip():
        raise RulePackError(f"{where}: empty pattern")
    flags = re.MULTILINE | (re.IGNORECASE if rule.ignore_case else 0)
    try:
        regex = re.compile(_anchor(source, rule.scope), flags)
    except re.error as exc:
        raise RulePackError(f"{where}: bad regex: {exc}") from exc
    if regex.match(""):
        raise RulePackError(f"{where}: the pattern matches the empty string")
    targets = _targets(rule, regex)
    if rule.action in ("move", "extract") and not targets:
        raise RulePackError(
            f"{where}: action {rule.action!r} needs a 'field' or a named group called like a "
            f"field ({', '.join(FIELDS)})"
        )
    if rule.action == "drop" and targets:
        raise RulePackError(f"{where}: action 'drop' stores no field; use 'move'")
    return CompiledRule(rule, regex, targets)


def _anchor(source: str, scope: str) -> str:
    if scope == "line":
        return rf"(?:{source})"  # used with fullmatch on one trimmed line
    if scope == "leading":
        return rf"\A\s*(?:{source})[ \t]*"
    if scope == "trailing":
        return rf"(?:{source})\s*\Z"
    return source


def compile_pack(pack: RulePack) -> tuple[CompiledRule, ...]:
    """Compile every rule of a pack (raises ``RulePackError`` on the first bad rule)."""
    return tuple(compile_rule(rule, pack.name) for rule in pack.rules)


def _rule_from(data: Any, pack: str, index: int) -> Rule:
    if not isinstance(data, Mapping):
        raise RulePackError(f"rule pack {pack!r}, rule #{index}: expected a mapping")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RulePackError(
            f"rule pack {pack!r}, rule #{index}: 'name' must be lowercase letters, digits, _.-"
        )
    where = f"rule pack {pack!r}, rule {name!r}"
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        raise RulePackError(f"{where}: unknown key(s) {', '.join(unknown)}")
    has_literal, has_regex = "literal" in data, "regex" in data
    if has_literal == has_regex:
        raise RulePackError(f"{where}: give exactly one of 'literal' or 'regex'")
    pattern = data["literal"] if has_literal else data["regex"]
    if not isinstance(pattern, str):
        raise RulePackError(f"{where}: the pattern must be a string")
    ignore_case = data.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise RulePackError(f"{where}: 'ignore_case' must be true or false")
    if "scope" not in data:
        raise RulePackError(f"{where}: 'scope' is required; one of {SCOPES}")
    return Rule(
        name=name,
        pattern=pattern,
        scope=str(data["scope"]),
        action=str(data.get("action", "drop")),
        field=None if data.get("field") is None else str(data["field"]),
        ignore_case=ignore_case,
        literal=has_literal,
    )


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulePackError(f"{where}: expected a list of strings")
    return tuple(value)


def pack_from_dict(data: Any, default_name: str) -> RulePack:
    """Build and validate a pack from parsed YAML."""
    if not isinstance(data, Mapping):
        raise RulePackError(f"rule pack {default_name!r}: expected a mapping at the top level")
    name = str(data.get("pack") or default_name)
    unknown = sorted(set(data) - _PACK_KEYS)
    if unknown:
        raise RulePackError(f"rule pack {name!r}: unknown key(s) {', '.join(unknown)}")
    rules_data = data.get("rules") or []
    if not isinstance(rules_data, list):
        raise RulePackError(f"rule pack {name!r}: 'rules' must be a list")
    rules = tuple(_rule_from(r, name, i) for i, r in enumerate(rules_data))
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RulePackError(f"rule pack {name!r}: duplicate rule name(s) {', '.join(dupes)}")
    match = data.get("match") or {}
    if not isinstance(match, Mapping) or set(match) - _MATCH_KEYS:
        raise RulePackError(f"rule pack {name!r}: 'match' takes only {sorted(_MATCH_KEYS)}")
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, Mapping):
        raise RulePackError(f"rule pack {name!r}: 'aliases' must be a mapping")
    pack = RulePack(
        name=name,
        rules=rules,
        hosts=tuple(h.lower() for h in _str_list(match.get("hosts"), f"rule pack {name!r}: hosts")),
        publishers=_str_list(match.get("publishers"), f"rule pack {name!r}: publishers"),
        aliases=tuple(sorted((str(k).casefold(), str(v)) for k, v in aliases.items())),
    )
    compile_pack(pack)
    return pack


def load_pack(path: str) -> RulePack:
    """Read, validate and return the pack in a YAML file (local or on an object store)."""
    default_name = os.path.splitext(files.basename(path))[0]
    try:
        data = yaml.safe_load(files.read_text(path))
    except OSError as exc:
        raise RulePackError(f"cannot read rule pack {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RulePackError(f"rule pack {path} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RulePackError(f"rule pack {path} is not valid YAML: {exc}") from exc
    return pack_from_dict(data, default_name)


def load_packs(directory: str | None) -> tuple[RulePack, ...]:
    """Every ``*.yaml`` pack in ``directory`` (sorted by file name); none when no directory is
    given. A directory that is given but missing is an error, not an empty set of packs."""
    if not directory:
        return ()
    if files.is_remote(directory):
        # A prefix: the packs directly under it (an object store has no empty folder).
        found = [
            p for p in files.files_under(directory) if files.parent(p) == directory.rstrip("/")
        ]
        if not found:
            raise RulePackError(f"rule pack directory {directory} does not exist")
        paths = [p for p in found if p.endswith((".yaml", ".yml"))]
    else:
        if not os.path.isdir(directory):
            raise RulePackError(f"rule pack directory {directory} does not exist")
        names = sorted(n for n in os.listdir(directory) if n.endswith((".yaml", ".yml")))
        paths = [os.path.join(directory, n) for n in names]
    packs = tuple(load_pack(p) for p in paths)
    for pack in packs:
        if not pack.hosts and not pack.publishers:
            raise RulePackError(
                f"rule pack {pack.name!r}: a source pack needs 'match' hosts or publishers"
            )
    return packs
