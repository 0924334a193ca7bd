"""KEY=value files a shell can source and pydantic-settings can read (the local stack writes
`.local/stack.env`; settings read it when the environment lacks a value)."""

from __future__ import annotations

import os
from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def write_env_file(path: Path, values: dict[str, str], header: str) -> None:
    """Written whole and renamed into place, readable by its owner only: it holds secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={value}" for key, value in values.items()]
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(partial, 0o600)
    partial.replace(path)
