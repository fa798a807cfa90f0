"""toeplitz-lm: the byte-level language model of ../../shared/DESIGN.md section 9, in PyTorch.

llama2.c's Transformer with RoPE replaced by kernelized attention with RPE (attention.py):

    x = E[tokens]
    per layer:  a = rmsnorm(x, attention_norm); q, k, v = a Wq^T, a Wk^T, a Wv^T  (head h: columns h*kd:(h+1)*kd)
                x = x + concat_h attention(q_h, k_h, v_h; W = projection, bias = rpe_bias[h]) Wo^T
                a = rmsnorm(x, ffn_norm);  x = x + (silu(a W1^T) * (a W3^T)) W2^T
    logits = rmsnorm(x, norm) Wout^T      (Wout = E when tied)

Parameter and buffer names are exactly the safetensors names of section 9 (`state_dict()` keys), so the
export is a plain walk over the state dict.
"""

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

from attention import attention_blocked, attention_direct, attention_fft, orthogonal_projection


@dataclass
class ModelConfig:
    vocab: int = 256
    dim: int = 128
    layers: int = 4
    heads: int = 4
    keyDim: int = 32
    valueDim: int = 32
    hidden: int = 344
    features: int = 32  # PRF count m
    rpe_length: int = 128  # K; 1 with a zero bias = no RPE
    normEps: float = 1e-5
    tiedEmbedding: bool = True
    learn_rpe: bool = True  # False: rpe_bias stays 0 (plain kernelized attention)
    rpe_init: str = 'decay'  # 'decay': b_h(t) = -s_h ln(1 + t), s_h from 3 to 1/4 over heads; 'zero': b = 0
    seed: int = 1337  # for the projections W
    rpe_tail: str = 'clip'  # 'clip' (toeplitz-lm/1) or 'decay' (toeplitz-lm/2: per-head rates rpe_decay [heads])
    decay_min: float = 0.0  # training only: r_h = decay_min + exp(rpe_decay_log_h) (a floor keeps 1/r_h short
    decay_init: float = 1.0 / 1024  # of the training context, so training sees the far field's steady state)

    def contract(self) -> dict:
        """The `config` of DESIGN section 9 (the keys the runtime reads)."""
        return {
            'format': 'toeplitz-lm/2' if self.rpe_tail == 'decay' else 'toeplitz-lm/1',
            'vocab': self.vocab,
            'dim': self.dim,
            'layers': self.layers,
            'heads': self.heads,
            'keyDim': self.keyDim,
            'valueDim': self.valueDim,
            'hidden': self.hidden,
            'features': {'kind': 'prf', 'count': self.features, 'normalize': 'l2'},
            'rpe': {'length': self.rpe_length, 'tail': self.rpe_tail},
            'normEps': self.normEps,
            'tiedEmbedding': self.tiedEmbedding,
        }

    @staticmethod
    def from_contract(c: dict) -> 'ModelConfig':
        tail = {'toeplitz-lm/1': 'clip', 'toeplitz-lm/2': 'decay'}.get(c['format'])
        assert tail is not None, c['format']
        assert c['features']['kind'] == 'prf' and c['features']['normalize'] == 'l2'
        assert c['rpe']['tail'] == tail, (c['format'], c['rpe']['tail'])
        return ModelConfig(vocab=c['vocab'], dim=c['dim'], layers=c['layers'], heads=c['heads'],
                           keyDim=c['keyDim'], valueDim=c['valueDim'], hidden=c['hidden'],
                           features=c['features']['count'], rpe_length=c['rpe']['length'],
                           normEps=c['normEps'], tiedEmbedding=c['tiedEmbedding'], rpe_tail=tail)


def decay_prior(heads: int, K: int) -> torch.Tensor:
    """Initial RPE tables [heads, K]: b_h(t) = -s_h ln(1 + t), i.e. c_h(t) = (1 + t)^-s_h, with s_h spaced
    geometrically from 3 (a head that starts on the last few bytes) to 1/4 (a head that starts broad).

    NPRF bounds the content kernel (phi(q).phi(k) estimates exp(q~.k~) within [1/e, e] for unit q~, k~), so
    locality has to come from the RPE; a zero table starts every head as a uniform average of the past and
    training then sits for hundreds of steps on a bigram-like plateau (~3.4 bits/byte) while b is learnt.
    """
    s = 3.0 * (1.0 / 12.0) ** (torch.arange(heads, dtype=torch.float64) / max(heads - 1, 1))
    t = torch.arange(K, dtype=torch.float64)
    return (-s[:, None] * torch.log1p(t)[None, :]).float()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.cfg = cfg
        self.wq = nn.Linear(cfg.dim, cfg.heads * cfg.keyDim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.heads * cfg.keyDim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.heads * cfg.valueDim, bias=False)
        self.wo = nn.Linear(cfg.heads * cfg.valueDim, cfg.dim, bias=False)
        g = torch.Generator().manual_seed(cfg.seed * 1000 + layer)
        # projection: [count, keyDim], fixed (a buffer: saved, never trained)
        self.register_buffer('projection', orthogonal_projection(cfg.features, cfg.keyDim, g))
        # rpe_bias: [heads, K], b(0..K-1) per head; starts at 0 (= plain kernelized attention)
        self.rpe_bias = nn.Parameter(torch.zeros(cfg.heads, cfg.rpe_length), requires_grad=cfg.learn_rpe)
        if cfg.rpe_tail == 'decay':
            # r_h = decay_min + exp(rpe_decay_log_h) >= 0: log-parameterized so Adam moves it by ratios;
            # exported as `rpe_decay` = r_h (export.py), and a loaded file's r_h is used exactly (decay_exact)
            init = math.log(max(cfg.decay_init - cfg.decay_min, 1e-30))
            self.rpe_decay_log = nn.Parameter(torch.full((cfg.heads,), init))
        self.decay_exact = None  # [heads]: r_h read from a file (load_model), in the model's dtype
        self.method = 'direct'
        self.far_scale = 1.0  # training-time augmentation of the blocked form (1: exact)

    def decay(self):
        """r [heads] of the decay tail, or None for the clip tail."""
        if self.cfg.rpe_tail != 'decay':
            return None
        if self.decay_exact is not None:
            return self.decay_exact
        return self.cfg.decay_min + torch.exp(self.rpe_decay_log)

    def forward(self, x):
        # x: [B, n, dim]
        B, n, _ = x.shape
        H, kd, vd = self.cfg.heads, self.cfg.keyDim, self.cfg.valueDim
        q = self.wq(x).view(B, n, H, kd).transpose(1, 2)  # [B, H, n, kd]
        k = self.wk(x).view(B, n, H, kd).transpose(1, 2)
        v = self.wv(x).view(B, n, H, vd).transpose(1, 2)  # [B, H, n, vd]
        r = self.decay()
        if self.method == 'blocked':
            z = attention_blocked(q, k, v, self.projection, self.rpe_bias, far_scale=self.far_scale, decay=r)
        elif self.method == 'fft':
            z = attention_fft(q, k, v, self.projection, self.rpe_bias, decay=r)
        else:
            z = attention_direct(q, k, v, self.projection, self.rpe_bias, r)  # [B, H, n, vd]
        return self.wo(z.transpose(1, 2).reshape(B, n, H * vd))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden, bias=False)
        self.w2 = nn.Linear(cfg.hidden, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.normEps)
        self.attention = Attention(cfg, layer)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.normEps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x):
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.ffn_norm(x))


class ToeplitzLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab, cfg.dim)
        self.layers = nn.ModuleList([Block(cfg, l) for l in range(cfg.layers)])
        self.norm = RMSNorm(cfg.dim, cfg.normEps)
        if not cfg.tiedEmbedding:
            self.output = nn.Linear(cfg.dim, cfg.vocab, bias=False)
        self._init_weights()

    def _init_weights(self):
        # llama2.c / GPT-2: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers)
        for name, p in self.named_parameters():
            if name.endswith('norm.weight'):
                continue
            if name.endswith('rpe_decay_log'):
                continue
            if name.endswith('rpe_bias'):
                if self.cfg.rpe_init == 'decay' and self.cfg.learn_rpe:
                    with torch.no_grad():
                        p.copy_(decay_prior(self.cfg.heads, self.cfg.rpe_length))
                continue
            std = 0.02
            if name.endswith('wo.weight') or name.endswith('w2.weight'):
                std = 0.02 / (2 * self.cfg.layers) ** 0.5
            nn.init.normal_(p, mean=0.0, std=std)

    def set_method(self, method: str):
        for b in self.layers:
            b.attention.method = method

    def set_far_scale(self, scale: float):
        for b in self.layers:
            b.attention.far_scale = scale

    def forward(self, tokens):
        # tokens: [B, n] int64 -> logits [B, n, vocab]
        x = self.tok_embeddings(tokens)
        for b in self.layers:
            x = b(x)
        x = self.norm(x)
        Wout = self.tok_embeddings.weight if self.cfg.tiedEmbedding else self.output.weight
        return x @ Wout.transpose(0, 1)

    def param_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
