"""shopstream: an e-commerce transaction data platform."""

import os

__version__ = "0.1.0"

# No shopstream process does linear algebra. Where numpy is installed (a dev install: pandas
# for the tests), pyarrow imports it, and OpenBLAS starts a thread that spins while idle:
# ~0.13 CPU-s of a bulk load of the reference file (3.1 -> 3.0 CPU-s; perf: blas_thread_server).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
