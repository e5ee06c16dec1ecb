"""The single entry point: ``python -m tools <command>`` imports only the module of the command it runs."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys
import traceback
from pathlib import Path

from tools.core.errors import CloudRefused, UserError
from tools.core.offline import apply_offline_env, go_online

# command name -> (module, one-line help). One module owns one command.
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("tools.render.engine", "render workspace values through templates into Azure ML specs"),
    "validate": ("tools.validate.cli", "validate specs offline: YAML hygiene, SDK loaders, JSON schemas, repo rules"),
    "schemas": ("tools.schemas.export", "export the CLI v2 JSON schemas from the pinned azure-ai-ml"),
    "contracts": ("tools.schemas.contracts", "record a registry component's contract from its published spec"),
    "rules": ("tools.schemas.rules_page", "write docs/rules.md from schemas/rules.yaml (--check compares)"),
    "data": ("tools.data.prepare", "prepare ultrachat_200k into checked chat JSONL"),
    "tiny-model": ("tools.demo.tiny_model", "build a tiny Phi-3-architecture model and tokenizer offline"),
    "score": ("tools.serve.score", "build scoring requests and invoke endpoints"),
    "evaluate": ("tools.evaluate.cli", "judge a candidate chat model against the champion on the gate set"),
    "serve": ("tools.serve.process", "serve an MLflow model locally on 127.0.0.1"),
    "plan": ("tools.operate.plan", "print the ordered az ml commands for a workspace"),
    "apply": ("tools.operate.apply", "run the plan step by step (dry run unless --execute)"),
    "promote": ("tools.operate.promote", "promote a model version from one workspace to another via a registry"),
    "diff": ("tools.operate.diff", "unified diff of rendered specs between revisions or workspaces"),
    "rollback": ("tools.operate.rollback", "move an endpoint's traffic back to its previous deployment"),
    "drift": ("tools.operate.drift", "compare what Azure holds with the rendered specs; exit 1 on drift"),
    "demo": ("tools.demo.story", "the whole chain locally on embedded defaults"),
    "rehearse": ("tools.demo.rehearse", "the From clone to production story offline, against a stand-in az"),
    "chat": ("tools.serve.chat", "chat with the fine-tuned model in a browser (Prompt flow's chat page)"),
    "catalog": ("tools.catalog.cli", "generate the model catalog from registry model metadata (az ml model show)"),
}

# Exit codes of every command: 0 success, 1 findings/errors in the input, 2 could not run (usage, unreadable
# input, a UserError, a missing dependency), 3 internal failure (a bug), 130 interrupted.
INTERNAL_ERROR = 3
SETUP_ERROR = 2

DESCRIPTION = (
    "The repo's tools, one job each: values -> specs -> findings -> plan, plus data, training and serving "
    "helpers. `python -m tools <command> --help` for each. Run them with the project's interpreter: "
    "`make venv`, then `.venv/bin/python -m tools ...` (or `. .venv/bin/activate` first)."
)

# Import name -> PyPI distribution, where the two differ (requirements/lock.txt pins the distributions).
DISTRIBUTIONS: dict[str, str] = {
    "yaml": "PyYAML",
    "azure": "azure-ai-ml",
    "azure.ai": "azure-ai-ml",
    "azure.ai.ml": "azure-ai-ml",
    "jinja2": "Jinja2",
    "sklearn": "scikit-learn",
    "google.protobuf": "protobuf",
    "PIL": "pillow",
    "dateutil": "python-dateutil",
}


def missing_distribution(error: BaseException) -> str | None:
    """The package a missing-dependency error names, or None when the error is something else (our own module
    missing from ``tools`` is a bug, not the user's setup)."""
    for candidate in (error, error.__cause__):
        if isinstance(candidate, importlib.metadata.PackageNotFoundError):
            return str(candidate.args[0]) if candidate.args else str(candidate)
        if isinstance(candidate, ModuleNotFoundError) and candidate.name:
            if candidate.name.split(".")[0] == "tools":
                return None
            parts = candidate.name.split(".")
            for cut in range(len(parts), 0, -1):
                if ".".join(parts[:cut]) in DISTRIBUTIONS:
                    return DISTRIBUTIONS[".".join(parts[:cut])]
            return parts[0]
    return None


def setup_hint(package: str, prefix: str | None = None) -> str:
    """One line: which package is missing and how to get it (exit 2: the setup, not a bug)."""
    prefix = sys.prefix if prefix is None else prefix
    venv = Path(__file__).resolve().parent.parent / ".venv"
    if Path(prefix).resolve() == venv.resolve():
        how = "the project's .venv is incomplete: `rm .venv/.installed && make venv` reinstalls it from requirements/"
    else:
        how = (f"this interpreter ({sys.executable}) is not the project's: run `make venv`, then "
               "`.venv/bin/python -m tools ...` (or `. .venv/bin/activate` first)")
    return f"error: the Python package {package} is not installed; {how}"


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _run_command(name: str, rest: list[str]) -> int:
    from tools.core.repo import select  # noqa: PLC0415 - imports PyYAML: a missing package is the exit-2 setup line

    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m tools {name}", description=(module.__doc__ or help_text).strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    if getattr(args, "online", False):  # --online on a command that fetches (tools/core/offline.py)
        go_online()
    select(getattr(args, "root", None))  # a command's --root DIR: every fact is read from DIR
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    apply_offline_env()  # every command runs with the offline switches (tools/core/offline.py is their one source)
    if not argv or argv[0] not in COMMANDS:
        parser = _top_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv[:1])  # --help prints the list; an unknown command exits 2 with argparse's line
        return 2
    try:
        return _run_command(argv[0], argv[1:])
    except (UserError, CloudRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, not the user's input: one line and exit 3 (TOOLS_DEBUG=1 shows the trace)
        package = missing_distribution(error)
        if package is not None:  # the user's setup: which package, and how to get it
            print(setup_hint(package), file=sys.stderr)
            return SETUP_ERROR
        if os.environ.get("TOOLS_DEBUG"):
            raise
        where = traceback.extract_tb(error.__traceback__)[-1]
        print(f"internal error: {type(error).__name__}: {error} (at {Path(where.filename).name}:{where.lineno}; "
              "rerun with TOOLS_DEBUG=1 for the trace)", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
