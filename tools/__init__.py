"""Small tools behind one CLI: ``python -m tools <command> --help``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
"""
