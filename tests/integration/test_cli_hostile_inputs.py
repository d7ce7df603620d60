"""Every subcommand on hostile inputs: a documented exit code and one line, never a traceback.

The real ``driftline`` console script runs on the embedded store (no tracking server), in a
working directory of its own, on files a careless export produces: empty, header only, one row,
a column with no values, a directory, a missing path, binary garbage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CASES = Path(__file__).parents[1] / "cases"

# The README's exit codes: 0 ok, 1 write or unexpected error, 2 usage, 3 unreadable data,
# 4 invalid data, 6 registry refusal, 7 MLflow error, 8 inference log store.
DOCUMENTED = {0, 1, 2, 3, 4, 6, 7, 8}
ADULT_HEADER = "age,workclass,education_num,sex,hours_per_week,income"


def hostile_files(folder: Path) -> dict[str, Path]:
    """Name -> path of each hostile input (all share the Adult-like header where they have one)."""
    rows = [
        f"{20 + i % 50},{'Private' if i % 3 else 'State-gov'},{8 + i % 8},"
        f"{'Male' if i % 2 else 'Female'},{30 + i % 20},{i % 2}"
        for i in range(60)
    ]
    contents = {
        "empty.csv": "",
        "header-only.csv": ADULT_HEADER + "\n",
        "one-row.csv": ADULT_HEADER + "\n" + rows[0] + "\n",
        "all-null-column.csv": ADULT_HEADER + ",nothing\n" + "".join(r + ",\n" for r in rows),
        "garbage.csv": '\x00\x01\x02\xff\xfe,,,\n"unterminated\n',
        "wrong-type.json": "{}",
    }
    out = {}
    for name, text in contents.items():
        path = folder / name
        path.write_bytes(text.encode("latin-1"))
        out[name] = path
    directory = folder / "a-directory.csv"
    directory.mkdir()
    out["a-directory.csv"] = directory
    out["missing.csv"] = folder / "missing.csv"
    return out


@pytest.fixture(scope="module")
def run_cli(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess]:
    home = tmp_path_factory.mktemp("home")
    workdir = tmp_path_factory.mktemp("workdir")
    executable = Path(sys.executable).parent / "driftline"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DRIFTLINE_"))}
    env["DRIFTLINE_HOME"] = str(home)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(executable), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=workdir,
            timeout=300,
        )

    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return hostile_files(tmp_path_factory.mktemp("hostile"))


def assert_one_line_error(done: subprocess.CompletedProcess, allowed: set[int]) -> None:
    shown = f"exit {done.returncode}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr, shown
    assert done.returncode in allowed, shown
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("driftline: ")]
        assert len(errors) == 1 and errors[0].startswith("driftline: error: "), shown
        assert done.stderr.strip().endswith(errors[0]), shown


HOSTILE = [
    "empty.csv",
    "header-only.csv",
    "one-row.csv",
    "all-null-column.csv",
    "garbage.csv",
    "wrong-type.json",
    "a-directory.csv",
    "missing.csv",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_train_on_hostile_data(run_cli, files, name: str) -> None:
    done = run_cli("train", "--data", str(files[name]), "--folds", "2", "--no-register")
    # Only the file with enough rows of both classes trains; its empty column is just unused.
    assert_one_line_error(done, {0} if name == "all-null-column.csv" else {3, 4})


@pytest.mark.parametrize("name", [n for n in HOSTILE if n not in {"garbage.csv", "missing.csv"}])
@pytest.mark.parametrize("side", ["reference", "current"])
def test_drift_check_on_hostile_files(run_cli, files, tmp_path: Path, name: str, side) -> None:
    good = files["all-null-column.csv"]
    paths = {"reference": good, "current": good, side: files[name]}
    done = run_cli(
        "drift-check",
        "--reference",
        str(paths["reference"]),
        "--current",
        str(paths["current"]),
        "--min-samples",
        "1",
        "--output-dir",
        str(tmp_path / "report"),
    )
    # One reference row is enough with --min-samples 1; one current row lacks the column
    # `nothing` that the reference has.
    ok = name == "all-null-column.csv" or (side == "reference" and name == "one-row.csv")
    assert_one_line_error(done, {0} if ok else {3, 4})


def test_the_handed_empty_reference_column_case_exits_zero(run_cli, tmp_path: Path) -> None:
    case = CASES / "empty-reference-column"
    done = run_cli(
        "drift-check",
        "--reference",
        str(case / "reference-y-all-empty.csv"),
        "--current",
        str(case / "current.csv"),
        "--output-dir",
        str(tmp_path),
    )
    assert_one_line_error(done, {0})
    assert "y                    not testable: the reference has no values" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("register", "--run-id", "no-such-run"),
        ("models",),
        ("promote",),
        ("rollback",),
        ("promote", "--version", "999"),
        ("drift-check", "--log-store", "sqlite:////no/such/log.db", "--version", "1"),
        ("retrain-if-drifted", "--log-store", "postgresql://127.0.0.1:9/x", "--version", "1"),
        ("serve", "--log-store", "sqlite:////proc/no-such-dir/log.db", "--port", "0"),
        ("drift-check", "--reference", "x.csv", "--current", "y.csv", "--lookback", "0h"),
        ("drift-check", "--log-store", "sqlite:///x.db", "--lookback", "soon"),
    ],
    ids=lambda args: " ".join(args),
)
def test_commands_on_hostile_arguments(run_cli, args: tuple[str, ...]) -> None:
    assert_one_line_error(run_cli(*args), DOCUMENTED - {0})
