"""The single entry point: dispatches ``python -m tools <command>`` to one module per command."""

from __future__ import annotations

import argparse
import importlib
import sys

from tools.errors import UserError

# command name -> (module, one-line help). One module owns one job.
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("tools.render", "render workspace values through templates into Azure ML specs"),
    "validate": ("tools.validate", "validate specs offline: YAML hygiene, SDK loaders, JSON schemas, repo rules"),
    "schemas": ("tools.schemas", "export the CLI v2 JSON schemas from the pinned azure-ai-ml"),
    "data": ("tools.data", "prepare ultrachat_200k into checked chat JSONL"),
    "tiny-model": ("tools.tiny_model", "build a tiny Phi-3-architecture model and tokenizer offline"),
    "score": ("tools.score", "build scoring requests and invoke endpoints"),
    "serve": ("tools.serve", "serve an MLflow model locally on 127.0.0.1"),
    "plan": ("tools.plan", "print the ordered az ml commands for a workspace"),
    "apply": ("tools.apply", "run the plan step by step (dry run unless --execute)"),
    "promote": ("tools.promote", "promote a model version from one workspace to another via a registry"),
    "diff": ("tools.diff", "unified diff of rendered specs between revisions or workspaces"),
    "demo": ("tools.demo", "the whole chain locally on embedded defaults"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools",
        description="The repo's tools, one job each: values -> specs -> findings -> plan, plus data, training and "
        "serving helpers. `python -m tools <command> --help` for each.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    available: dict[str, object] = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        command_parser = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(command_parser)
        available[name] = module
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(available[args.command].run(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
