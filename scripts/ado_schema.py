"""Check Azure DevOps pipeline YAML offline: Microsoft's schema, template references, red-means-red.

The schema is Microsoft's `service-schema.json` (in-box tasks only), vendored byte-identical by
check-jsonschema as `builtin_schemas/vendor/azure-pipelines.json`, so nothing is downloaded. Used
as is, it rejects valid pipelines: it types many booleans and numbers as strings
(`definitions/boolean` accepts only the strings "true"/"false"...) and uses a non-standard
`ignoreCase` keyword (python-jsonschema/check-jsonschema#42, #238, #403;
microsoft/azure-pipelines-vscode#446). So the validator here lets YAML booleans and numbers
satisfy `"type": "string"`, compares them as strings in `pattern` and `enum`, honours
`ignoreCase`, and first unnests `${{ }}` template expressions with check-jsonschema's own
azure-pipelines transform. A typo'd key, a missing required task input, a wrong enum value and a
marketplace task are still errors.

    python scripts/ado_schema.py ado_pipelines        # exit 1 and one line per problem

Needs the dev extra (check-jsonschema, jsonschema). A CI and test tool, not part of the runtime package.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

FORBIDDEN_SCRIPT = re.compile(r"\|\|\s*(true|:)\b|\|\|\s*exit\s+0\b|set\s+\+e\b")
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell", "inlineScript")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=2)
def validator_class(root: str | None = None) -> Any:
    """A Draft-7 validator for Microsoft's schema with the string relaxation described above;
    `root` names a definition to validate against instead of a whole pipeline (a variables
    template matches none of the pipeline shapes, only `#/definitions/variablesTemplate`)."""
    import importlib.resources

    from jsonschema import Draft7Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, regex: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "string"):
            return
        flags = re.IGNORECASE if schema.get("ignoreCase") == "value" else 0
        if not re.search(regex, _text(instance), flags):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    def enum(validator: Any, enums: list[Any], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if instance in enums:
            return
        if isinstance(instance, str | bool | int | float):
            fold = schema.get("ignoreCase") == "value"
            wanted = {(_text(e).lower() if fold else _text(e)) for e in enums}
            if (_text(instance).lower() if fold else _text(instance)) in wanted:
                return
        yield ValidationError(f"{instance!r} is not one of {enums!r}")

    types = Draft7Validator.TYPE_CHECKER.redefine(
        "string", lambda checker, instance: isinstance(instance, str | bool | int | float)
    )
    schema_text = (
        importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("azure-pipelines.json").read_text()
    )
    cls = validators.extend(Draft7Validator, validators={"pattern": pattern, "enum": enum}, type_checker=types)
    schema = json.loads(schema_text)
    if root is not None:
        schema = {"$ref": f"#/definitions/{root}", "definitions": schema["definitions"]}
    return cls(schema)


PIPELINE_KEYS = {"stages", "jobs", "steps", "extends", "phases"}


def schema_root(data: Any) -> str | None:
    """Which shape a file has: a pipeline or stage/job/step template (None: the whole schema), or
    a variables template (only `variables` and `parameters` at the top)."""
    if isinstance(data, dict) and "variables" in data and not PIPELINE_KEYS & set(data):
        return "variablesTemplate"
    return None


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def schema_errors(data: Any) -> list[str]:
    """Schema problems of one parsed pipeline or template, as 'at <path>: <message>' lines.

    Microsoft's schema is a big `anyOf`; the best-matching branch's errors are reported."""
    from check_jsonschema.transforms.azure_pipelines import traverse_data
    from jsonschema.exceptions import best_match

    errors = list(validator_class(schema_root(data)).iter_errors(traverse_data(data)))
    if not errors:
        return []
    out = []
    for err in errors:
        leaf = best_match([err])
        where = "/".join(str(p) for p in leaf.absolute_path) or "<root>"
        out.append(f"at {where}: {leaf.message[:300]}")
    return out


def template_references(data: Any) -> list[str]:
    """Every `template:` value (steps, jobs, stages, variables, extends), in document order."""
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "template" and isinstance(value, str):
                    refs.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return refs


def unresolved_templates(path: Path, data: Any) -> list[str]:
    """Template references that do not name a file. Azure DevOps resolves a relative template path
    against the file that references it; `@repo` references (other repositories) are refused too,
    since this project keeps its templates in-repo."""
    problems = []
    for ref in template_references(data):
        if "@" in ref:
            problems.append(f"template {ref!r} lives in another repository; keep templates in this one")
            continue
        if "${{" in ref:
            problems.append(f"template {ref!r} is computed; use a literal path so it can be checked")
            continue
        target = (Path(path).parent / ref.lstrip("/")) if not ref.startswith("/") else None
        if target is None or not target.is_file():
            problems.append(f"template {ref!r} not found (looked for {target})")
    return problems


def masked_failures(data: Any) -> list[str]:
    """What turns red into green: `continueOnError` anywhere, or `|| true` (and friends) in a script."""
    problems: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}/{key}"
                if key == "continueOnError":
                    problems.append(f"at {here}: continueOnError hides failures")
                if key in SCRIPT_KEYS and isinstance(value, str) and FORBIDDEN_SCRIPT.search(value):
                    problems.append(f"at {here}: the script masks a failure ({FORBIDDEN_SCRIPT.search(value)[0]!r})")
                walk(value, here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}/{i}")

    walk(data, "")
    return problems


def check_file(path: Path) -> list[str]:
    """Every problem of one file: schema, templates, masked failures."""
    try:
        data = load_yaml(path)
    except yaml.YAMLError as exc:
        return [f"not YAML: {exc}"]
    return schema_errors(data) + unresolved_templates(path, data) + masked_failures(data)


def pipeline_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    folders = [Path(a) for a in args] or [Path("ado_pipelines")]
    files = [f for folder in folders for f in (pipeline_files(folder) if folder.is_dir() else [folder])]
    if not files:
        print(f"no pipeline YAML under {', '.join(map(str, folders))}", file=sys.stderr)
        return 1
    bad = 0
    for f in files:
        for problem in check_file(f):
            print(f"{f}: {problem}")
            bad += 1
    print(f"{len(files)} file(s) checked, {bad} problem(s)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
