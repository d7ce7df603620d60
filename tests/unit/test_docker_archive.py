"""scripts/cluster/docker_archive.py: the ``docker save`` packer of the local cluster's images."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import sys
import tarfile
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster" / "docker_archive.py"


@cache
def packer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("driftline_docker_archive", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (root / "bin" / "alias").symlink_to("tool")
    return root


def build(rootfs: Path, out: Path, **config: object) -> str:
    mod = packer()
    diff_id: str = mod.build_archive(rootfs, "localhost/x/tool:1.0", out, mod.ImageConfig(**config))
    return diff_id


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_archive_has_manifest_config_and_layer(rootfs: Path, tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    diff_id = build(rootfs, out, entrypoint=["/bin/tool"], env=["PATH=/bin"], user="65534")
    files = members(out)
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {
            "Config": manifest[0]["Config"],
            "RepoTags": ["localhost/x/tool:1.0"],
            "Layers": [diff_id.removeprefix("sha256:") + "/layer.tar"],
        }
    ]
    layer = files[manifest[0]["Layers"][0]]
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == diff_id
    config_bytes = files[manifest[0]["Config"]]
    assert hashlib.sha256(config_bytes).hexdigest() + ".json" == manifest[0]["Config"]
    config = json.loads(config_bytes)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert config["config"]["Entrypoint"] == ["/bin/tool"]
    assert config["config"]["Env"] == ["PATH=/bin"]
    assert config["config"]["User"] == "65534"
    assert "Cmd" not in config["config"]
    assert (config["os"], config["architecture"]) == ("linux", "amd64")


def test_layer_keeps_modes_symlinks_and_normalises_owner_and_time(
    rootfs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "img.tar"
    diff_id = build(rootfs, out)
    layer = members(out)[diff_id.removeprefix("sha256:") + "/layer.tar"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        entries = {m.name: m for m in tar.getmembers()}
    assert list(entries) == ["bin", "bin/alias", "bin/tool", "etc", "etc/passwd"]
    assert entries["bin/tool"].mode == 0o755
    assert entries["bin/alias"].issym() and entries["bin/alias"].linkname == "tool"
    assert entries["bin"].isdir()
    assert {(m.uid, m.gid, m.mtime) for m in entries.values()} == {(0, 0, 0)}


def test_same_inputs_give_identical_bytes(rootfs: Path, tmp_path: Path) -> None:
    build(rootfs, tmp_path / "a.tar", cmd=["/bin/sh"])
    (rootfs / "etc" / "passwd").touch()  # a new mtime must not change the image
    build(rootfs, tmp_path / "b.tar", cmd=["/bin/sh"])
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_reference_without_tag_is_refused(rootfs: Path, tmp_path: Path) -> None:
    mod = packer()
    with pytest.raises(ValueError, match="needs a tag"):
        mod.build_archive(rootfs, "localhost:5000/x/tool", tmp_path / "o.tar", mod.ImageConfig())


def test_special_files_are_refused(rootfs: Path, tmp_path: Path) -> None:
    os.mkfifo(rootfs / "fifo")
    with pytest.raises(ValueError, match="only files, directories and symlinks"):
        build(rootfs, tmp_path / "img.tar")
    assert not (tmp_path / "img.tar").exists()


def test_command_line(rootfs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.tar"
    code = packer().main(
        [str(rootfs), "localhost/x/tool:2", str(out), "--cmd", '["/bin/tool"]', "--env", "A=b"]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("localhost/x/tool:2 sha256:")
    with pytest.raises(SystemExit):
        packer().main([str(rootfs), "localhost/x/tool:2", str(out), "--cmd", '{"a": 1}'])
    assert packer().main([str(tmp_path / "absent"), "x/y:1", str(out)]) == 1
