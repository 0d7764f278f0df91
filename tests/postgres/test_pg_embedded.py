"""The embedded server's lifecycle: start, stop, privilege drop, cluster cache, failures."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from pg_helpers import needs_root, process_uid, server_processes

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres import account, clustercache
from pytest_sqlaperf.postgres.account import resolve_run_as
from pytest_sqlaperf.postgres.binaries import PgBinaries, find_binaries
from pytest_sqlaperf.postgres.clustercache import copy_tree
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
from pytest_sqlaperf.postgres.rundir import process_start_time
from pytest_sqlaperf.postgres.server import new_run_id


def expected_server_uid() -> int:
    return pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()


def postmaster_pid(server: EmbeddedServer) -> int:
    assert server.directory is not None
    return int((server.directory / "data" / "postmaster.pid").read_text().split()[0])


@pytest.mark.parametrize("major", [16, 18])
def test_start_and_stop(bundled: list[PgBinaries], cluster_cache: Path, major: int) -> None:
    binaries = next(found for found in bundled if found.major == major)
    server = EmbeddedServer(binaries, run_id=new_run_id(), cache_dir=cluster_cache)
    info = server.start()
    directory = server.directory
    try:
        assert directory is not None
        assert directory.name == f"sqlaperf-{server.run_id}"
        assert info.backend == "embedded"
        assert info.version.startswith(f"{major}.")
        assert str(directory) in info.description
        assert f"PostgreSQL {binaries.version}" in info.description
        assert info.admin_url == (
            f"postgresql+psycopg://postgres@/postgres?host={directory}/sock&port=5432"
        )
        processes = server_processes(directory)
        assert len(processes) > 1  # the postmaster and its auxiliary processes
        assert {process_uid(pid) for pid in processes} == {expected_server_uid()}
        assert directory.stat().st_mode & 0o777 == 0o700
        assert directory.stat().st_uid == expected_server_uid()
        # Ctrl-C reaches pytest's process group only; the server has a session of its own.
        assert os.getsid(postmaster_pid(server)) != os.getsid(0)
        with psycopg.connect(host=f"{directory}/sock", user="postgres", dbname="postgres") as conn:
            settings = dict(conn.execute("SELECT name, setting FROM pg_settings").fetchall())
        assert settings["listen_addresses"] == ""
        assert settings["fsync"] == "off"
        assert settings["dynamic_shared_memory_type"] == "mmap"
    finally:
        server.stop()
    assert not directory.exists()
    assert server_processes(directory) == []
    server.stop()  # idempotent


def test_stop_before_start_is_harmless(pg16: PgBinaries) -> None:
    EmbeddedServer(pg16, run_id=new_run_id()).stop()


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_cluster_cache_is_fresh_initdb_output_and_reused(pg16: PgBinaries, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    abandoned = cache / f".building-{dead_pid()}-1-0000"  # a run killed while storing
    abandoned.mkdir(parents=True)
    first = EmbeddedServer(pg16, run_id=new_run_id(), cache_dir=cache)
    first.start()
    first.stop()
    [entry] = cache.iterdir()
    assert entry.name.startswith(f"pg{pg16.version}-")
    assert not (entry / "postmaster.pid").exists()
    control = subprocess.run(
        [str(pg16.bindir / "pg_controldata"), str(entry)], capture_output=True, text=True
    )
    assert "Database cluster state:               shut down" in control.stdout
    # A file only the cache entry has proves the second cluster was copied from it.
    (entry / "copied-from-cache").write_text("yes")
    second = EmbeddedServer(pg16, run_id=new_run_id(), cache_dir=cache)
    second.start()
    try:
        assert second.directory is not None
        assert (second.directory / "data" / "copied-from-cache").exists()
    finally:
        second.stop()
    assert [path.name for path in cache.iterdir()] == [entry.name]


@pytest.mark.parametrize("cp", ["cp", "missing", "failing"])
def test_copy_tree_keeps_links_and_modes_with_or_without_cp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cp: str
) -> None:
    source = tmp_path / "source"
    (source / "base" / "1").mkdir(parents=True)
    (source / "base" / "1" / "112").write_bytes(b"page" * 2048)
    (source / "PG_VERSION").write_text("16\n")
    (source / "PG_VERSION").chmod(0o600)
    (source / "pg_wal").symlink_to("base")
    if cp != "cp":
        replacement = None if cp == "missing" else shutil.which("false")
        monkeypatch.setattr(clustercache.shutil, "which", lambda name: replacement)
    copy = tmp_path / "copy"
    copy_tree(source, copy)
    assert (copy / "base" / "1" / "112").read_bytes() == b"page" * 2048
    assert (copy / "PG_VERSION").stat().st_mode & 0o777 == 0o600
    assert os.readlink(copy / "pg_wal") == "base"
    assert sorted(path.relative_to(copy) for path in copy.rglob("*")) == sorted(
        path.relative_to(source) for path in source.rglob("*")
    )
    # Never into (or over) an existing directory, which cp -R would copy into.
    with pytest.raises(FileExistsError):
        copy_tree(source, copy)
    assert not (copy / "source").exists()
    assert (copy / "PG_VERSION").exists()


@needs_root
@pytest.mark.parametrize("tool", ["chown", "walk"])
def test_chown_tree_gives_the_tree_and_nothing_it_links_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("")
    tree = tmp_path / "tree"
    (tree / "base" / "1").mkdir(parents=True)
    (tree / "base" / "1" / "112").write_text("")
    (tree / "link").symlink_to(outside)
    if tool == "walk":
        monkeypatch.setattr(account.shutil, "which", lambda name: None)
    run_as = resolve_run_as("nobody")
    run_as.chown_tree(tree)
    for path in (tree, tree / "base", tree / "base" / "1", tree / "base" / "1" / "112"):
        assert (path.lstat().st_uid, path.lstat().st_gid) == (run_as.uid, run_as.gid)
    assert (tree / "link").lstat().st_uid == run_as.uid
    assert outside.stat().st_uid == 0


def test_unusable_cache_dir_only_costs_time(pg16: PgBinaries, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    server = EmbeddedServer(pg16, run_id=new_run_id(), cache_dir=tmp_path / "file" / "cache")
    server.start()
    server.stop()


def test_start_failure_quotes_the_server_log(pg16: PgBinaries, cluster_cache: Path) -> None:
    server = EmbeddedServer(
        pg16,
        run_id=new_run_id(),
        cache_dir=cluster_cache,
        settings={"shared_buffers": "plenty"},
    )
    with pytest.raises(SqlaperfError) as raised:
        server.start()
    message = str(raised.value)
    assert "PostgreSQL exited with code" in message
    assert 'invalid value for parameter "shared_buffers": "plenty"' in message
    assert "--sqlaperf-url" in message
    assert server.directory is None
    assert not list(Path("/dev/shm").glob(f"sqlaperf-{server.run_id}"))


def test_run_id_clash_is_refused(pg16: PgBinaries, cluster_cache: Path) -> None:
    run_id = new_run_id()
    first = EmbeddedServer(pg16, run_id=run_id, cache_dir=cluster_cache)
    first.start()
    try:
        with pytest.raises(FileExistsError):
            EmbeddedServer(pg16, run_id=run_id, cache_dir=cluster_cache).start()
        assert first.directory is not None
        assert first.directory.exists()
    finally:
        first.stop()


@needs_root
def test_unreadable_binaries_are_copied_for_the_server_account(
    pg16: PgBinaries, cluster_cache: Path, tmp_path: Path
) -> None:
    # Like a virtualenv under /root (mode 0700): the server account cannot reach the binaries.
    hidden = tmp_path / "hidden"
    package = pg16.bindir.parent.parent
    shutil.copytree(pg16.bindir.parent, hidden / package.name / "pginstall", symlinks=True)
    shutil.copytree(package.parent / f"{package.name}.libs", hidden / f"{package.name}.libs")
    hidden.chmod(0o700)
    binaries = find_binaries(str(hidden / package.name / "pginstall" / "bin"))
    # Half-made copies: one of a dead run (removed), one of this live process (kept).
    abandoned = Path(f"/var/tmp/.sqlaperf-bin-000000000000-{dead_pid()}-1-test")
    ours = Path(
        f"/var/tmp/.sqlaperf-bin-000000000000-{os.getpid()}-{process_start_time(os.getpid())}-test"
    )
    abandoned.mkdir()
    ours.mkdir()
    server = EmbeddedServer(binaries, run_id=new_run_id(), cache_dir=cluster_cache)
    copy: Path | None = None
    try:
        info = server.start()
        executable = Path(os.readlink(f"/proc/{postmaster_pid(server)}/exe"))
        copy = executable.parents[3]
        assert copy.name.startswith("sqlaperf-bin-")
        assert copy.stat().st_mode & 0o777 == 0o755
        assert info.version == pg16.version
        server.stop()
        # The copy is reused by the next run.
        again = EmbeddedServer(binaries, run_id=new_run_id(), cache_dir=cluster_cache)
        again.start()
        assert Path(os.readlink(f"/proc/{postmaster_pid(again)}/exe")) == executable
        again.stop()
        assert not abandoned.exists()
        assert ours.exists()
    finally:
        server.stop()
        if copy is not None:
            shutil.rmtree(copy)
        shutil.rmtree(abandoned, ignore_errors=True)
        ours.rmdir()


@needs_root
def test_missing_server_account_is_a_clear_error(pg16: PgBinaries) -> None:
    server = EmbeddedServer(pg16, pg_user="no_such_user_sqlaperf", run_id=new_run_id())
    with pytest.raises(SqlaperfError) as raised:
        server.start()
    message = str(raised.value)
    assert "'no_such_user_sqlaperf'" in message
    assert "sqlaperf_pg_user" in message
    assert "--sqlaperf-url" in message
