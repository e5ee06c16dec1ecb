"""The operate fixtures (a scratch repo, the stand-in `az` as ``cloud``, ``tools_cli``) for the platform tests."""

from tests.operate.conftest import cloud, scratch_repo, tools_cli  # noqa: F401 - fixtures, used by name
