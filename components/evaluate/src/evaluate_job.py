"""Entry point of the ``evaluate_chat_model`` command component (components/evaluate/spec.yml).

The code is ``tools/evaluate`` of this repo, shipped into the job's snapshot by the component's
``additional_includes`` as the top-level package ``evaluate`` (with ``tools/serve/scoring_client.py`` beside it),
so the job runs exactly the code ``python -m tools evaluate`` runs locally. From a checkout, without the snapshot,
the repo's folders are put on the path instead. Exit codes: ``evaluate.run.main``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _import_main():  # noqa: ANN202 - evaluate.run.main
    try:
        from evaluate.run import main  # the job snapshot: additional_includes put evaluate/ beside this file
    except ImportError:
        tools = Path(__file__).resolve().parents[3] / "tools"
        sys.path[:0] = [str(tools), str(tools / "serve")]
        from evaluate.run import main
    return main


if __name__ == "__main__":
    sys.exit(_import_main()())
