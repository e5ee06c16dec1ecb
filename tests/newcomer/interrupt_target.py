"""Not collected by the suite (no ``test_`` prefix): tests/newcomer/test_interrupt.py runs it in a child pytest,
then interrupts that child while the real serve fixture holds a local endpoint (adapter, MLflow, uvicorn in their own
session). ``finetuned_model`` is overridden with the model the parent already built (INTERRUPT_TARGET_MODEL)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.serve.conftest import fake_key  # noqa: F401 - fixtures the real endpoint fixture requests
from tests.serve.test_local_endpoint import endpoint  # noqa: F401 - the real fixture under test
from tools.serve import process as serve

HOLD_S = 600  # far longer than the parent waits: only an interruption ends this test
READY_LINE = "interrupt-target: serving on port"


@pytest.fixture(scope="session")
def finetuned_model() -> Path:
    return Path(os.environ["INTERRUPT_TARGET_MODEL"])


def test_hold_the_endpoint_until_interrupted(endpoint: serve.LocalEndpoint) -> None:  # noqa: F811
    print(f"{READY_LINE} {endpoint.port} upstream {endpoint.upstream_port}", flush=True)
    time.sleep(HOLD_S)
