"""Run inside a venv holding one image's dependency group: import what that image runs.

``python -m tests.integration.image_probe IMAGE`` starts from the image's entry modules and
follows every import of first-party code (module level and inside functions, leaving out
``if TYPE_CHECKING:`` blocks), importing each module reached and each third-party module
named; then it builds the image's store engine from its production settings (a PostgreSQL
URL in the environment: the driver is loaded, no server is needed). Exit 0 when everything
imported; otherwise one line per failure on stderr and exit 1.

Standard library only at module level: the venv under test has nothing else for certain.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

FIRST_PARTY = ("driftline", "driftline_cli", "driftline_operator", "driftline_serving")
FIRST_PARTY += ("driftline_training",)
# The PostgreSQL URL each image's production settings carry (the chart and prod overlay).
POSTGRES_URL = "postgresql://driftline:secret@127.0.0.1:9/driftline"


def _operator_engine() -> None:
    from driftline_operator.prediction_log import PredictionLog
    from driftline_operator.settings import OperatorSettings

    url = OperatorSettings().health_log_store
    assert url == os.environ["DRIFTLINE_HEALTH_LOG_STORE"], url
    PredictionLog(url)


def _serving_engine() -> None:
    from driftline.inference_log import engine_for
    from driftline_serving.settings import ServingSettings

    engine_for(ServingSettings().log_store_url())


def _trainer_engine() -> None:
    from driftline.inference_log import engine_for

    engine_for(os.environ["DRIFTLINE_LOG_STORE"])


@dataclass(frozen=True)
class Image:
    """What one image runs and the settings it runs with."""

    extra: str
    entries: tuple[str, ...]
    packages: tuple[str, ...]
    env: dict[str, str]
    engine: Callable[[], None]
    # Third-party modules reached only through an option that needs another extra.
    optional: frozenset[str] = field(default_factory=frozenset)


IMAGES = {
    "operator": Image(
        "operator",
        # `driftline operator`, and `driftline promote` which the operator runs as a child.
        ("driftline_cli.main", "driftline_cli.operator_cmd", "driftline_cli.registry_cmd"),
        ("driftline_operator",),
        {"DRIFTLINE_HEALTH_LOG_STORE": POSTGRES_URL},
        _operator_engine,
        # Rollout analysis scores PSI and the KS statistic (numpy); the p-values of
        # driftline.stattests, scipy's, are the drift check's, in the trainer image.
        frozenset({"scipy"}),
    ),
    "inference": Image(
        "serving",
        ("driftline_cli.main", "driftline_cli.serve_cmd"),
        ("driftline_serving",),
        {"DRIFTLINE_LOG_STORE": POSTGRES_URL},
        _serving_engine,
        # `--runtime native` and explanations: the `native` extra (EXTRAS=serving,native).
        frozenset({"pandas", "sklearn", "xgboost", "skops", "mlflow.sklearn"}),
    ),
    "trainer": Image(
        "training",
        # `driftline train` and `drift-check`, `retrain-if-drifted` (the operator's Jobs).
        ("driftline_cli.main", "driftline_cli.train_cmd", "driftline_cli.drift_cmd"),
        ("driftline_training",),
        {"DRIFTLINE_LOG_STORE": POSTGRES_URL},
        _trainer_engine,
    ),
}


def package_modules(package: str) -> Iterator[str]:
    """Every module of a first-party package, found on disk."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        yield ".".join((package, *parts)).removesuffix(".__init__")


def imported_names(path: Path) -> set[str]:
    """Absolute module names a source file imports anywhere but under ``if TYPE_CHECKING``."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            # ``from package import module`` names a module too.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def probe(image: Image) -> list[str]:
    """Import the closure of the image's modules; the failures, one line each."""
    failures: list[str] = []
    todo = [*image.entries, *(m for p in image.packages for m in package_modules(p))]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] == "__future__":
            continue
        seen.add(name)
        first_party = name.split(".")[0] in FIRST_PARTY
        if not first_party and (name in image.optional or name.split(".")[0] in image.optional):
            continue
        if not first_party and importlib.util.find_spec(name.split(".")[0]) is None:
            failures.append(f"{name}: no module {name.split('.')[0]!r}")
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # ``from package import attribute`` is not a module: only the package must import.
            if exc.name == name and "." in name:
                continue
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if first_party and module.__file__:
            todo.extend(imported_names(Path(module.__file__)))
    try:
        image.engine()
    except Exception as exc:
        failures.append(f"store engine: {type(exc).__name__}: {exc}")
    return failures


def main(argv: list[str]) -> int:
    """Probe the image named in ``argv``; print what failed."""
    image = IMAGES[argv[0]]
    os.environ.update(image.env)
    failures = probe(image)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
