"""Pack a root filesystem directory into a one-layer image in the ``docker save`` format.

The local cluster has no registry to pull from, so its images (pause, CoreDNS,
metrics-server, a busybox tool image) are made from files on this machine and loaded with
``ctr -n k8s.io images import``. The archive holds:

- ``<layer-digest>/layer.tar``: the root filesystem, with sorted entries, owner root and a
  fixed modification time, so the same inputs always give the same bytes (and digest);
- ``<config-digest>.json``: the image configuration (entrypoint, command, environment,
  working directory, user) naming the layer by its digest;
- ``manifest.json``: the list ``docker load`` and containerd read, with the image's tag.

Usage::

    python3 docker_archive.py ROOTFS REF OUT.tar [--entrypoint JSON] [--cmd JSON]
                              [--env K=V ...] [--workdir DIR] [--user USER]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Every entry gets this modification time: a rebuild from the same files is byte-identical.
FIXED_MTIME = 0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageConfig:
    """What the container runtime needs to start the image's process."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = ""


def _walk(directory: Path) -> Iterator[Path]:
    """Every path under ``directory``, depth first in name order (as ``tar`` lists them)."""
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        yield path
        if path.is_dir() and not path.is_symlink():
            yield from _walk(path)


def _tar_info(path: Path, arcname: str) -> tarfile.TarInfo:
    """A normalised header: owner root, fixed mtime, the file's own mode and type."""
    st = path.lstat()
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = FIXED_MTIME
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    else:
        raise ValueError(f"{path}: only files, directories and symlinks can go in an image")
    return info


def write_layer(rootfs: Path, out: IO[bytes]) -> str:
    """Write ``rootfs`` as a layer tar to ``out``; return its digest (``sha256:<hex>``)."""
    if not rootfs.is_dir():
        raise NotADirectoryError(f"{rootfs}: not a directory")
    digest = _HashingWriter(out)
    with tarfile.open(fileobj=digest, mode="w|", format=tarfile.PAX_FORMAT) as layer:
        for path in _walk(rootfs):
            info = _tar_info(path, path.relative_to(rootfs).as_posix())
            if info.isreg():
                with path.open("rb") as data:
                    layer.addfile(info, data)
            else:
                layer.addfile(info)
    return "sha256:" + digest.hexdigest()


class _HashingWriter(io.RawIOBase):
    """A write-only stream that forwards to ``out`` and hashes what passes through."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._sha.update(view)
        self._out.write(view)
        return len(view)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def config_document(config: ImageConfig, diff_id: str) -> dict[str, Any]:
    """The image configuration (OCI/Docker image spec) for one layer with ``diff_id``."""
    container_config: dict[str, Any] = {"Env": config.env, "WorkingDir": config.workdir}
    if config.entrypoint:
        container_config["Entrypoint"] = config.entrypoint
    if config.cmd:
        container_config["Cmd"] = config.cmd
    if config.user:
        container_config["User"] = config.user
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "driftline docker_archive.py"}],
    }


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def build_archive(rootfs: Path, ref: str, out: Path, config: ImageConfig) -> str:
    """Write the ``docker save`` archive of ``rootfs`` tagged ``ref`` to ``out``.

    The archive is written next to ``out`` and renamed into place, so a reader never sees
    half an image. Returns the layer digest.
    """
    if ":" not in ref.rsplit("/", 1)[-1]:
        raise ValueError(f"{ref!r}: the image reference needs a tag (name:tag)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".archive-") as work:
        layer_path = Path(work) / "layer.tar"
        with layer_path.open("wb") as layer_out:
            diff_id = write_layer(rootfs, layer_out)
        config_bytes = json.dumps(config_document(config, diff_id), sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
        manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
        partial = Path(work) / "image.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            layer_info = archive.gettarinfo(str(layer_path), arcname=layer_name)
            layer_info.mtime = FIXED_MTIME
            layer_info.uid = layer_info.gid = 0
            layer_info.uname = layer_info.gname = ""
            with layer_path.open("rb") as data:
                archive.addfile(layer_info, data)
            _add_bytes(archive, config_name, config_bytes)
            _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        partial.replace(out)
    return diff_id


def _json_list(text: str) -> list[str]:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a JSON list of strings")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints the reference and layer digest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("ref", help="image reference with a tag, e.g. localhost/x/pause:3.10")
    parser.add_argument("out", type=Path)
    parser.add_argument("--entrypoint", type=_json_list, default=[])
    parser.add_argument("--cmd", type=_json_list, default=[])
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument("--workdir", default="/")
    parser.add_argument("--user", default="")
    args = parser.parse_args(argv)
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env {item!r}: expected K=V")
    config = ImageConfig(args.entrypoint, args.cmd, args.env, args.workdir, args.user)
    try:
        diff_id = build_archive(args.rootfs, args.ref, args.out, config)
    except (OSError, ValueError) as exc:
        print(f"docker_archive: {exc}", file=sys.stderr)
        return 1
    print(f"{args.ref} {diff_id} {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
