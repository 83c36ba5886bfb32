"""What a benchmark prints beside its speed figures: the CPU's vector/matrix flags and core count.

Shared by the scripts of ``benchmarks/`` (``from _machine import machine``: a script's own folder is
first on ``sys.path`` when it runs, from a checkout as under ``bazel run``). The leading underscore keeps
it out of ``make bench`` and of the BUILD file's per-benchmark binaries, whose sources include it.
"""

import os


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's AVX2, AVX-512 and AMX flags, sorted and space-separated, as
    ``grep -o 'avx512[a-z_0-9]*\\|avx2\\|amx[a-z_]*' /proc/cpuinfo | sort -u`` lists them; "none" when it
    has none, "unknown" where there is no ``cpuinfo`` (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            words = set(handle.read().split())
    except OSError:
        return "unknown"
    return " ".join(sorted(w for w in words if w.startswith(("avx512", "amx")) or w == "avx2")) or "none"


def machine():
    """One line for a benchmark's output: ``CPU flags: …; N cores``."""
    return f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores"
