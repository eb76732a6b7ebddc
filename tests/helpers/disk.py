"""A real, tiny file system for full-disk scenarios (tmpfs, mounted as root), and filling it up."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["mounted_tmpfs", "fill"]


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str = "8m") -> Iterator[Path]:
    """``where`` (created) as a tmpfs of ``size``, unmounted at the end."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True, check=False
    )
    assert mounted.returncode == 0, f"the full-disk scenario needs to mount a tmpfs (run as root): {mounted.stderr}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; the filler file's path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler
