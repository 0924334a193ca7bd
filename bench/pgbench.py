"""pgbench, run on one script against a database URL: the raw-Postgres side of a benchmark."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


@dataclass
class PgbenchRun:
    tps: float
    latency_ms: float  # the mean: pgbench prints no percentiles without a per-transaction log
    transactions: int
    interval_tps: list[float] = field(default_factory=list)  # every `progress` seconds, if asked


def pgbench(
    url: str, script: str, *, seconds: float, concurrency: int, progress: int | None = None
) -> PgbenchRun:
    """`script` with -M prepared from `concurrency` clients for `seconds`; any failed
    transaction is an error, not a figure. With `progress`, also the tps of each interval of
    that many seconds."""
    params = conninfo_to_dict(url)
    env = {
        **os.environ,
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGUSER": str(params["user"]),
        "PGPASSWORD": str(params.get("password", "")),
        "PGDATABASE": str(params["dbname"]),
    }
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as folder:
        path = Path(folder) / "script.sql"
        path.write_text(script)
        command = [
            PGBENCH,
            "-n",
            "-M", "prepared",
            "-c", str(concurrency),
            "-j", str(min(2, concurrency)),
            "-T", str(max(1, round(seconds))),
            "-f", str(path),
            *(["-P", str(progress)] if progress else []),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    tps = re.search(r"^tps = ([\d.]+)", done.stdout, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", done.stdout, re.MULTILINE)
    processed = re.search(r"^number of transactions actually processed: (\d+)", done.stdout, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not (tps and latency and processed) or (failed and failed[1] != "0"):
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    intervals = [
        float(t) for t in re.findall(r"^progress: [\d.]+ s, ([\d.]+) tps", done.stderr, re.M)
    ]
    return PgbenchRun(float(tps[1]), float(latency[1]), int(processed[1]), intervals)
