"""Find the user's frame for a statement, across threads and SQLAlchemy's asyncio greenlets."""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType

from .querylog import CallSite


def _package_dir(name: str) -> str | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    return os.path.dirname(os.path.abspath(file)) + os.sep if file else None


def _skipped_prefixes() -> tuple[str, ...]:
    prefixes = {
        os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0] + os.sep,  # this plugin
    }
    for name in (
        "sqlalchemy",
        "greenlet",
        "_pytest",
        "pytest",
        "pluggy",
        "pytest_asyncio",
        "xdist",
    ):
        directory = _package_dir(name)
        if directory:
            prefixes.add(directory)
    return tuple(prefixes)


def _standard_library() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The standard library's directories, and the site-packages inside them that are not stdlib."""
    paths = sysconfig.get_paths()
    stdlib = {
        os.path.abspath(paths[key]) + os.sep for key in ("stdlib", "platstdlib") if key in paths
    }
    site = {os.path.abspath(paths[key]) + os.sep for key in ("purelib", "platlib") if key in paths}
    return tuple(stdlib), tuple(site)


class CallSiteFinder:
    """Walks the stack to the first frame that is user code; the verdict per file is cached.

    The verdicts are kept by file name, not by code object: a string caches its hash, while a
    code object hashes its name, bytecode and constants again on every lookup. The walk runs for
    every statement, past a dozen or more SQLAlchemy frames, so its inner loop is one set
    membership test per frame: the files known to be skipped (SQLAlchemy, us, the standard
    library). A file seen for the first time stops the loop and is judged once.

    Inside ``AsyncSession`` the statement runs in a greenlet whose stack ends at SQLAlchemy's
    ``greenlet_spawn``; the user's coroutine is in the parent greenlet's suspended frame, so the
    walk continues there.
    """

    def __init__(self) -> None:
        self._prefixes = _skipped_prefixes()
        self._stdlib, self._site_packages = _standard_library()
        # Read by the recorder's listener, which inlines the usual case of find().
        self.skipped: set[str] = set()
        """Files known not to be user code."""
        self.user: set[str] = set()
        """Files known to be user code."""
        self.sites: dict[tuple[str, int, int], CallSite] = {}
        """Per (file, first line of the code, instruction offset): its call site."""

    def _judge(self, filename: str) -> bool:
        """Whether a file not seen before is user code; remembered either way."""
        path = os.path.abspath(filename)
        in_stdlib = path.startswith(self._stdlib) and not path.startswith(self._site_packages)
        user = not (filename.startswith("<") or in_stdlib or path.startswith(self._prefixes))
        (self.user if user else self.skipped).add(filename)
        return user

    def find(self, frame: FrameType | None) -> CallSite | None:
        skipped = self.skipped
        user = self.user
        current = None
        while True:
            while frame is not None:
                code = frame.f_code
                filename = code.co_filename
                if filename in skipped or not (filename in user or self._judge(filename)):
                    frame = frame.f_back
                    continue
                # One CallSite per instruction, made once: f_lineno scans the code's line table
                # from its start (thousands of instructions in a long test), and shared
                # CallSites are fewer objects for the garbage collector to follow.
                key = (filename, code.co_firstlineno, frame.f_lasti)
                site = self.sites.get(key)
                if site is None:
                    site = self.sites[key] = CallSite(filename, frame.f_lineno, code.co_name)
                return site
            # the bottom of this stack: inside AsyncSession, the parent greenlet's goes on
            if current is None:
                greenlet_module = sys.modules.get("greenlet")
                if greenlet_module is None:
                    return None
                current = greenlet_module.getcurrent()
            current = getattr(current, "parent", None)
            if current is None:
                return None
            frame = current.gr_frame
