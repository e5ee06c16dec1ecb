"""``python -m tools rehearse`` (``make rehearse``): the README's "From clone to production" story, step by step,
offline, against a STAND-IN for Azure: the stand-in ``az`` the tests use (tests/operate/standin_az/az.py, which keeps
Azure ML's documented semantics in a JSON state file). Nothing reaches Azure, and nothing here proves that Azure
accepts a spec: it rehearses what each command does and prints.

Each step prints its title, then each command as ``$ ...`` followed by what that command printed. The commands run
in a scratch copy of the repo (a git repository of its own, so the promotion commit and its revert are real) with
``--root SCRATCH``; the stand-in ``az`` is first on PATH for them only. The scratch folder is kept and its path
printed (``--dir`` chooses it). Exit 0 when every step did what the story says, 1 at the first that did not.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.core.errors import UserError
from tools.core.repo import REPO_ROOT
from tools.render.values import load_values

STANDIN = REPO_ROOT / "tests" / "operate" / "standin_az" / "az.py"
# what stays behind when the checkout is copied (code, tests, build output, local state); the rest is what the
# tools read from a --root
LEFT_BEHIND = frozenset({".git", ".venv", ".lockvenv", "tests", "benchmarks", "docs", "build", ".runs",
                         ".pytest_cache", ".ruff_cache", "node_modules", "__pycache__", "prepared"})  # fmt: skip
GIT_IDENTITY = ("-c", "user.name=rehearsal", "-c", "user.email=rehearsal@example.invalid")
OUTPUT_LINES = 40  # the most lines shown per command (the rest is in the scratch folder's log)


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]  # "tools ..." runs python -m tools; "git ..." runs git in the scratch repo
    expect: int = 0


def tools(*argv: str, expect: int = 0) -> Command:
    return Command(("tools", *argv), expect)


def git(*argv: str) -> Command:
    return Command(("git", *argv))


def story(layers: str, model: str, version: int) -> list[tuple[str, list[Command]]]:
    """The README's steps as commands (its section "From clone to production", which tests/newcomer holds to this
    list), then what comes after: a second version, a revert, drift and teardown. ``model`` is the values'
    registered model, whose first training run registers ``version``. Beyond the README's commands the rehearsal
    adds only ``--layers`` (speed) and ``git commit --allow-empty -q`` (the scratch prod may already name it)."""
    fast = ("--layers", layers)
    dev, prod = ("--workspace", "dev"), ("--workspace", "prod")
    return [
        ("1. Point it at Azure: here the stand-in, so the workspaces keep their example ids, `az login` is not "
         "needed, and `make check` is the checkout's own (every apply below validates the scratch copy first)",
         []),
        ("2. Bootstrap: review dev's plan, apply it (registry, dev workspace, network, identity, roles), then prod",
         [tools("plan", *dev, "--stage", "bootstrap", *fast),
          tools("apply", *dev, "--stage", "bootstrap", "--execute", *fast),
          tools("apply", *prod, "--stage", "bootstrap", "--execute", *fast)]),
        ("3. First training run, judged: compute, environments, components, data, submit, stream, register, "
         "evaluate against the champion and tag the version with its verdict",
         [tools("apply", *dev, "--stage", "train,register,evaluate", "--execute", *fast)]),
        ("4. Deploy and smoke-test dev; running it again changes nothing",
         [tools("apply", *dev, "--stage", "deploy,smoke", "--execute", *fast),
          tools("apply", *dev, "--stage", "deploy,smoke", "--execute", *fast)]),
        (f"5. Promote v{version} (its verdict passed) to prod through the registry, commit, deploy prod",
         [tools("promote", "--model", f"{model}:{version}", "--from", "dev", "--to", "prod", "--execute", *fast),
          git("commit", "-am", f"Promote {model}:{version} to prod", "--allow-empty", "-q"),
          tools("apply", *prod, "--stage", "deploy,smoke", "--execute", *fast)]),
        ("6. A second training run (the next free model version), judged, then promote "
         f"v{version + 1}: a blue/green rollout",
         [tools("apply", *dev, "--stage", "train,register,evaluate", "--execute", "--next-model-version", *fast),
          git("commit", "-am", "Train the next model version", "--allow-empty", "-q"),
          tools("promote", "--model", f"{model}:{version + 1}", "--from", "dev", "--to", "prod", "--execute", *fast),
          git("commit", "-am", f"Promote {model}:{version + 1} to prod", "--allow-empty", "-q"),
          tools("apply", *prod, "--stage", "deploy,smoke", "--execute", *fast)]),
        ("7. Roll back the GitOps way: revert the promotion commit, apply prod",
         [git("revert", "--no-edit", "HEAD"),
          tools("apply", *prod, "--stage", "deploy,smoke", "--execute", *fast)]),
        ("8. Check prod for drift (the cluster and data assets were never created in prod: exit 1 names them)",
         [tools("drift", *prod, *fast, expect=1)]),
        ("9. Tear dev down (endpoints bill while they exist)",
         [tools("apply", *dev, "--stage", "teardown", "--execute", "--yes", *fast)]),
    ]  # fmt: skip


def make_scratch(folder: Path) -> Path:
    """A copy of what the tools read, as a git repository with one commit, and the stand-in `az` in bin/."""
    repo = folder / "repo"
    if repo.exists():
        raise UserError(f"--dir {folder}: already holds a rehearsal (repo/); pick an empty folder")
    repo.mkdir(parents=True)
    for source in sorted(REPO_ROOT.iterdir()):
        if source.name in LEFT_BEHIND or source.name.endswith(".egg-info"):
            continue
        if source.is_dir():
            shutil.copytree(source, repo / source.name, ignore=shutil.ignore_patterns(*LEFT_BEHIND), symlinks=True)
        elif source.is_file():
            shutil.copy2(source, repo / source.name)
    for argv in (("init", "-q", "-b", "main"), ("add", "."), ("commit", "-q", "-m", "clone")):
        subprocess.run(["git", "-C", str(repo), *GIT_IDENTITY, *argv], check=True, capture_output=True)
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(f"#!/bin/sh\n# the stand-in az (a rehearsal: never Azure)\nexec {shlex.quote(sys.executable)} "
                  f"{shlex.quote(str(STANDIN))} \"$@\"\n")  # fmt: skip
    az.chmod(0o755)
    return repo


def command_line(command: Command, repo: Path) -> tuple[list[str], str]:
    """(argv to run, the line a user would type)."""
    kind, *rest = command.argv
    if kind == "git":
        return ["git", "-C", str(repo), *GIT_IDENTITY, *rest], shlex.join(["git", *rest])
    return [sys.executable, "-m", "tools", *rest, "--root", str(repo)], shlex.join(["python", "-m", "tools", *rest])


def show(text: str, log_hint: str) -> None:
    lines = text.rstrip("\n").splitlines()
    for line in lines[:OUTPUT_LINES]:
        print(f"    {line}")
    if len(lines) > OUTPUT_LINES:
        print(f"    ... {len(lines) - OUTPUT_LINES} more lines in {log_hint}")


def start_scoring(state: Path):  # noqa: ANN201 - the stand-in's ScoringServer, loaded from its file
    """The stand-in's data plane (tests/operate/standin_az/scoring.py): a loopback server that answers its endpoints'
    scoring URIs (a prod rollout's online check calls them); the endpoints created from now on get its URI."""
    spec = importlib.util.spec_from_file_location("standin_scoring", STANDIN.parent / "scoring.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.ScoringServer(state).start()
    state.write_text(json.dumps({"control": {"scoring_base": server.base}}))
    return server


@contextlib.contextmanager
def scoring_stopped(server) -> Iterator[None]:  # noqa: ANN001
    try:
        yield
    finally:
        server.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--layers", default="ACD",
                        help="validation layers the commands use (default ACD: B, the SDK loaders, adds seconds "
                             "per command; ABCD for the full check)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    folder = args.dir or Path(tempfile.mkdtemp(prefix="rehearse-"))
    folder.mkdir(parents=True, exist_ok=True)
    repo = make_scratch(folder.resolve())
    log_path = folder / "rehearse.log"
    env = {**os.environ, "PATH": f"{folder.resolve() / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "AZ_STATE": str(folder.resolve() / "az-state.json")}  # fmt: skip
    print("REHEARSAL against a stand-in for Azure (tests/operate/standin_az/az.py): nothing here reaches Azure.")
    print(f"scratch repo {repo}, stand-in state {env['AZ_STATE']}, full output {log_path}\n")

    registered = load_values("dev", repo).data["registered_model"]
    start = time.monotonic()
    scoring = start_scoring(Path(env["AZ_STATE"]))
    with scoring_stopped(scoring), log_path.open("w", encoding="utf-8") as log:
        for title, commands in story(args.layers, str(registered["name"]), int(registered["version"])):
            print(f"== {title}")
            for command in commands:
                argv, typed = command_line(command, repo)
                began = time.monotonic()
                done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False)
                output = done.stdout + done.stderr
                log.write(f"$ {typed}\n{output}(exit {done.returncode})\n\n")
                print(f"$ {typed}    [exit {done.returncode}, {time.monotonic() - began:.1f} s]")
                show(output, str(log_path))
                if done.returncode != command.expect:
                    print(f"rehearsal stopped: `{typed}` exited {done.returncode}, the story expects "
                          f"{command.expect} (full output: {log_path})", file=sys.stderr)
                    return 1
            print()
    print(f"rehearsal done in {time.monotonic() - start:.0f} s: every step of \"From clone to production\" ran "
          f"against the stand-in az (scratch: {folder})")
    return 0
