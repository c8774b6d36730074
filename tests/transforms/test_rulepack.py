"""Rule packs: loading, validation errors naming the rule, anchoring of scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.transforms.rulepack import (
    SCOPES,
    Rule,
    RulePack,
    RulePackError,
    compile_rule,
    load_pack,
    load_packs,
    pack_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]


def _pack(*rules: dict) -> dict:
    return {"pack": "t", "rules": list(rules)}


def test_shipped_packs_load():
    default = load_pack(str(ROOT / "configs" / "boilerplate.yaml"))
    assert default.name == "default"
    assert {"date_header", "mandatory_credit", "comment_form"} <= {r.name for r in default.rules}
    sources = load_packs(str(ROOT / "configs" / "packs"))
    assert {p.name for p in sources} == {"menafn", "ukrinform"}
    assert all(p.hosts and p.publishers for p in sources)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "bad_re", "regex": "(unclosed", "scope": "line"}, "'bad_re': bad regex"),
        ({"name": "bad_scope", "literal": "x", "scope": "footer"}, "'bad_scope': unknown scope"),
        (
            {"name": "bad_action", "literal": "x", "scope": "line", "action": "zap"},
            "unknown action",
        ),
        ({"name": "no_field", "regex": "x", "scope": "line", "action": "move"}, "'no_field'"),
        (
            {"name": "bad_field", "regex": "x", "scope": "line", "action": "move", "field": "body"},
            "unknown field 'body'",
        ),
        ({"name": "both", "literal": "x", "regex": "x", "scope": "line"}, "exactly one of"),
        ({"name": "empty_ok", "regex": "x*", "scope": "anywhere"}, "matches the empty string"),
        ({"name": "typo_key", "literal": "x", "scope": "line", "acton": "drop"}, "acton"),
        ({"name": "no_scope", "literal": "x"}, "'no_scope': 'scope' is required"),
        ({"name": "Bad Name", "literal": "x", "scope": "line"}, "'name' must be"),
    ],
)
def test_bad_rules_fail_naming_the_rule(rule, message):
    with pytest.raises(RulePackError, match="rule pack 't'") as info:
        pack_from_dict(_pack(rule), "t")
    assert message in str(info.value)


def test_duplicate_rule_names_fail():
    rule = {"name": "twice", "literal": "x", "scope": "line"}
    with pytest.raises(RulePackError, match="duplicate rule name.*twice"):
        pack_from_dict(_pack(rule, rule), "t")


def test_load_pack_errors_name_the_file_or_rule(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text("rules:\n  - {name: broken, regex: '[a-', scope: line}\n", encoding="utf-8")
    with pytest.raises(RulePackError, match="rule pack 'site', rule 'broken': bad regex"):
        load_pack(str(bad))
    with pytest.raises(RulePackError, match="cannot read rule pack"):
        load_pack(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(RulePackError, match="not valid YAML"):
        load_pack(str(tmp_path / "bad.yaml"))


def test_source_pack_needs_a_match(tmp_path):
    (tmp_path / "any.yaml").write_text(
        "rules:\n  - {name: r, literal: x, scope: line}\n", encoding="utf-8"
    )
    with pytest.raises(RulePackError, match="needs 'match'"):
        load_packs(str(tmp_path))
    with pytest.raises(RulePackError, match="does not exist"):
        load_packs(str(tmp_path / "nope"))
    assert load_packs("") == ()


def test_line_scope_is_anchored_to_whole_lines():
    rule = compile_rule(Rule("ad", "Advertisement", "line", literal=True, ignore_case=True))
    assert rule.regex.fullmatch("ADVERTISEMENT")
    assert not rule.regex.fullmatch("The shop ran an advertisement in the paper.")


def test_literal_whitespace_matches_any_whitespace():
    rule = compile_rule(Rule("r", "Please  enter your\tcomment!", "line", literal=True))
    assert rule.regex.fullmatch("Please enter your comment!")


def test_pack_selection_by_host_and_publisher():
    pack = RulePack("p", (), hosts=("example.com",), publishers=("MENAFN",))
    assert pack.selects("www.example.com", ())
    assert pack.selects("news.example.com", ())
    assert not pack.selects("example.com.evil.org", ())
    assert pack.selects(None, ("menafn",))
    assert not pack.selects(None, (None, "Reuters"))


@settings(max_examples=60, deadline=None)
@given(
    name=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    scope=st.text(min_size=1, max_size=12).filter(lambda s: s not in SCOPES),
    position=st.integers(min_value=0, max_value=3),
)
def test_any_bad_rule_fails_naming_that_rule(name, scope, position):
    good = [{"name": f"good-{i}", "literal": f"x{i}", "scope": "line"} for i in range(3)]
    rules = good[:position] + [{"name": name, "literal": "x", "scope": scope}] + good[position:]
    with pytest.raises(RulePackError) as info:
        pack_from_dict({"pack": "p", "rules": rules}, "p")
    assert f"rule {name!r}: unknown scope" in str(info.value)
