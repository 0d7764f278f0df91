"""Settings: CLI > ini > environment > default, and bad values named with their choices."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_sqlaperf.settings import SettingsError, resolve


class Source:
    def __init__(self, options: dict[str, Any] | None = None, ini: dict[str, Any] | None = None):
        self.options = options or {}
        self.ini = ini or {}

    def getoption(self, name: str) -> Any:
        return self.options.get(name)

    def getini(self, name: str) -> Any:
        return self.ini.get(name)


def test_defaults() -> None:
    resolved = resolve(Source(), environ={})
    assert resolved.backend == "auto"
    assert resolved.url is None
    assert resolved.pg_user == "nobody"
    assert resolved.count_transaction_control is False


def test_cli_beats_ini_beats_environment() -> None:
    environ = {"SQLAPERF_DATABASE_URL": "postgresql://env/db"}
    assert resolve(Source(), environ=environ).url == "postgresql://env/db"
    ini = {"sqlaperf_url": "postgresql://ini/db"}
    assert resolve(Source(ini=ini), environ=environ).url == "postgresql://ini/db"
    cli = {"sqlaperf_url": "postgresql://cli/db"}
    assert resolve(Source(cli, ini), environ=environ).url == "postgresql://cli/db"


def test_cli_false_is_not_swallowed_by_ini() -> None:
    # A flag given on the command line wins even when falsy; None means "not given".
    source = Source({"sqlaperf_show_params": False}, {"sqlaperf_show_params": "true"})
    assert resolve(source, environ={}).show_params is False


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            {"sqlaperf_backend": "sqlite"},
            "--sqlaperf-backend (ini sqlaperf_backend) got 'sqlite'; "
            "choose one of: auto, embedded, url, docker",
        ),
        (
            {"sqlaperf_metadata": "models.Base"},
            "sqlaperf_metadata = 'models.Base' is not module:attribute",
        ),
        (
            {"sqlaperf_count_transaction_control": "maybe"},
            "sqlaperf_count_transaction_control must be true or false, got 'maybe'",
        ),
        ({"sqlaperf_pg_user": "  "}, "--sqlaperf-pg-user (ini sqlaperf_pg_user) is empty"),
    ],
)
def test_bad_values_name_option_value_and_choices(ini: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        resolve(Source(ini=ini), environ={})
    assert message in str(raised.value)


def test_bad_option_is_a_usage_error_without_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--sqlaperf-backend=sqlite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--sqlaperf-backend (ini sqlaperf_backend) got 'sqlite'; choose one of: auto,*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_options_have_matching_ini_keys(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for name in ("backend", "url", "pg-bin", "pg-user", "show-params"):
        result.stdout.fnmatch_lines([f"*--sqlaperf-{name}*"])
        result.stdout.fnmatch_lines([f"*sqlaperf_{name.replace('-', '_')} *"])
