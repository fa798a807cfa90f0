"""The paper's algorithm (kernelized attention with RPE by FFT) in PyTorch: the baseline of DESIGN section 7.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/pytorch/attention_bench.py [--n 4096 16384 65536] [--repeats 5] [--threads 1]

One head, d = dv = m = 64, l2-normalized PRF features, a full-length learned-style RPE table (K = n, biases
uniform in [-2, 0]), causal; the FFT form of train/attention.py (U_j = phi(k_j)[v_j; 1]^T, one real FFT of
length 2n per channel), on one thread (torch.set_num_threads(1)) or --threads T, float32 and float64. Timed:
features, FFTs and the ratio, i.e. the whole call; inputs are made once. Prints one JSON line per (n, dtype) on
stdout ("seconds": wall, "cpu_seconds": process CPU, both medians):
    {"n": 16384, "seconds": 0.41, "cpu_seconds": 0.41, "dtype": "float32", "threads": 1, "repeats": 5, "all": [...]}
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, nargs='+', default=[4096, 16384])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--dtype', nargs='+', default=['float32', 'float64'])
    p.add_argument('--threads', type=int, default=1, help='intra-op threads (torch.set_num_threads; OpenMP and OpenBLAS too)')
    return p.parse_args()


ARGS = parse_args()
if ARGS.threads < 1:
    sys.exit(f'--threads must be >= 1, got {ARGS.threads}')
# the thread count is the one asked for: OpenBLAS (einsum's batched products) and OpenMP read these when torch loads
os.environ.setdefault('OPENBLAS_NUM_THREADS', str(ARGS.threads))
os.environ.setdefault('OMP_NUM_THREADS', str(ARGS.threads))

try:
    import torch
except ImportError:
    sys.exit('attention_bench.py needs PyTorch: apt-get install -y python3-torch, then run it with /usr/bin/python3')

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'train'))
from attention import attention_fft, orthogonal_projection  # noqa: E402
from env import ensure_env  # noqa: E402


def bench(n: int, dtype, repeats: int, d: int = 64) -> dict:
    g = torch.Generator().manual_seed(n)
    q = torch.randn(1, n, d, generator=g).to(dtype)  # [heads=1, n, d]
    k = torch.randn(1, n, d, generator=g).to(dtype)
    v = torch.randn(1, n, d, generator=g).to(dtype)
    W = orthogonal_projection(d, d, g, dtype=dtype)  # [m=64, d=64]
    bias = (-2.0 * torch.rand(1, n, generator=g)).to(dtype)  # [heads, K = n] in [-2, 0]
    times = []
    cpu = []  # process CPU time: robust when other processes share the machine (with one thread)
    with torch.no_grad():
        attention_fft(q, k, v, W, bias)  # warm-up (FFT plans, allocator)
        for _ in range(repeats):
            t0 = time.perf_counter()
            c0 = time.process_time()
            z = attention_fft(q, k, v, W, bias)
            cpu.append(time.process_time() - c0)
            times.append(time.perf_counter() - t0)
    assert torch.isfinite(z).all()
    return {'n': n, 'seconds': statistics.median(times), 'cpu_seconds': statistics.median(cpu), 'dtype': str(dtype).replace('torch.', ''),
            'threads': torch.get_num_threads(), 'repeats': repeats, 'all': [round(t, 5) for t in times]}


def main():
    ensure_env()
    a = ARGS
    torch.set_num_threads(a.threads)
    print(json.dumps({'machine': platform.machine(), 'processor': platform.processor() or None,
                      'torch': torch.__version__, 'python': platform.python_version()}), file=sys.stderr)
    for dt in a.dtype:
        for n in a.n:
            print(json.dumps(bench(n, getattr(torch, dt), a.repeats)), flush=True)


if __name__ == '__main__':
    main()
