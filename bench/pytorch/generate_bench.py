"""PyTorch generating with the shipped model's weights, the way the paper's algorithm serves inference:
every new token recomputes the whole sequence (no streaming state), so one token at context L costs one
forward pass over L tokens. Methods: 'fft' (the paper's Algorithm 1), 'direct' (the masked O(L^2) form) and
'blocked' (near field + far-field prefix sums: linear in L, the strongest recompute baseline).

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/pytorch/generate_bench.py [--model models/toeplitz-lm.safetensors]
        [--context 1024 4096] [--repeats 5] [--threads 1] [--method fft direct blocked]

Per (context, method): median seconds for one token = one forward over `context` tokens of held-out text
(the last row's logits are the next-token distribution; sampling itself is negligible). JSON lines:
    {"context": 1024, "method": "fft", "seconds_per_token": 0.05, "dtype": "float32", "threads": 1, ...}
"""

import argparse
import json
import os
import statistics
import sys
import time

# --threads N means N: OpenBLAS (the matrix products) and OpenMP read these when torch loads
_THREADS = sys.argv[sys.argv.index('--threads') + 1] if '--threads' in sys.argv[:-1] else '1'
os.environ.setdefault('OPENBLAS_NUM_THREADS', _THREADS)
os.environ.setdefault('OMP_NUM_THREADS', _THREADS)

try:
    import torch
except ImportError:
    sys.exit('generate_bench.py needs PyTorch: apt-get install -y python3-torch, then run it with /usr/bin/python3')

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'train'))
from env import ensure_env  # noqa: E402
from export import load_model  # noqa: E402


def main():
    ensure_env()
    p = argparse.ArgumentParser()
    p.add_argument('--model', default=os.path.join(ROOT, 'models', 'toeplitz-lm.safetensors'))
    p.add_argument('--context', type=int, nargs='+', default=[1024, 4096])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--method', nargs='+', default=['fft', 'direct', 'blocked'])
    p.add_argument('--dtype', default='float32')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, config = load_model(a.model, getattr(torch, a.dtype))
    g = torch.Generator().manual_seed(0)
    for L in a.context:
        tokens = torch.randint(32, 127, (1, L), generator=g)
        # held-out text if the corpus cache is there (content does not change the cost)
        cache = os.path.join(ROOT, 'train', '.cache', 'moby-dick.txt')
        if os.path.exists(cache):
            with open(cache, 'rb') as f:
                data = f.read()
            held = data[(95 * len(data)) // 100:]
            tokens = torch.tensor([list(held[:L])], dtype=torch.long)
        for method in a.method:
            model.set_method(method)
            times = []
            with torch.no_grad():
                model(tokens)  # warm-up
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    logits = model(tokens)[0, -1]
                    times.append(time.perf_counter() - t0)
            assert torch.isfinite(logits).all()
            print(json.dumps({'context': L, 'method': method, 'seconds_per_token': statistics.median(times),
                              'tokens_per_s': 1 / statistics.median(times), 'dtype': a.dtype,
                              'threads': a.threads, 'repeats': a.repeats, 'all': [round(t, 5) for t in times],
                              'model': os.path.basename(a.model), 'config': {k: config[k] for k in ('dim', 'layers', 'heads')}}),
                  flush=True)


if __name__ == '__main__':
    main()
