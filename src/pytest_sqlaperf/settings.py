"""The plugin's settings: resolved once per run, CLI > ini > environment > default, then frozen."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .postgres.docker import DEFAULT_IMAGE as DEFAULT_DOCKER_IMAGE

BACKENDS = ("auto", "embedded", "url", "docker")
URL_ENVIRONMENT_VARIABLE = "SQLAPERF_DATABASE_URL"
DEFAULT_PG_USER = "nobody"


class OptionSource(Protocol):
    """What settings need of ``pytest.Config`` (a protocol: this module stays free of pytest)."""

    def getoption(self, name: str) -> Any: ...

    def getini(self, name: str) -> Any: ...


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message names option, value and choices."""


@dataclass(frozen=True)
class Option:
    """One setting: its command-line flag (if any), ini key, environment variable and help."""

    name: str
    help: str
    flag: bool = True
    environment: str | None = None
    ini_type: Literal["string", "bool", "linelist"] = "string"

    @property
    def cli(self) -> str:
        return "--sqlaperf-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "sqlaperf_" + self.name

    @property
    def dest(self) -> str:
        return "sqlaperf_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option(
        "backend",
        "Where PostgreSQL comes from: auto (url if given, else embedded, else docker), "
        "embedded, url or docker (default: auto)",
    ),
    Option(
        "url",
        "Use an existing PostgreSQL server, e.g. postgresql://user:password@host:5432/postgres; "
        "the plugin creates and drops only its own databases there "
        f"(env {URL_ENVIRONMENT_VARIABLE})",
        environment=URL_ENVIRONMENT_VARIABLE,
    ),
    Option(
        "pg_bin",
        "Directory holding initdb and postgres for the embedded server "
        "(default: pg_config, PATH, /usr/lib/postgresql/*/bin, then the bundled binaries)",
    ),
    Option(
        "pg_user",
        f"Unprivileged account that runs the embedded server when pytest runs as root "
        f"(default: {DEFAULT_PG_USER})",
    ),
    Option(
        "docker_image",
        f"Image for --sqlaperf-backend=docker (default: {DEFAULT_DOCKER_IMAGE})",
        flag=False,
    ),
    Option(
        "metadata",
        "SQLAlchemy MetaData to create in the test database, as module:attribute, "
        "e.g. myapp.models:Base.metadata",
        flag=False,
    ),
    Option(
        "count_transaction_control",
        "Count BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE toward budgets (default: false)",
        flag=False,
        ini_type="bool",
    ),
    Option(
        "show_params",
        "Show bound parameters of statements in failure messages even without -v "
        "(never written to files unless asked)",
        ini_type="bool",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Every setting of one run, resolved once; see :data:`OPTIONS` for what each means."""

    backend: str = "auto"
    url: str | None = None
    pg_bin: str | None = None
    pg_user: str = DEFAULT_PG_USER
    docker_image: str = DEFAULT_DOCKER_IMAGE
    metadata: str | None = None
    count_transaction_control: bool = False
    show_params: bool = False


def _as_bool(option: Option, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(
        f"{option.ini} must be true or false, got {value!r}; set it to true or false"
    )


def _raw_value(option: Option, source: OptionSource, environ: Mapping[str, str]) -> object:
    if option.flag:
        value = source.getoption(option.dest)
        if value is not None:
            return value
    value = source.getini(option.ini)
    if value not in (None, ""):
        return value
    if option.environment is not None:
        value = environ.get(option.environment)
        if value:
            return value
    return None


def choice(option: Option, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(
            f"{option.cli} (ini {option.ini}) got {value!r}; choose one of: {', '.join(choices)}"
        )
    return value


def whole_number(option: Option, value: str, minimum: int = 0) -> int:
    """A validator for counts: a whole number >= ``minimum``."""
    try:
        number = int(value.strip())
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise SettingsError(f"{option.ini} must be a whole number >= {minimum}, got {value!r}")
    return number


def _metadata_reference(option: Option, value: str) -> str:
    module, sep, attribute = value.partition(":")
    if not sep or not module.strip() or not attribute.strip():
        raise SettingsError(
            f"{option.ini} = {value!r} is not module:attribute; "
            "write it like myapp.models:Base.metadata"
        )
    return value.strip()


def _non_empty(option: Option, value: str) -> str:
    if not value.strip():
        raise SettingsError(
            f"{option.cli} (ini {option.ini}) is empty; give a value or leave it out"
        )
    return value.strip()


_VALIDATORS: dict[str, Callable[[Option, str], object]] = {
    "backend": lambda option, value: choice(option, value.strip().lower(), BACKENDS),
    "metadata": _metadata_reference,
    "url": _non_empty,
    "pg_bin": _non_empty,
    "pg_user": _non_empty,
    "docker_image": _non_empty,
}


def resolve_values(
    options: tuple[Option, ...],
    source: OptionSource,
    environ: Mapping[str, str],
    validators: Mapping[str, Callable[[Option, str], object]],
) -> dict[str, object]:
    """The given options' values (CLI > ini > environment), validated; options not given are left
    out so the settings dataclass's defaults apply. Raises :class:`SettingsError`."""
    values: dict[str, object] = {}
    for option in options:
        raw = _raw_value(option, source, environ)
        if raw is None:
            continue
        if option.ini_type == "bool":
            values[option.name] = _as_bool(option, raw)
        elif option.ini_type == "linelist":
            lines = raw if isinstance(raw, list) else str(raw).splitlines()
            values[option.name] = tuple(str(line).strip() for line in lines if str(line).strip())
        else:
            validate = validators.get(option.name, _non_empty)
            values[option.name] = validate(option, str(raw))
    return values


def resolve(source: OptionSource, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every option once (CLI > ini > environment > default) into a frozen Settings.

    Raises :class:`SettingsError` naming the option, the value and what it can be.
    """
    environ = os.environ if environ is None else environ
    values = resolve_values(OPTIONS, source, environ, _VALIDATORS)
    return Settings(**values)  # type: ignore[arg-type]  # keys are the dataclass's fields
