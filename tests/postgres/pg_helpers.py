"""Helpers for the server layer's tests: looking at processes through /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another account needs root")


def server_processes(directory: Path) -> list[int]:
    """Live (non-zombie) postmasters started on ``directory``'s data dir, and their children."""
    postmasters = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(directory / "data").encode() in argv:
            postmasters.append(int(entry.name))
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) in postmasters and fields[0] != "Z":
            children.append(int(entry.name))
    return postmasters + children


def process_uid(pid: int) -> int:
    """The real uid of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")
