"""The one exception type the plugin raises for problems the user can fix."""

from __future__ import annotations


class SqlaperfError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    The plugin turns it into a ``pytest.UsageError`` or a test error without a traceback, so the
    message must stand on its own: what is wrong, and what to do next.
    """
