"""pytest wiring of the baselines and reports: options, the CI gate, report files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .plugin import SqlaperfPlugin


def addoption(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    """Add the baseline and report options to the ``sqlaperf`` group (and their ini keys)."""


class Reporting:
    """Baselines and reports of one run, registered as a pytest plugin by ``plugin.py``."""

    def __init__(self, config: pytest.Config, core: SqlaperfPlugin) -> None:
        self.config = config
        self.core = core

    def close(self) -> None:
        """Called at unconfigure."""
