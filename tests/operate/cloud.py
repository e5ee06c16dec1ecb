"""The tests' handle on a stand-in `az`: the semantic stand-in (tests/operate/standin_az/az.py) behind a recorder
that logs every call's argv and exit code. Assertions about Azure's state go through `az` itself (`show`, `list`,
`--query -o tsv`), so an independent stand-in with the same documented semantics passes the same tests; only the
test controls (``fail_invokes``, ``fail_live_invokes``, ``fail_deployments``, ``job_outcomes``, ``usage``,
``ml_usage_missing``, ``scoring_faults``) and ``serve_scoring`` (the loopback server that answers the endpoints'
scoring URIs: tests/operate/standin_az/scoring.py) know the stand-in's state file.
Set AZ_STANDIN to another stand-in's executable to run the story against it (its controls: same state keys)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.operate.standin_az.scoring import ScoringServer

STANDIN = Path(__file__).resolve().parent / "standin_az" / "az.py"
RECORDER = '''#!{python}
import json, os, subprocess, sys
real = os.environ.get("AZ_STANDIN") or {standin!r}
argv = [sys.executable, real] if real.endswith(".py") else [real]
code = subprocess.run([*argv, *sys.argv[1:]]).returncode
with open(os.environ["AZ_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "rc": code}}) + "\\n")
sys.exit(code)
'''
SUB = "00000000-0000-0000-0000-000000000000"


class Cloud:
    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.state = folder / "az-state.json"
        self.log = folder / "az-calls.jsonl"
        script = self.bin / "az"
        script.write_text(RECORDER.format(python=sys.executable, standin=str(STANDIN)))
        script.chmod(0o755)

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", "AZ_STATE": str(self.state),
                "AZ_LOG": str(self.log)}  # fmt: skip

    # controls (stand-in specific) --------------------------------------------------------------------------
    def _control(self, key: str, value: Any) -> None:
        state = json.loads(self.state.read_text()) if self.state.is_file() else {}
        state.setdefault("control", {})[key] = value
        self.state.write_text(json.dumps(state))

    def fail_invokes(self, *deployments: str) -> None:
        self._control("failing_invokes", list(deployments))

    def fail_live_invokes(self, *deployments: str) -> None:
        """Scoring fails for requests the endpoint routes to these deployments (direct invokes still answer)."""
        self._control("failing_live", list(deployments))

    def eval_verdicts(self, *verdicts: str) -> None:
        """The verdicts the next evaluation jobs' reports carry, in submission order (then pass)."""
        self._control("eval_verdicts", list(verdicts))

    def serve_scoring(self) -> ScoringServer:
        """Start the loopback scoring server; endpoints created from now on get its URI. The caller stops it."""
        server = ScoringServer(self.state).start()
        self._control("scoring_base", server.base)
        return server

    def scoring_faults(self, deployment: str, delay_s: float = 0.0, fail_every: int = 0) -> None:
        """Scoring through the URI answers ``deployment`` after ``delay_s`` and fails every ``fail_every``-th
        request (its `az ml online-endpoint invoke` still answers: the smoke test passes)."""
        state = json.loads(self.state.read_text()) if self.state.is_file() else {}
        faults = state.setdefault("control", {}).setdefault("scoring_faults", {})
        faults[deployment] = {"delay_s": delay_s, "fail_every": fail_every}
        self.state.write_text(json.dumps(state))

    def fail_deployments(self, *deployments: str) -> None:
        self._control("failing_deployments", list(deployments))

    def job_outcomes(self, *statuses: str) -> None:
        self._control("job_outcomes", list(statuses))

    def ml_usage_missing(self) -> None:
        """`az ml compute list-usage` is not a command here (an `ml` extension without it)."""
        self._control("ml_usage_missing", True)

    def usage(self, family: str, current: int, limit: int) -> None:
        state = json.loads(self.state.read_text()) if self.state.is_file() else {}
        state.setdefault("control", {}).setdefault("usage", {})[family] = {"current": current, "limit": limit}
        self.state.write_text(json.dumps(state))

    # observation through az (stand-in independent) ----------------------------------------------------------
    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()]

    def forget_calls(self) -> None:
        self.log.unlink(missing_ok=True)

    def az(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Call az without recording (the test looking, not the tools acting)."""
        env = {**os.environ, **self.env(), "AZ_LOG": os.devnull}
        result = subprocess.run(["az", *argv], env=env, capture_output=True, text=True)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def show(self, *argv: str) -> dict[str, Any] | None:
        result = self.az(*argv, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def scope(self, workspace: str, rg: str) -> list[str]:
        return ["-g", rg, "-w", workspace, "--subscription", SUB]
