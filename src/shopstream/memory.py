"""Keeping a long-running process's memory near what it uses (services, bulk loads)."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

_started = False


def lean_memory(trim_every_seconds: float = 2.0) -> None:
    """Arrow on the system allocator, and freed heap pages given back every few seconds.

    Arrow's default pool (mimalloc) keeps freed batches mapped: with the system allocator
    a service's peak RSS on the reference file fell by ~70 MB (ingest 313 -> 240 MB) at no
    measured cost in speed (bench/pipeline.py). glibc keeps the pages of freed batches
    (a request's bodies, columns, Arrow buffers) in its heap; malloc_trim gives them back:
    ingest-api's RSS peaked 20-40 MB lower and settled 40 MB lower; a trim costs a few ms.
    """
    global _started
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    _arrow_without_pandas()
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if _started or libc is None or not hasattr(libc, "malloc_trim"):
        return  # started already, or not glibc (e.g. musl, macOS): nothing to do
    _started = True

    def trim() -> None:
        while True:
            time.sleep(trim_every_seconds)
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()


def _arrow_without_pandas() -> None:
    """pyarrow imports pandas, where it is installed, the first time it converts a Python
    list, only to ask whether the list is a pandas object: +58 MB of RSS and ~0.3 s of CPU
    in every process, for nothing (no service hands pandas objects to Arrow). pyarrow
    looks once: make that look find no pandas. (pandas is not in the images; it is in the
    test extra, so this is what the benchmarks in .venv would otherwise measure.)"""
    import importlib.abc
    import sys

    import pyarrow

    if "pandas" in sys.modules:
        return  # imported already: nothing to save

    class NoPandas(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "pandas":
                raise ModuleNotFoundError("pandas is hidden from pyarrow's first look", name=name)
            return None

    finder = NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pyarrow.array([0])
    finally:
        sys.meta_path.remove(finder)
