"""rules.kinds on literal dicts: the checks that belong to one kind."""

from __future__ import annotations

from tools.validate.rules import kinds


def test_model_needs_a_path(run_rule) -> None:
    assert [f[0] for f in run_rule(kinds.check, {"name": "m", "version": "1"}, "model")] == [("path",)]


def test_user_assigned_identity(run_rule) -> None:
    data = {"name": "ep", "auth_mode": "key", "identity": {"type": "user_assigned", "user_assigned_identities": [
        {"resource_id": "/subscriptions/x/rg", "clientid": "y"}]}}  # fmt: skip
    found = sorted(f[0] for f in run_rule(kinds.check, data, "managedOnlineEndpoint"))
    assert found == [("identity", "user_assigned_identities", 0, "clientid"),
                     ("identity", "user_assigned_identities", 0, "resource_id")]  # fmt: skip
