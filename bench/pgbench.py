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
    # Each transaction's latency, when asked (`latencies=True`: pgbench's per-transaction log).
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0 to 100) of the logged latencies, in ms."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def pgbench(
    url: str,
    script: str,
    *,
    seconds: float,
    concurrency: int,
    progress: int | None = None,
    defines: dict[str, str] | None = None,
    latencies: bool = False,
) -> PgbenchRun:
    """`script` with -M prepared from `concurrency` clients for `seconds`; any failed
    transaction is an error, not a figure. With `progress`, also the tps of each interval of
    that many seconds. `defines` are -D variables, each client's own from its first
    transaction on (a script can count with them: `\\set n :n + 1`). With `latencies`, each
    transaction's latency too (pgbench -l)."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as folder:
        path = Path(folder) / "script.sql"
        path.write_text(script)
        options = [
            "-n",
            "-f", str(path),
            *[f"-D{name}={value}" for name, value in (defines or {}).items()],
            *(["-l", f"--log-prefix={Path(folder) / 'log'}"] if latencies else []),
        ]  # fmt: skip
        run = _run(url, options, seconds=seconds, concurrency=concurrency, progress=progress)
        if latencies:
            # Each line: client, transaction, latency in microseconds, script, epoch, microseconds.
            run.latencies_ms = [
                int(line.split()[2]) / 1000
                for log in Path(folder).glob("log.*")
                for line in log.read_text().splitlines()
            ]
        return run


def pgbench_builtin(url: str, *, seconds: float, concurrency: int) -> PgbenchRun:
    """pgbench's own TPC-B script (`-b tpcb-like`) with -M prepared, on the tables
    `pgbench_init` made; pgbench vacuums them first, as a plain `pgbench -T` run does."""
    return _run(url, ["-b", "tpcb-like"], seconds=seconds, concurrency=concurrency, progress=None)


def pgbench_init(url: str, *, scale: int) -> None:
    """`pgbench -i -s scale`: pgbench's tables, 100,000 accounts per unit of scale."""
    done = subprocess.run(
        [PGBENCH, "-i", "-q", "-s", str(scale)],
        env=_environment(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench -i failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _environment(url: str) -> dict[str, str]:
    params = conninfo_to_dict(url)
    return {
        **os.environ,
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGUSER": str(params["user"]),
        "PGPASSWORD": str(params.get("password", "")),
        "PGDATABASE": str(params["dbname"]),
    }


def _run(
    url: str, options: list[str], *, seconds: float, concurrency: int, progress: int | None
) -> PgbenchRun:
    command = [
        PGBENCH,
        "-M", "prepared",
        "-c", str(concurrency),
        "-j", str(min(2, concurrency)),
        "-T", str(max(1, round(seconds))),
        *options,
        *(["-P", str(progress)] if progress else []),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=_environment(url), capture_output=True, text=True, check=False
    )
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
