"""Each image's own dependency group imports every module that image runs.

The test tiers run from the full dev venv, where every group is installed, so a module an
image needs but its group lacks goes unnoticed until the image runs. Here each group is
installed alone (project dependencies + that group, constrained by requirements.lock) into a
venv of its own, and ``tests/integration/image_probe.py`` imports the image's entry points
with its production settings inside it.

The venvs are cached under ``~/.cache/driftline/group-venvs``, keyed by a hash of
pyproject.toml and requirements.lock: a warm run reinstalls nothing. The project itself is
not installed there; its source folders go on PYTHONPATH, as the image holds all of them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.integration.image_probe import IMAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "driftline/group-venvs"
SOURCE_ROOTS = ("shared", "trainer_image", "inference_image", "operator", "cli")
INSTALL_TIMEOUT = 1800
PROBE_TIMEOUT = 300

pytestmark = pytest.mark.integration


def group_requirements(extra: str) -> list[str]:
    """The project's own dependencies plus one optional group, from pyproject.toml."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"][extra]]


def group_venv(extra: str) -> Path:
    """A venv holding only ``extra``'s requirements; built once per pyproject + lock."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements.lock"):
        digest.update((REPO_ROOT / name).read_bytes())
    venv = CACHE / f"{extra}-{digest.hexdigest()[:16]}"
    if (venv / ".complete").exists():
        return venv
    building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    pip = [str(building / "bin/python"), "-m", "pip", "install", "-q"]
    pip += ["--disable-pip-version-check", "-c", str(REPO_ROOT / "requirements.lock")]
    subprocess.run([*pip, *group_requirements(extra)], check=True, timeout=INSTALL_TIMEOUT)
    (building / ".complete").touch()
    try:
        building.rename(venv)
    except OSError:
        # Another run finished the same venv first; theirs is as good as ours.
        shutil.rmtree(building, ignore_errors=True)
    return venv


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_group_imports_what_the_image_runs(image: str, tmp_path: Path) -> None:
    venv = group_venv(IMAGES[image].extra)
    paths = [str(REPO_ROOT), *(str(REPO_ROOT / root) for root in SOURCE_ROOTS)]
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONNOUSERSITE": "1",
    }
    probe = subprocess.run(
        [str(venv / "bin/python"), "-m", "tests.integration.image_probe", image],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
    )
    assert probe.returncode == 0, f"{image} image ({IMAGES[image].extra} group):\n{probe.stderr}"
