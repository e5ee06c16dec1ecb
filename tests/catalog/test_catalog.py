"""The model catalog is generated from registry metadata: reproducible byte for byte, facts read from
`system_metadata`, retirement judged by date, malformed metadata refused with one line, `--from-az` through a
stand-in `az` on PATH (never real Azure)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tools.catalog.registry import MetadataError, build_catalog, parse_model

FIXTURES = Path(__file__).parent / "fixtures"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools", "catalog", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def known(repo_root: Path) -> dict[str, str]:
    import yaml

    return {
        name.lower(): name for name in yaml.safe_load((repo_root / "schemas/catalog/skus.yaml").read_text())["skus"]
    }


def test_import_of_the_committed_fixtures_reproduces_the_committed_catalog(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "models.yaml"
    files = sorted(str(p) for p in FIXTURES.glob("*.json"))
    result = cli("import", *files, "--out", str(out), cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes() == (repo_root / "schemas/catalog/models.yaml").read_bytes()
    check = cli("import", *files, "--check", cwd=repo_root)
    assert check.returncode == 0, check.stdout


def test_check_reports_a_hand_edit(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "models.yaml"
    out.write_text(
        (repo_root / "schemas/catalog/models.yaml").read_text().replace("latest_version: 8", "latest_version: 9")
    )
    result = cli("import", *map(str, FIXTURES.glob("*.json")), "--out", str(out), "--check", cwd=repo_root)
    assert result.returncode == 1
    assert "-    latest_version: 9" in result.stdout and "+    latest_version: 8" in result.stdout


def test_system_metadata_facts_are_read(repo_root: Path) -> None:
    phi4 = parse_model(fixture("azureml-Phi-4-8.json"), known(repo_root))
    assert phi4.preview is True and phi4.task == "chat-completion" and phi4.context_window == 16384
    assert "Standard_ND96asr_v4" in phi4.finetune_skus and len(phi4.finetune_skus) == 8  # Standard_ prefix added
    assert phi4.finetune_defaults["deepspeed_stage"] == 3 and phi4.finetune_defaults["learning_rate"] == 5e-06
    assert phi4.source == "az ml model show --registry-name azureml --name Phi-4 --version 8 -o json"
    oss = parse_model(fixture("azureml-openai-oss-gpt-oss-20b-6.json"), known(repo_root))
    assert oss.registry == "azureml-openai-oss" and oss.finetune_skus == [
        "Standard_NC96ads_A100_v4",
        "Standard_ND96isr_H100_v5",
    ]


def test_retirement_is_judged_against_the_date(repo_root: Path) -> None:
    docs = [
        parse_model(fixture(name), known(repo_root))
        for name in (
            "azureml-Phi-4-8.json",
            "azureml-Phi-3-small-8k-instruct-6.json",
            "azureml-openai-oss-gpt-oss-20b-6.json",
        )
    ]
    before = build_catalog(docs, dt.date(2025, 8, 29))
    after = build_catalog(docs, dt.date(2025, 8, 30))
    assert (
        before["Phi-3-small-8k-instruct"]["status"] == "active"
        and "retired_on" not in before["Phi-3-small-8k-instruct"]
    )
    small = after["Phi-3-small-8k-instruct"]
    assert small["status"] == "retired" and small["retired_on"] == "2025-08-30"
    assert small["retired_note"] == "fine-tuning and inference retired on 2025-08-30"  # no archived flag
    assert small["alternatives"] == ["Phi-4"]  # same registry and task only: gpt-oss-20b is in another registry
    assert after["Phi-4"]["status"] == "active" and after["Phi-4"]["alternatives"] == []


def test_only_one_retirement_date_passed(repo_root: Path) -> None:
    doc = fixture("azureml-Phi-3-mini-4k-instruct-15.json")
    doc["system_metadata"]["deprecation"]["inferenceRetirementDate"] = "2027-01-31"
    entry = build_catalog([parse_model(doc, known(repo_root))], dt.date(2026, 1, 1))["Phi-3-mini-4k-instruct"]
    assert entry["retired_note"] == "archived; fine-tuning retired on 2025-08-30"
    assert entry["inference_retired_on"] == "2027-01-31"


@pytest.mark.parametrize(
    ("mutate", "key_path"),
    [
        (lambda d: d.update(id="azureml:Phi-4:8"), "id"),
        (lambda d: d.update(version="9"), "version"),
        (
            lambda d: d["system_metadata"]["supportedComputes"].update(finetuneComputes="NC24ads_A100_v4"),
            "system_metadata.supportedComputes.finetuneComputes",
        ),
        (lambda d: d["system_metadata"].update(preview="yes"), "system_metadata.preview"),
        (
            lambda d: d["system_metadata"].update(deprecation={"fineTuningRetirementDate": "soon"}),
            "system_metadata.deprecation.fineTuningRetirementDate",
        ),
        (
            lambda d: d["tags"].update(model_specific_defaults="__import__('os').system('x')"),
            "tags.model_specific_defaults",
        ),
        (
            lambda d: d["tags"].update(model_specific_defaults="{'apply_lora': ['true']}"),
            "tags.model_specific_defaults.apply_lora",
        ),
    ],
)
def test_malformed_metadata_names_the_key(repo_root: Path, mutate, key_path: str) -> None:
    doc = fixture("azureml-Phi-4-8.json")
    mutate(doc)
    with pytest.raises(MetadataError) as error:
        parse_model(doc, known(repo_root))
    assert error.value.key_path == key_path


def test_cli_errors_are_one_line_with_file_and_line(repo_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    doc = fixture("azureml-Phi-4-8.json")
    doc["system_metadata"]["preview"] = "maybe"
    bad.write_text(json.dumps(doc, indent=2))
    result = cli("import", str(bad), "--out", str(tmp_path / "m.yaml"), cwd=repo_root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if '"preview"' in text)
    assert f"{bad}:{line}: system_metadata.preview: expected true or false" in result.stderr
    (tmp_path / "junk.json").write_text("{not json")
    result = cli("import", str(tmp_path / "junk.json"), "--out", str(tmp_path / "m.yaml"), cwd=repo_root)
    assert result.returncode == 2 and "junk.json:1: not JSON" in result.stderr
    assert not (tmp_path / "m.yaml").exists()  # nothing half-written


def _stand_in_az(bin_dir: Path, log: Path, logged_in: bool) -> None:
    """A stand-in `az`: `account show` succeeds only when logged in (as the real one); `ml model show` prints the
    fixture of the requested registry/name/version, or fails with ResourceNotFound as Azure does."""
    bin_dir.mkdir()
    script = bin_dir / "az"
    script.write_text(f"""#!{sys.executable}
import sys, pathlib
args = sys.argv[1:]
pathlib.Path({str(log)!r}).open("a").write(" ".join(args) + "\\n")
if args[:2] == ["account", "show"]:
    sys.exit(0 if {logged_in!r} else 1)
if args[:3] == ["ml", "model", "show"]:
    opts = dict(zip(args[3::2], args[4::2]))
    stem = "-".join(opts[key] for key in ("--registry-name", "--name", "--version"))
    path = pathlib.Path({str(FIXTURES)!r}) / f"{{stem}}.json"
    if not path.is_file():
        print("ERROR: (ResourceNotFound) model not found", file=sys.stderr)
        sys.exit(1)
    print(path.read_text())
    sys.exit(0)
sys.exit(2)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_from_az_runs_model_show_for_every_catalog_model(repo_root: Path, tmp_path: Path) -> None:
    log = tmp_path / "az.log"
    _stand_in_az(tmp_path / "bin", log, logged_in=True)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    out, saved = tmp_path / "models.yaml", tmp_path / "saved"
    result = cli("import", "--from-az", "--out", str(out), "--save", str(saved), cwd=repo_root, env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (repo_root / "schemas/catalog/models.yaml").read_bytes()
    calls = log.read_text().splitlines()
    assert calls[0] == "account show -o none"
    assert "ml model show --registry-name azureml-openai-oss --name gpt-oss-20b --version 6 -o json" in calls
    assert sorted(p.name for p in saved.iterdir()) == sorted(p.name for p in FIXTURES.glob("*.json"))


def test_from_az_not_logged_in_or_missing_model(repo_root: Path, tmp_path: Path) -> None:
    _stand_in_az(tmp_path / "bin", tmp_path / "az.log", logged_in=False)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = cli("import", "--from-az", "--out", str(tmp_path / "m.yaml"), cwd=repo_root, env=env)
    assert result.returncode == 2 and "not logged in to Azure (run `az login`)" in result.stderr
    (tmp_path / "bin" / "az").unlink()
    _stand_in_az(tmp_path / "bin2", tmp_path / "az.log", logged_in=True)
    env["PATH"] = f"{tmp_path / 'bin2'}{os.pathsep}{os.environ['PATH']}"
    result = cli(
        "import", "--from-az", "--model", "azureml/Phi-5/1", "--out", str(tmp_path / "m.yaml"), cwd=repo_root, env=env
    )
    assert result.returncode == 2
    assert (
        "`az ml model show --registry-name azureml --name Phi-5 --version 1 -o json` failed (exit 1)" in result.stderr
    )
    assert "ResourceNotFound" in result.stderr and not (tmp_path / "m.yaml").exists()
