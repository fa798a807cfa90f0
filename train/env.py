"""Process environment for fast PyTorch on this kind of machine (2 cores, Debian's PyTorch + OpenBLAS, a VM).

- OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep instead of spinning against OpenBLAS's (~15x, DESIGN 9).
- glibc malloc: large freed blocks are normally returned to the OS and page-faulted back on the next
  allocation; on this VM that made every [B, H, n, n] temporary cost more than its arithmetic (a 16 MB
  elementwise product: 40 ms instead of 0.8 ms). The thresholds below keep them in the heap.
These only take effect at process start, so `ensure_env()` re-executes the script once with them set.
"""

import os
import sys

FAST_ENV = {'OMP_WAIT_POLICY': 'PASSIVE', 'MALLOC_MMAP_THRESHOLD_': '33554432',
            'MALLOC_TRIM_THRESHOLD_': '4294967296', 'MALLOC_TOP_PAD_': '268435456'}


def ensure_env() -> None:
    """Re-exec the running script once with FAST_ENV added (variables already set are kept)."""
    missing = {k: v for k, v in FAST_ENV.items() if k not in os.environ}
    if missing and os.environ.get('TOEPLITZ_REEXEC') != '1':
        os.environ.update(missing)
        os.environ['TOEPLITZ_REEXEC'] = '1'
        os.execv(sys.executable, [sys.executable] + sys.argv)
