"""How ``nswgw serve`` has the C allocator hand large buffers back (glibc ``malloc``).

A submission passes through several large buffers of its own size: the request body, the parsed tree, the
canonical form the signature is checked over, the serialized content and evidence, the signed delivery, the
store's copy of each row. They are short-lived and made in different threads (the event loop, the intake
worker, the store's connection thread), so each lands in another glibc arena. By default glibc adjusts its
mmap threshold upwards to the largest block freed so far: after the first large submission such buffers come
from the arenas, where freed space stays resident and is reusable only by the same arena, and the process keeps
several times the payload resident (a 16 MiB submission grew a fresh gateway by about 11 times its size, of
which only about 6 times was ever in use at once).

:func:`release_large_buffers` fixes the threshold (which turns the adjustment off): every block of at least
``threshold`` bytes is its own mapping, returned to the system when freed, so the resident size follows what
is in use. Elsewhere than on glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["LARGE_BUFFER_BYTES", "release_large_buffers"]

LARGE_BUFFER_BYTES = 128 * 1024
"""Blocks of at least this many bytes are mapped on their own (glibc's initial threshold, kept fixed)."""

_M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter of ``<malloc.h>``."""


def release_large_buffers(threshold: int = LARGE_BUFFER_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; whether it was set (False: not glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    return bool(libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(threshold)))
