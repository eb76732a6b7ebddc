"""The shipped XSDs are built safely when the intake's worker threads all need them at once: libxml2 sets up its
built-in schema types on first use without a lock, and two schemas built at once could damage that table so that
every later schema failed (a gateway answering every submission with GATEWAY_INTERNAL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RACE = """
import threading
from pathlib import Path
from mappings.xmlformat import SCHEMA_DIR, load_schema

names = sorted(str(p.relative_to(SCHEMA_DIR)) for p in SCHEMA_DIR.glob("*/*.xsd"))
start = threading.Barrier(16)
failures = []

def build(i):
    start.wait()
    try:
        load_schema(names[i % len(names)])
    except Exception as exc:
        failures.append(repr(exc))

threads = [threading.Thread(target=build, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(names), len(failures), failures[:1])
"""


def test_sixteen_threads_building_the_shipped_schemas_at_once_in_a_fresh_process_all_succeed() -> None:
    for _ in range(6):  # each a fresh process: the first use of libxml2's schema types is what races
        done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        count, failed, first = done.stdout.split(" ", 2)
        assert int(count) >= 4 and failed == "0", first
