"""The Dataflow Flex Template entry point: template parameters -> ``news-ingest run`` flags.

Dataflow's Python template launcher runs ``python $FLEX_TEMPLATE_PYTHON_PY_FILE`` (the image's
``docker/flex-template/main.py``, which calls ``main`` here) with every template parameter as
``--name=value`` and its own Dataflow options (project, region, staging and temp locations,
the job file to write) after them. The template's parameters are the ``run`` flags, named by
their argparse ``dest`` (``run_id`` for ``--run-id``: template parameter names are
identifiers); a repeatable flag takes a comma-separated list. Everything else is passed on to
Beam, as ``news-ingest run`` does. The runner is always Dataflow.
"""

from __future__ import annotations

import argparse
import sys

# Run flags that the template fixes instead of exposing as parameters.
FIXED = {"runner": "dataflow"}
# Run flags of the launching process that a template job has no use for: a dry run lists and
# exits (a template launch must start a job), and a template job writes its summary as the
# output's manifest in its own commit step, not on the launcher.
LAUNCHER_ONLY = ("summary_json", "dry_run")


def run_actions() -> dict[str, argparse.Action]:
    """The ``news-ingest run`` flags by their ``dest`` (help excluded)."""
    from news_ingest.pipeline import cli

    top = cli.parser()
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    run = sub.choices["run"]
    return {a.dest: a for a in run._actions if a.option_strings and a.dest != "help"}


def template_parameters() -> list[str]:
    """The parameter names the template metadata must declare."""
    return [d for d in run_actions() if d not in FIXED and d not in LAUNCHER_ONLY]


def run_argv(argv: list[str]) -> list[str]:
    """``news-ingest`` arguments from the launcher's: template parameters become run flags, a
    runner the launcher names is dropped (the template's runner is fixed), the rest is Beam's.
    """
    actions = run_actions()
    out = ["run"]
    for name, value in FIXED.items():
        out += [actions[name].option_strings[0], value]
    beam: list[str] = []
    for arg in argv:
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        action = actions.get(name)
        if action is not None and eq and name not in FIXED:
            flag = action.option_strings[0]
            values = value.split(",") if isinstance(action, argparse._AppendAction) else [value]
            for item in values:
                if item.strip():
                    out += [flag, item.strip()]
        elif name in FIXED or name == "runner":
            continue
        else:
            beam.append(arg)
    return out + beam


def main(argv: list[str] | None = None) -> int:
    from news_ingest.pipeline import cli

    return cli.main(run_argv(list(sys.argv[1:] if argv is None else argv)))
