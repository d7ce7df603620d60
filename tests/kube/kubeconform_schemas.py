"""Offline JSON schemas for kubeconform: built-in kinds from the API server, kinds of our CRDs.

kubeconform normally downloads schemas from GitHub, which is unreachable here, and a download
would pin whatever version someone once converted. Instead the built-in kinds come from the
OpenAPI v2 document of the test tier's own kube-apiserver (``/openapi/v2``) and the custom kinds
from ``crds/*.yaml``, converted to the layout kubeconform's ``-schema-location`` template reads:
``{kind}{-group}-{version}.json``, lowercased, group cut at its first dot (as kubeconform's
``KindSuffix``: ``deployment-apps-v1``, ``service-v1``, ``modeldeployment-driftline-v1alpha1``).

The schemas are strict (an object with known properties allows no others) and accept ``null``
wherever a value may be left out, as the "standalone-strict" schemas kubeconform downloads do.
Built-in schemas are cached per Kubernetes version outside the repository.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

CACHE_ROOT = Path(
    os.environ.get("DRIFTLINE_SCHEMA_CACHE", Path.home() / ".cache/driftline/schemas")
)
# Bump when the conversion changes, so cached schemas are regenerated.
FORMAT_VERSION = "1"
REF_PREFIX = "#/definitions/"
BUILTIN_PREFIX = "io.k8s."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
SCHEMA_LOCATION = "{{ .ResourceKind }}{{ .KindSuffix }}.json"

Schema = dict[str, Any]


def schema_file_name(kind: str, group: str, version: str) -> str:
    """The file kubeconform looks for, e.g. ``clusterrole-rbac-v1.json``."""
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind}{suffix}.json".lower()


# Keywords whose value is a schema, a list of schemas, or a map of name -> schema. Only these
# are walked: elsewhere a key like "type" or "anyOf" may be a property's name, not a keyword.
SCHEMA_KEYWORDS = ("items", "not", "additionalProperties")
LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")
MAP_KEYWORDS = ("properties", "patternProperties", "definitions")


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI (v2 or v3 structural) schema as strict, null-tolerant JSON schema.

    - objects with ``properties`` and no ``additionalProperties`` allow no other keys (unless
      ``x-kubernetes-preserve-unknown-fields``);
    - ``int-or-string`` (format or ``x-kubernetes-int-or-string``) accepts both;
    - every ``type`` also accepts ``null``: the API server treats ``key: null`` as absent.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in SCHEMA_KEYWORDS:
        if key in out:
            out[key] = strict(out[key])
    for key in LIST_KEYWORDS:
        if key in out:
            out[key] = [strict(item) for item in out[key]]
    for key in MAP_KEYWORDS:
        if key in out:
            out[key] = {name: strict(value) for name, value in out[key].items()}
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        out.pop("format", None)
        out["anyOf"] = [*out.get("anyOf", [{"type": "string"}, {"type": "integer"}]),
                        {"type": "null"}]  # fmt: skip
    if isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and out.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False
    return out


def _refs(schema: Any) -> Iterable[str]:
    """Definition names ``schema`` refers to (a property named "$ref" is a dict, not a ref)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref.removeprefix(REF_PREFIX)
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def _closure(name: str, definitions: dict[str, Schema]) -> list[str]:
    """Every definition reachable from ``name`` (itself included), recursion allowed."""
    seen: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo.extend(_refs(definitions[current]))
    return seen


def builtin_schemas(openapi_v2: Schema) -> dict[str, Schema]:
    """File name -> schema for every kind of the API server's OpenAPI v2 document.

    Each file holds its kind's schema plus the definitions it reaches, so ``$ref``s (recursive
    ones too, like the CRD's own JSONSchemaProps) resolve inside the file.
    """
    definitions: dict[str, Schema] = copy.deepcopy(openapi_v2["definitions"])
    # A Quantity is written as "100m" or as a bare number (cpu: 1).
    definitions[QUANTITY] = {"anyOf": [{"type": "string"}, {"type": "number"}]}
    converted = {name: strict(schema) for name, schema in definitions.items()}
    files: dict[str, Schema] = {}
    for name, schema in definitions.items():
        # Kinds of CRDs installed in the cluster at the time are not built-in: crd_schemas.
        if not name.startswith(BUILTIN_PREFIX):
            continue
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            file_name = schema_file_name(gvk["kind"], gvk.get("group", ""), gvk["version"])
            body = dict(converted[name])
            body["definitions"] = {dep: converted[dep] for dep in _closure(name, definitions)}
            files[file_name] = body
    return files


def crd_schemas(crd_paths: Iterable[Path]) -> dict[str, Schema]:
    """File name -> schema for every served version of the CRDs in ``crd_paths``."""
    files: dict[str, Schema] = {}
    for path in crd_paths:
        for crd in yaml.safe_load_all(path.read_text()):
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                file_name = schema_file_name(spec["names"]["kind"], spec["group"], version["name"])
                files[file_name] = strict(version["schema"]["openAPIV3Schema"])
    return files


def write_schemas(directory: Path, files: dict[str, Schema]) -> Path:
    """Write ``files`` into ``directory`` (created) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, schema in files.items():
        (directory / file_name).write_text(json.dumps(schema))
    return directory


def cached_builtin_dir(kube_version: str, fetch_openapi_v2: Callable[[], Schema]) -> Path:
    """The cached schema dir of ``kube_version``, generated with ``fetch_openapi_v2()`` once.

    Written to a temporary sibling and renamed into place, so a reader never sees half a
    cache; a leftover of an interrupted run (no ``.complete`` marker) is replaced.
    """
    safe_version = re.sub(r"[^A-Za-z0-9.+-]", "_", kube_version)
    directory = CACHE_ROOT / f"{safe_version}-f{FORMAT_VERSION}"
    if (directory / ".complete").exists():
        return directory
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{directory.name}.", dir=CACHE_ROOT))
    write_schemas(tmp, builtin_schemas(fetch_openapi_v2()))
    (tmp / ".complete").touch()
    shutil.rmtree(directory, ignore_errors=True)
    try:
        tmp.rename(directory)
    except OSError:
        # Another run put its (identical) copy in place first.
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def schema_location(directory: Path) -> str:
    """A ``-schema-location`` value for kubeconform reading ``directory``."""
    return f"{directory}/{SCHEMA_LOCATION}"
