"""Scripts under ``scripts/`` as modules, for tests that check what they generate or print."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@cache
def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` by path (``scripts/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"driftline_{name}_script", SCRIPTS / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_manifests_script() -> ModuleType:
    """``scripts/manifests.py``."""
    return load_script("manifests")
