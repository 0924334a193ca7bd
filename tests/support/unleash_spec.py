"""Unleash's client specification, the oracle for the feature flag rules, fetched from npm.

The package is downloaded once per version into the user's cache (outside the repository: its
text is Unleash's, not ours) and read from there by every later run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@unleash/client-specification"
VERSION = "6.1.0"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "easymo-backend"


def specification_dir(version: str = VERSION) -> Path:
    """The package's specifications/ folder (01-simple-examples.json, ...), fetched if absent."""
    target = cache_root() / f"unleash-client-specification-{version}"
    specifications = target / "package" / "specifications"
    if (specifications / "index.json").is_file():
        return specifications
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch Unleash's client specification: install npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        packed = subprocess.run(
            [npm, "pack", "--silent", f"{PACKAGE}@{version}"],
            cwd=scratch,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout.split()[-1]
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(Path(scratch) / packed) as archive:
            archive.extractall(unpacked, filter="data")
        if not (unpacked / "package" / "specifications" / "index.json").is_file():
            raise RuntimeError(f"{PACKAGE}@{version} has no specifications/index.json")
        # Whole or not at all: a rename, so a run killed mid-way leaves no half package.
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return specifications
