"""Turn `python -m tools validate --format json` reports into GitHub workflow commands, one per finding:
`::error file=F,line=L,title=validate::key.path: message` (warnings as ::warning). Exit 1 when any report has
errors. Usage: python .github/scripts/annotations.py reports/validate-*.json"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def escape(text: str, *, prop: bool = False) -> str:
    """GitHub's workflow-command escaping (properties also escape ':' and ',')."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def annotations(report: dict) -> list[str]:
    lines = []
    for finding in report.get("findings", []):
        level = "error" if finding.get("severity") == "error" else "warning"
        props = [f"file={escape(str(finding['path']), prop=True)}"]
        if finding.get("line"):
            props.append(f"line={int(finding['line'])}")
        props.append(f"title={escape('validate layer ' + str(finding.get('layer', '')), prop=True)}")
        key = f"{finding['key_path']}: " if finding.get("key_path") else ""
        lines.append(f"::{level} {','.join(props)}::{escape(key + str(finding['message']))}")
    return lines


def main(paths: list[str]) -> int:
    errors = 0
    for path in paths:
        report = json.loads(Path(path).read_text())
        errors += int(report.get("errors", 0))
        print("\n".join(annotations(report)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
