"""`python -m tools catalog import FILE... | --from-az`: write `schemas/catalog/models.yaml` from registry metadata.

FILE is the JSON of `az ml model show --registry-name R --name M --version V -o json` (one model per file).
`--from-az` runs those commands itself for every model of the current catalog (or each `--model R/NAME/VERSION`)
after checking `az account show` (logged in); `--save DIR` keeps the JSON it read, to commit as the new metadata.
`--check` compares instead of writing (exit 1 with a diff when the catalog is not what the metadata gives).
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import shutil
import subprocess
from pathlib import Path

from tools.catalog.registry import SHOW_COMMAND, MetadataError, RegistryModel, build_catalog, dump_catalog, parse_model
from tools.core.errors import UserError
from tools.core.files import atomic_write_text
from tools.core.repo import active

MAX_JSON_BYTES = 5_000_000  # one model's metadata is a few KB; anything near this is not `az ml model show` output
AZ_TIMEOUT_S = 120


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    imp = sub.add_parser("import", help="generate the model catalog from registry model JSON")
    imp.add_argument("files", nargs="*", type=Path, metavar="FILE", help="`az ml model show ... -o json` output")
    imp.add_argument("--from-az", action="store_true", help="run `az ml model show` for each model (needs az login)")
    imp.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="REGISTRY/NAME/VERSION",
        help="with --from-az: a model to read (repeatable; default: every model of the current catalog)",
    )
    imp.add_argument("--save", type=Path, metavar="DIR", help="with --from-az: also write each JSON read to DIR")
    imp.add_argument("--out", type=Path, metavar="FILE", help="catalog to write (default: schemas/catalog/models.yaml)")
    imp.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="date retirements are judged against (default: today)",
    )
    imp.add_argument("--check", action="store_true", help="compare with the catalog instead of writing it")
    imp.add_argument("--root", type=Path, metavar="DIR", help="repo root to read facts from (default: this checkout)")


def _known_skus() -> dict[str, str]:
    return {name.lower(): name for name in active().skus()}


def _parse_text(text: str, where: str, known: dict[str, str]) -> RegistryModel:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{where}:{error.lineno}: not JSON ({error.msg}); expected `az ml model show -o json` output"
        ) from None
    try:
        return parse_model(document, known)
    except MetadataError as error:
        raise UserError(f"{where}:{_line_of(text, error.key_path)}: {error}") from None


def _line_of(text: str, key_path: str) -> int:
    """The line of the last key of ``key_path`` in a JSON text (1 when it is not there: a missing key)."""
    last = key_path.rsplit(".", 1)[-1]
    for number, line in enumerate(text.splitlines(), 1):
        if f'"{last}"' in line:
            return number
    return 1


def read_files(files: list[Path]) -> list[RegistryModel]:
    known = _known_skus()
    models = []
    for path in files:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise UserError(f"{path}: larger than {MAX_JSON_BYTES} bytes; not one model's metadata")
        models.append(_parse_text(path.read_text(encoding="utf-8"), str(path), known))
    return models


def _az(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["az", *args], capture_output=True, text=True, timeout=AZ_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"az {' '.join(args)}: no answer within {AZ_TIMEOUT_S} s") from None


def _targets(specs: list[str]) -> list[tuple[str, str, str]]:
    if not specs:
        return [(facts["registry"], name, str(facts["latest_version"])) for name, facts in active().models().items()]
    targets = []
    for spec in specs:
        parts = spec.split("/")
        if len(parts) != 3 or not all(parts):
            raise UserError(f"--model {spec}: expected REGISTRY/NAME/VERSION (e.g. azureml/Phi-4/8)")
        targets.append((parts[0], parts[1], parts[2]))
    return targets


def read_from_az(specs: list[str], save: Path | None) -> list[RegistryModel]:
    """Run `az ml model show` for each model; one line naming the command when it fails."""
    if shutil.which("az") is None:
        raise UserError("--from-az: the Azure CLI (az) is not on PATH; install it or pass the JSON files instead")
    if _az("account", "show", "-o", "none").returncode != 0:
        raise UserError("--from-az: not logged in to Azure (run `az login`), or pass the JSON files instead")
    known = _known_skus()
    models = []
    for registry, name, version in _targets(specs):
        command = SHOW_COMMAND.format(registry=registry, name=name, version=version)
        result = _az(*command.split()[1:])
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"`{command}` failed (exit {result.returncode}): {detail}")
        if len(result.stdout) > MAX_JSON_BYTES:
            raise UserError(f"`{command}`: more than {MAX_JSON_BYTES} bytes of output; not one model's metadata")
        models.append(_parse_text(result.stdout, f"`{command}`", known))
        if save is not None:
            atomic_write_text(save / f"{registry}-{name}-{version}.json", result.stdout.rstrip("\n") + "\n")
    return models


def run(args: argparse.Namespace) -> int:
    if args.from_az == bool(args.files):
        raise UserError("catalog import: give the JSON FILEs or --from-az (exactly one of them)")
    if (args.model or args.save) and not args.from_az:
        raise UserError("catalog import: --model and --save go with --from-az")
    models = read_from_az(args.model, args.save) if args.from_az else read_files(args.files)
    try:
        catalog = build_catalog(models, args.as_of or dt.date.today())
    except MetadataError as error:
        raise UserError(f"catalog import: {error}") from None
    text = dump_catalog(catalog)
    out: Path = args.out or active().catalog_dir / "models.yaml"
    shown = active().relative(out)
    current = out.read_text(encoding="utf-8") if out.is_file() else None
    if args.check:
        if current == text:
            print(f"{shown}: matches the registry metadata ({len(catalog)} models)")
            return 0
        diff = difflib.unified_diff(
            (current or "").splitlines(),
            text.splitlines(),
            f"{shown} (committed)",
            f"{shown} (from metadata)",
            lineterm="",
            n=0,
        )
        print(f"{shown}: differs from what the metadata gives (run `python -m tools catalog import ...`)")
        for line in list(diff)[:40]:
            print(f"    {line}")
        return 1
    if current != text:
        atomic_write_text(out, text)
    print(f"{shown}: {len(catalog)} models ({', '.join(catalog)}); {'unchanged' if current == text else 'written'}")
    return 0
