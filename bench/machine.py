"""What the benchmarks ran on: CPU, memory, versions, date and load."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness import package_digest


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _licence(distribution: str) -> str:
    try:
        fields = metadata.metadata(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
    return fields["License-Expression"] or fields["License"] or "unknown"


def _source_revision() -> str:
    """The repository's commit, and whether src/ has changes not committed yet (read-only git)."""
    repository = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} with uncommitted changes in src/" if changes else commit


def source_digest() -> str:
    """The digest of the plugin's source in the working tree, to tell whether it changed."""
    import pytest_sqlaperf

    return package_digest(Path(pytest_sqlaperf.__file__).resolve().parent)


def _socket_directory(admin_url: str) -> str:
    from sqlalchemy.engine import make_url

    host = make_url(admin_url).query.get("host", "")
    return host if isinstance(host, str) else ",".join(host)


def describe(postgresql: str, admin_url: str) -> dict[str, Any]:
    """The machine and software versions; ``postgresql`` is the server's version string."""
    socket_directory = _socket_directory(admin_url)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pytest": _version("pytest"),
        "pytest_asyncio": _version("pytest-asyncio"),
        "sqlalchemy": _version("sqlalchemy"),
        "psycopg": _version("psycopg"),
        "asyncpg": _version("asyncpg"),
        "postgresql": postgresql,
        "postgresql_socket": socket_directory,
        "postgresql_on_tmpfs": socket_directory.startswith("/dev/shm/"),
        "pytest_sqlaperf": _version("pytest-sqlaperf"),
        "pytest_sqlaperf_licence": _licence("pytest-sqlaperf"),
        "source_revision": _source_revision(),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews the figures)."""
    return [round(value, 2) for value in os.getloadavg()]
