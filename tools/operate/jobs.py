"""Following a submitted job to its end (the `follow` and `job-wait` steps of the train stage).

`az ml job stream` prints the job's logs while it runs (into the run's log, ``tools.operate.az``); its exit code
does not decide (a dropped stream is not a failed job). The verdict is the job's status from `az ml job show --query
status -o tsv`, asked until it is terminal: Completed, Failed or Canceled (azure-ai-ml `JobStatus`; Starting,
Preparing, Queued, Running, Finalizing, CancelRequested, NotResponding and Paused are not terminal). Completed is
required; Failed or Canceled stop the run with one line, and the job's logs command is printed as a hint.
"""

from __future__ import annotations

import time

from tools.core.errors import CloudRefused
from tools.operate.az import Az
from tools.operate.steps import Step, shell_command

TERMINAL = ("Completed", "Failed", "Canceled")
WAIT_SECONDS = 30
WAIT_TRIES = 2880  # 24 h: fine-tuning runs take hours


def follow(az: Az, step: Step, argv: list[str]) -> str:
    job = argv[argv.index("--name") + 1]
    where = f" into {az.log_path.name}" if az.log_path else ""
    print(f"    {step.name}: following job {job}'s log{where} until it ends", flush=True)
    result = az.call(argv)
    if result.code != 0:
        return f"the log stream ended with exit {result.code}; the job's status decides"
    return "done"


def wait(az: Az, step: Step, argv: list[str], variables: dict[str, str]) -> str:
    """Ask for the job's status until it is terminal; CloudRefused unless it is ``step.expect`` (Completed)."""
    job = argv[argv.index("--name") + 1]
    status = seen = ""
    for attempt in range(WAIT_TRIES):
        status = az.capture(argv, f"step {step.name}")
        if status in TERMINAL:
            break
        if status != seen:  # progress: each new state once
            print(f"    job {job}: {status or 'no status yet'}", flush=True)
            seen = status
        if attempt + 1 < WAIT_TRIES:
            time.sleep(WAIT_SECONDS)
    else:
        raise CloudRefused(f"step {step.name} failed (job {job} is still {status} after {WAIT_SECONDS * WAIT_TRIES} s)")
    assert step.captures is not None
    variables[step.captures] = status
    if status != step.expect:
        raise CloudRefused(
            f"step {step.name} failed (job {job} ended {status}; {step.captures} is {status}, expected {step.expect}): "
            "nothing after it ran"
        )
    return f"{step.captures}={status}"


def logs_hint(step: Step, variables: dict[str, str]) -> list[str]:
    """The step's hint commands with the captured values filled in (the job's name)."""
    out = []
    for hint in step.on_failure:
        words = [word for word in hint]
        for name, value in variables.items():
            words = [w.replace("${" + name + "}", value) for w in words]
        out.append(shell_command(words))
    return out
