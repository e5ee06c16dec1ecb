"""Export the Azure ML CLI v2 JSON schemas (Draft 7) from the pinned azure-ai-ml marshmallow schemas.

``python -m tools schemas export`` writes ``schemas/azureml/<file>`` for every kind in ``schemas/kinds.yaml``;
``--check`` writes nothing and exits 1 with one line per file that differs from a fresh export (an SDK bump
must not drift silently).

The export uses ``marshmallow-jsonschema`` with hooks for the SDK's own field types: ``UnionField`` (and
``TypeSensitiveUnionField``) become ``anyOf`` of their members, ``ExperimentalField`` its inner field,
``allow_none`` a ``{"type": "null"}`` branch, nested schemas shared definitions (recursion-safe, one per class
and ``only``/``exclude`` variant), and an enum the SDK compares after a casing transform (``StringTransformedEnum``)
names it in ``x-azureml-casing`` (``tools.validate.casing``). Unknown keys are rejected wherever the schema class is
strict (its ``Meta.unknown``), plus the few lenient classes listed in ``STRICT_OVERRIDES``. Output is pretty-printed
with sorted keys, so it is byte-identical across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from inspect import isclass
from pathlib import Path
from typing import Any, NamedTuple

from tools.core.errors import UserError
from tools.core.files import atomic_write_text
from tools.core.repo import active
from tools.core.text import counted
from tools.core.yamlio import YamlProblem, load_file, plain
from tools.validate.casing import CASING_KEY, classify
from tools.validate.sdk import import_sdk

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
PRIVATE_FEATURES_ENV = "AZURE_ML_CLI_PRIVATE_FEATURES_ENABLED"

# Schema classes whose marshmallow Meta lets unknown keys through but where a key the SDK does not know is, in
# this repo, a typo that the service would silently ignore. The exported schema rejects unknown keys there.
STRICT_OVERRIDES: frozenset[str] = frozenset({"PipelineJobSettingsSchema"})


def load_kinds(path: Path | None = None) -> dict[str, Any]:
    """Return ``schemas/kinds.yaml`` as ``{"schema_base_url": str, "kinds": {kind: {...}}}``."""
    path = path or active().kinds_file
    try:
        data = plain(load_file(path))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the kinds table: {exc.strerror}") from exc
    except YamlProblem as problem:
        raise UserError(f"{path}:{problem.line}: {problem.message}") from None
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict) or "schema_base_url" not in data:
        raise UserError(f"{path}: expected 'schema_base_url' and a 'kinds' mapping")
    return data


def _import_sdk() -> None:
    """Import azure.ai.ml once, quietly (deprecation warnings, experimental-class notices)."""
    import_sdk()


def _make_exporter_class() -> type:
    """Build the JSONSchema subclass lazily, so importing this module does not import marshmallow or the SDK."""
    from azure.ai.ml._schema.core.fields import (  # noqa: PLC0415 - heavy library, imported when used
        DataBindingStr,
        ExperimentalField,
        NestedField,
        StringTransformedEnum,
        UnionField,
    )
    from azure.ai.ml._schema.pipeline.component_job import BaseNodeSchema  # noqa: PLC0415 - heavy library, imported when used
    from marshmallow import INCLUDE, Schema, fields  # noqa: PLC0415 - heavy library, imported when used
    from marshmallow.class_registry import get_class  # noqa: PLC0415 - heavy library, imported when used
    from marshmallow_jsonschema import JSONSchema  # noqa: PLC0415 - heavy library, imported when used
    from marshmallow_jsonschema.base import _resolve_additional_properties  # noqa: PLC0415 - heavy library, imported when used


    binding_string = DataBindingStr()._jsonschema_type_mapping()  # what the SDK's binding branch accepts

    class AzureMLJSONSchema(JSONSchema):
        """marshmallow-jsonschema with the azure-ai-ml custom fields and a shared, recursion-safe definitions map."""

        def __init__(self, *args: Any, shared: dict[str, Any] | None = None, binding: Binding | None = None,
                     **kwargs: Any) -> None:  # fmt: skip
            super().__init__(*args, **kwargs)
            self._shared = shared if shared is not None else {"defs": {}, "owners": {}}
            self._nested_schema_classes = self._shared["defs"]
            self._binding = binding  # inside a pipeline step: where `${{...}}` is accepted (see _bindable)

        @contextlib.contextmanager
        def _binding_mode(self, binding: Binding | None) -> Iterator[None]:
            saved, self._binding = self._binding, binding
            try:
                yield
            finally:
                self._binding = saved

        # -- `${{...}}` inside pipeline steps ------------------------------------------------------------------
        def get_properties(self, obj: Any) -> dict[str, Any]:
            """A step's fields named in the SDK's skip list (``type``, ``component``, ``trial``, ``inputs``, at
            every depth) take no binding; the others do (``_bindable``)."""
            if self._binding is None:
                return super().get_properties(obj)
            properties = self.dict_class()
            for name, field in sorted(obj.fields.items()):
                with self._binding_mode(None if name in self._binding.skip else self._binding):
                    properties[field.metadata.get("name") or field.data_key or field.name] = \
                        self._get_schema_for_field(obj, field)  # fmt: skip
            return properties

        def _bindable(self, obj: Any, field: Any) -> dict[str, Any]:
            """The schema of ``field`` inside a pipeline step, as azure-ai-ml's
            ``support_data_binding_expression_for_fields`` (``_schema/_utils/data_binding_expression.py``) makes it
            at load time: ``BaseNodeSchema.__init__`` turns every literal field into ``Union[DataBindingStr,
            field]``, adds a ``DataBindingStr`` branch to unions, and goes on into the values of dicts and lists
            and into nested schemas (once per schema class along the way: recursion stops there). Replayed here
            on the JSON side, because the SDK patches field instances in place (and shares some between
            classes): reading its state would make the export depend on what the process loaded before."""
            if isinstance(field, UnionField):
                return self._union(obj, field, with_binding=True)
            if isinstance(field, (fields.Dict, fields.List, ExperimentalField, NestedField)):
                # items, values and inner fields stay in the mode; _from_nested_schema reads it for a nested schema
                return self._get_schema_for_field(obj, field, plain=True)
            with self._binding_mode(None):
                inner = self._get_schema_for_field(obj, field)
            return self._with_null({"anyOf": [binding_string, inner]}, field)

        def _union(self, obj: Any, field: Any, with_binding: bool = False) -> dict[str, Any]:
            branches: list[dict[str, Any]] = [binding_string] if with_binding else []
            seen: set[str] = {json.dumps(binding_string, sort_keys=True)} if with_binding else set()
            for member in field.union_fields:
                literal = not isinstance(member, (NestedField, fields.List, fields.Dict, UnionField))
                with self._binding_mode(None if literal else self._binding):
                    member_schema = self._get_schema_for_field(obj, member)
                # flatten a bare nested anyOf (a union inside a union)
                parts = member_schema["anyOf"] if set(member_schema) == {"anyOf"} else [member_schema]
                for part in parts:
                    key = json.dumps(part, sort_keys=True, default=str)
                    if key not in seen:
                        seen.add(key)
                        branches.append(part)
            schema = {"anyOf": branches}
            self._with_metadata(schema, field)
            return self._with_null(schema, field)

        # -- fields -------------------------------------------------------------------------------------------
        def _get_schema_for_field(self, obj: Any, field: Any, plain: bool = False) -> dict[str, Any]:
            if self._binding is not None and not plain:
                return self._bindable(obj, field)
            if isinstance(field, ExperimentalField):
                schema = dict(self._get_schema_for_field(obj, field.experimental_field))
                return self._with_null(self._with_metadata(schema, field), field)
            if isinstance(field, UnionField):
                return self._union(obj, field)
            if type(field) is fields.Field:  # an untyped field accepts any value
                schema = {"title": field.data_key or field.name or ""}
                return self._with_null(self._with_metadata(schema, field), field)
            schema = super()._get_schema_for_field(obj, field)
            if isinstance(field, StringTransformedEnum) and isinstance(schema.get("enum"), list):
                casing = classify(field.casing_transform)  # the SDK compares transformed values: tools.validate.casing
                if casing:
                    schema = {**schema, CASING_KEY: casing}
            if hasattr(field, "_jsonschema_type_mapping"):
                schema = self._with_null(schema, field)
            return schema

        @staticmethod
        def _with_metadata(schema: dict[str, Any], field: Any) -> dict[str, Any]:
            for key, value in field.metadata.items():
                if key in ("metadata", "name", "_jsonschema_type_mapping"):
                    continue
                if key == "description" or isinstance(value, (str, int, float, bool)):
                    schema.setdefault(key, value)
            if field.dump_only:
                schema["readOnly"] = True
            return schema

        @staticmethod
        def _with_null(schema: dict[str, Any], field: Any) -> dict[str, Any]:
            if not field.allow_none:
                return schema
            if schema.get("type") == "null" or "null" in (schema.get("type") or []):
                return schema
            if "anyOf" in schema:
                if {"type": "null"} not in schema["anyOf"]:
                    schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
                return schema
            return {"anyOf": [schema, {"type": "null"}]}

        # -- nested schemas -----------------------------------------------------------------------------------
        def _definition_name(self, nested_cls: type, only: Any, exclude: Any) -> str:
            owners: dict[str, str] = self._shared["owners"]
            qualified = f"{nested_cls.__module__}.{nested_cls.__qualname__}"
            name = nested_cls.__name__
            if owners.setdefault(name, qualified) != qualified:
                name = qualified.replace("azure.ai.ml._schema.", "").replace(".", "_")
                owners.setdefault(name, qualified)
            if only:
                name += "__only_" + "_".join(sorted(only))
            if exclude:
                name += "__exclude_" + "_".join(sorted(exclude))
            return name

        def _from_nested_schema(self, obj: Any, field: Any) -> dict[str, Any]:
            nested = field.nested
            if isinstance(nested, (str, bytes)):
                nested = get_class(nested, all=False)
            if isclass(nested) and issubclass(nested, type):
                # azure-ai-ml 1.35.2's RouteSchema subclasses the metaclass instead of using it: not a schema the SDK
                # can apply either; accept any mapping there rather than fail the export
                return {"type": "object"}
            only = field.only
            exclude = tuple(field.exclude or ())
            if isclass(nested) and issubclass(nested, Schema):
                nested_cls = nested
                make = lambda: nested(only=only, exclude=exclude, context=obj.context)  # noqa: E731
            elif isinstance(nested, Schema):
                nested_cls = type(nested)
                make = lambda: nested  # noqa: E731
            elif callable(nested):
                instance = nested()
                nested_cls = type(instance)
                make = lambda: instance  # noqa: E731
            else:  # pragma: no cover - marshmallow forbids other kinds
                raise TypeError(f"unsupported nested value {nested!r}")

            name = self._definition_name(nested_cls, only, exclude)
            binding = self._binding
            if issubclass(nested_cls, BaseNodeSchema):  # a pipeline step: bindings from here down
                binding = Binding(NODE_BINDING_SKIP, (nested_cls.__name__,))
            elif binding is not None:
                if nested_cls.__name__ in binding.stack or not isinstance(field, NestedField):
                    binding = None  # the SDK goes into each schema class once, and only through its NestedField
                else:
                    binding = Binding(binding.skip, (*binding.stack, nested_cls.__name__))
                    name += "__bindings"
            defs = self._shared["defs"]
            if name not in defs:
                defs[name] = {}  # placeholder: a recursive reference resolves to this name
                child = self.__class__(
                    nested=True,
                    props_ordered=self.props_ordered,
                    definitions_path=self.definitions_path,
                    shared=self._shared,
                    binding=binding,
                )
                body = child.dump(make())
                strict = nested_cls.__name__ in STRICT_OVERRIDES
                body["additionalProperties"] = False if strict else _resolve_additional_properties(nested_cls)
                if getattr(nested_cls.Meta, "unknown", None) == INCLUDE and not strict:
                    body["additionalProperties"] = True
                defs[name] = body

            schema: dict[str, Any] = {"$ref": f"#/{self.definitions_path}/{name}"}
            self._with_metadata(schema, field)
            if field.allow_none:
                schema = {"anyOf": [schema, {"type": "null"}]}
            if field.many:
                schema = {"type": "array", "items": schema}
                if field.allow_none:
                    schema = {"anyOf": [schema, {"type": "null"}]}
            return schema

    return AzureMLJSONSchema


class Binding(NamedTuple):
    """Inside a pipeline step: the field names that take no binding, and the schema classes gone into so far."""

    skip: frozenset[str]
    stack: tuple[str, ...]


NODE_BINDING_SKIP = frozenset({"type", "component", "trial", "inputs"})  # BaseNodeSchema.__init__'s attrs_to_skip


def _resolve_class(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        where = active().relative(active().kinds_file)
        raise UserError(f"{where}: schema_class {dotted!r} not found in the installed azure-ai-ml") from exc


def export_schema(kind: str, spec: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Return the Draft 7 JSON schema dict for one kind of ``kinds.yaml``; a list of schema classes (the SDK picks
    one by ``type:`` or ``task:``) becomes an ``anyOf`` of their roots."""
    _import_sdk()

    dotted = spec["schema_class"]
    classes = [_resolve_class(name) for name in (dotted if isinstance(dotted, list) else [dotted])]
    with _sdk_binding_patch_off():
        return _export(kind, spec, base_url, classes)


@contextlib.contextmanager
def _sdk_binding_patch_off() -> Iterator[None]:
    """While exporting, a pipeline step's schema does not patch its fields for bindings (the exporter replays
    that on the JSON side, ``_bindable``): the SDK patches in place, also union members that other classes share,
    so each export would otherwise see what the ones before it instantiated."""
    from azure.ai.ml._schema.pipeline import component_job  # noqa: PLC0415 - heavy library, imported when used

    saved = component_job.support_data_binding_expression_for_fields
    component_job.support_data_binding_expression_for_fields = lambda *args, **kwargs: None
    try:
        yield
    finally:
        component_job.support_data_binding_expression_for_fields = saved


def _export(kind: str, spec: dict[str, Any], base_url: str, classes: list[type]) -> dict[str, Any]:
    from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY  # noqa: PLC0415 - heavy library, imported when used

    exporter_cls = _make_exporter_class()
    shared: dict[str, Any] = {"defs": {}, "owners": {}}
    definitions: dict[str, Any] = {}
    roots: list[str] = []
    for schema_cls in classes:
        root = exporter_cls(shared=shared).dump(schema_cls(context={BASE_PATH_CONTEXT_KEY: Path(".")}))
        definitions.update(root["definitions"])
        root_name = schema_cls.__name__
        definition = definitions[root_name]
        if root_name in STRICT_OVERRIDES:
            definition["additionalProperties"] = False
        # every spec carries a `$schema` line; make sure the root accepts it whatever the SDK class declares
        definition.setdefault("properties", {}).setdefault("$schema", {"type": "string"})
        definition["properties"]["$schema"].pop("readOnly", None)
        roots.append(root_name)
    top: dict[str, Any] = {"$ref": f"#/definitions/{roots[0]}"} if len(roots) == 1 else {
        "anyOf": [{"$ref": f"#/definitions/{name}"} for name in roots]}
    return {
        "$schema": DRAFT_07,
        "$id": base_url + spec["file"],
        "title": kind,
        "definitions": {name: _without_titles(body) for name, body in definitions.items()},
        **top,
    }


_NAME_MAPS = ("properties", "patternProperties", "definitions")


def _without_titles(node: Any) -> Any:
    """Drop field titles: they only repeat the key, and the SDK sets some lazily (a second export in the same
    process would differ). Keys of ``properties`` maps are names, not keywords, and are kept."""
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _NAME_MAPS and isinstance(value, dict):
            out[key] = {name: _without_titles(sub) for name, sub in value.items()}
        else:
            out[key] = _without_titles(value)
    return out


def render(schema: dict[str, Any]) -> str:
    """Serialise a schema deterministically: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_all(kinds_file: Path | None = None) -> dict[str, str]:
    """Return ``{file name: rendered text}`` for every kind, without writing anything (memoised per process:
    the export is deterministic, and ``--check`` plus ``export`` in one test session need it once)."""
    if os.environ.get(PRIVATE_FEATURES_ENV, "").lower() in ("1", "true", "yes", "on"):
        raise UserError(f"unset {PRIVATE_FEATURES_ENV}: it adds private-preview fields to the SDK's schemas")
    kinds_file = Path(kinds_file or active().kinds_file)
    return dict(_export_all(kinds_file.resolve(), kinds_file.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _export_all(kinds_file: Path, _mtime_ns: int) -> dict[str, str]:
    """The export, computed in a fresh interpreter: azure-ai-ml patches schema fields in place as it loads specs
    (union members shared between classes gain binding branches), so an export in a process that has loaded
    pipelines (a test session, a validator run) would differ from the one ``python -m tools schemas export``
    makes."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    code = ("import json, sys\nfrom pathlib import Path\nfrom tools.core.offline import apply_offline_env\n"
            "from tools.core.repo import select\nfrom tools.schemas.export import export_here\n"
            "apply_offline_env()\nselect(sys.argv[1])\n"
            "sys.stdout.write(json.dumps(export_here(Path(sys.argv[2]))))\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, str(active().root), str(kinds_file)], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise UserError(f"schema export failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return json.loads(result.stdout)


def export_here(kinds_file: Path) -> dict[str, str]:
    """The export in this process (a fresh one: see _export_all)."""
    table = load_kinds(kinds_file)
    base_url = str(table["schema_base_url"])
    return {
        spec["file"]: render(export_schema(kind, spec, base_url)) for kind, spec in sorted(table["kinds"].items())
    }


def check(output_dir: Path | None = None, kinds_file: Path | None = None) -> list[str]:
    """Compare the committed files with a fresh export; return one line per drifted or missing file."""
    output_dir = output_dir or active().json_schema_dir
    problems = []
    for name, text in export_all(kinds_file).items():
        path = output_dir / name
        try:
            committed = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{_display(path)}: missing; run `python -m tools schemas export`")
            continue
        if committed != text:
            problems.append(f"{_display(path)}: differs from the pinned azure-ai-ml export; "
                            "run `python -m tools schemas export`")
    return problems


def write_all(output_dir: Path | None = None, kinds_file: Path | None = None) -> tuple[list[Path], int]:
    """Export every kind into ``output_dir`` atomically, leaving a file whose text is already right untouched;
    return (the paths written, how many were unchanged)."""
    output_dir = output_dir or active().json_schema_dir
    written = []
    unchanged = 0
    for name, text in export_all(kinds_file).items():
        path = output_dir / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            unchanged += 1
            continue
        atomic_write_text(path, text)
        written.append(path)
    return written, unchanged


def _display(path: Path) -> str:
    try:
        return active().relative(path)
    except ValueError:
        return str(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="schemas_command", metavar="<subcommand>", required=True)
    export = sub.add_parser("export", help="write schemas/azureml/*.schema.json from the pinned azure-ai-ml")
    export.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing files that differ from a fresh export")


def run(args: argparse.Namespace) -> int:
    if args.check:
        problems = check()
        for line in problems:
            print(line)
        return 1 if problems else 0
    written, unchanged = write_all()
    for path in written:
        print(f"wrote {_display(path)}", file=sys.stderr)
    print(f"schemas export: {counted(len(written), 'file')} written, {unchanged} unchanged", file=sys.stderr)
    return 0
