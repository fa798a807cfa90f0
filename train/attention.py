"""The paper's Algorithm 1 in PyTorch: causal kernelized attention with relative positional encoding.

Luo et al., "Stable, Fast and Accurate: Kernelized Attention with Relative Positional Encoding",
NeurIPS 2021. Conventions are those of ../../shared/DESIGN.md section 2 (the library's contract):

    x~ = x / |x|                                  (l2, the paper's NPRF; a zero row stays zero)
    phi(x) = exp(W x~ - |x~|^2 / 2) / sqrt(m)     W: [m, d], fixed
    c(t) = exp(b(t)),  b(t) = b(K-1) for t >= K   (the 'clip' tail), lag t = i - j >= 0 (causal)
                       or b(t) = b(K-1) - r (t - K + 1)  (the 'decay' tail of toeplitz-lm/2, r >= 0 per head;
                                                        every form takes it as `decay`, None = clip)
    z_i = sum_{j<=i} c(i-j) phi(q_i).phi(k_j) v_j / sum_{j<=i} c(i-j) phi(q_i).phi(k_j)

Three ways to compute z, equal up to rounding:
- `attention_fft` (the paper's algorithm): U_j = phi(k_j) [v_j; 1]^T is an m x (dv+1) matrix per position;
  S_i = sum_j c(i-j) U_j is a causal Toeplitz product on each of the m(dv+1) channels, computed by real FFT
  of length 2n (zero padding turns the circular convolution into the linear, causal one); then
  z_i = phi(q_i)^T S_i[:, :dv] / phi(q_i)^T S_i[:, dv]. O(n log n m dv).
- `attention_direct`: the O(n^2) masked form (fast-transformers' oracle): A = (phiQ phiK^T) * C with the
  Toeplitz matrix C[i, j] = c(i-j) for j <= i, 0 above; z = A [V, 1] and a division. Faster at short n.
- `attention_blocked`: the streaming decoder's split: a banded direct near field plus a far field of
  prefix-summed U_j weighted by c(K-1) (clip), or of geometrically decayed sums (decay). O(n K m dv); used to
  train at long contexts.

Stability: a per-query shift (each row's largest PRF logit maps to exp(0)) and one shift for all keys of a
sequence (its largest logit maps to exp(0)) cancel in the ratio, as 1/sqrt(m) does; they are applied here
(and detached: the value does not depend on them, so neither does the gradient).

Shapes: q, k: [..., n, d]; v: [..., n, dv]; W: [m, d]; bias: [H, K] or [K] (broadcast against the head axis,
which is the axis just before n). Output: [..., n, dv].
"""

import math

import torch


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """x / |x| per row, computed without overflow or underflow of |x|^2; a zero row maps to zero."""
    amax = x.detach().abs().amax(dim=-1, keepdim=True)
    safe = torch.where(amax > 0, amax, torch.ones_like(amax))
    xs = x / safe  # largest |entry| is 1, so |xs|^2 is in [1, d]
    norm = xs.square().sum(dim=-1, keepdim=True).sqrt()
    norm = torch.where(amax > 0, norm, torch.ones_like(norm))
    return xs / norm


def prf_logits(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """w_r . x~ - |x~|^2 / 2 for every row of x: [..., n, d] -> [..., n, m]."""
    xt = l2_normalize(x)
    return xt @ W.transpose(0, 1) - 0.5 * xt.square().sum(dim=-1, keepdim=True)


def query_features(q: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """phi(q_i) up to a positive per-row factor (row max shifted to exp(0)): [..., n, m]."""
    a = prf_logits(q, W)
    return torch.exp(a - a.detach().amax(dim=-1, keepdim=True))


def key_features(k: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """phi(k_j) up to one positive factor per sequence (its max over j and r shifted to exp(0)): [..., n, m]."""
    a = prf_logits(k, W)
    return torch.exp(a - a.detach().amax(dim=(-2, -1), keepdim=True))


def plain_features(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """phi(x) exactly as the formula, unshifted (for tests): [..., n, m]."""
    return torch.exp(prf_logits(x, W)) / math.sqrt(W.shape[0])


def causal_kernel(bias: torch.Tensor, n: int, decay=None) -> torch.Tensor:
    """c(t) = exp(b(t)) for t = 0..n-1: bias [..., K] -> [..., n].

    decay None: the clip tail, b(t) = b(K-1) for t >= K. decay r ([...] like bias without its last axis,
    r >= 0): the decay tail, b(t) = b(K-1) - r (t - K + 1) for t >= K (toeplitz-lm/2; r = 0 is the clip tail).
    """
    K = bias.shape[-1]
    t = torch.arange(n, device=bias.device)
    b = bias[..., t.clamp(max=K - 1)]
    if decay is not None:
        past = (t - (K - 1)).clamp(min=0).to(bias.dtype)  # [n]: lags beyond the table
        r = decay.to(bias.dtype) if torch.is_tensor(decay) else torch.tensor(decay, dtype=bias.dtype)
        b = b - r.unsqueeze(-1) * past
    return torch.exp(b)


def _kernel_for_heads(bias: torch.Tensor, n: int, decay=None) -> torch.Tensor:
    # c: [H, n] or [n]; shifted by the table's max (a common factor, cancels in the ratio; the decay tail
    # never exceeds b(K-1), so the max of c is exp(0)).
    shift = bias.detach().amax(dim=-1, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    return causal_kernel(bias - shift, n, decay)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # num: [..., n, dv]; den: [..., n, 1]. Zero vector where nothing is visible (den == 0), never NaN.
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, torch.ones_like(den), den))


def toeplitz_matrix(c: torch.Tensor, n: int) -> torch.Tensor:
    """Causal Toeplitz matrix C[i, j] = c(i-j) for j <= i, else 0: c [..., >=n] -> [..., n, n]."""
    i = torch.arange(n, device=c.device)
    lag = i[:, None] - i[None, :]  # [n, n]
    C = c[..., lag.clamp(min=0)]
    return C * (lag >= 0).to(c.dtype)


class _MaskedKernelProduct(torch.autograd.Function):
    """out = ((pq pk^T) * C) v1 with a hand-written backward that allocates only what it must.

    pq, pk: [B, H, n, m]; C: [H, n, n]; v1: [B, H, n, dv+1] -> out [B, H, n, dv+1].
    Same values and gradients as the three autograd ops; ~2x faster to train on this CPU, where every large
    temporary costs page faults and PyTorch's broadcasting multiply is slow.
    """

    @staticmethod
    def forward(ctx, pq, pk, C, v1):
        S = pq @ pk.transpose(-1, -2)  # [B, H, n, n]
        A = S * C.expand_as(S)
        ctx.save_for_backward(pq, pk, C, v1, S, A)
        return A @ v1

    @staticmethod
    def backward(ctx, g):
        pq, pk, C, v1, S, A = ctx.saved_tensors
        gA = g @ v1.transpose(-1, -2)  # [B, H, n, n]
        gv1 = A.transpose(-1, -2) @ g
        gC = torch.zeros_like(C)
        for b in range(gA.shape[0]):
            gC.addcmul_(gA[b], S[b])
        gS = gA.mul_(C.expand_as(gA))
        return gS @ pk, gS.transpose(-1, -2) @ pq, gC, gv1


def attention_direct(q, k, v, W, bias, decay=None):
    """The O(n^2) masked form. q, k: [B, H, n, d] or [H, n, d]; v: [.., n, dv]; W: [m, d]; bias: [H, K] or [K];
    decay: None (clip tail) or r [H] / scalar (decay tail, see `causal_kernel`)."""
    if q.dim() == 3:
        return attention_direct(q[None], k[None], v[None], W, bias, decay)[0]
    n = q.shape[-2]
    dv = v.shape[-1]
    pq = query_features(q, W)  # [B, H, n, m]
    pk = key_features(k, W)
    C = toeplitz_matrix(_kernel_for_heads(bias, n, decay), n)  # [H, n, n] or [n, n]
    if C.dim() == 2:
        C = C.expand(q.shape[-3], n, n)
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)  # [B, H, n, dv+1]
    out = _MaskedKernelProduct.apply(pq, pk, C.contiguous(), v1)
    return _ratio(out[..., :dv], out[..., dv:])


def attention_direct_autograd(q, k, v, W, bias, decay=None):
    """The same masked form in three plain autograd ops (the readable twin of `attention_direct`)."""
    n = q.shape[-2]
    pq = query_features(q, W)
    pk = key_features(k, W)
    C = toeplitz_matrix(_kernel_for_heads(bias, n, decay), n)
    A = (pq @ pk.transpose(-1, -2)) * C  # [..., H, n, n]
    return _ratio(A @ v, A.sum(dim=-1, keepdim=True))


def toeplitz_fft(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Causal Toeplitz product along the LAST axis by real FFT of length 2n.

    c: [..., n] kernel (broadcast against x's leading axes); x: [..., n] channels, sequence last (contiguous
    transforms are ~2x faster in PyTorch's pocketfft than strided ones).
    Returns y[..., i] = sum_{j<=i} c(i-j) x[..., j].
    """
    n = x.shape[-1]
    L = 2 * n
    xf = torch.fft.rfft(x, n=L, dim=-1)  # [..., n+1]
    cf = torch.fft.rfft(c, n=L, dim=-1)  # [..., n+1]
    return torch.fft.irfft(xf * cf, n=L, dim=-1)[..., :n]


def attention_fft(q, k, v, W, bias, block_bytes: int = 8 << 20, decay=None):
    """The paper's Algorithm 1 (FFT, O(n log n)). Same arguments and result as `attention_direct`.

    The m(dv+1) channels are transformed a block at a time (a few feature rows r, or part of one row's
    dv+1 channels when n is large; each block's spectrum about `block_bytes`), accumulating
    phi(q_i)[r] S_i[r, c] block by block: the same sums, but the temporaries stay small. One transform of
    all channels at once is ~7x slower here (n = 4096..16384, one thread): its 100 MB-1 GB temporaries are
    page-faulted in on every call.
    """
    n = q.shape[-2]
    dv = v.shape[-1]
    L = 2 * n
    pq = query_features(q, W)  # [..., H, n, m]
    pk = key_features(k, W)  # [..., H, n, m]
    m = pk.shape[-1]
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)  # [..., H, n, dv+1]
    v1t = v1.transpose(-1, -2).unsqueeze(-3)  # [..., H, 1, dv+1, n]
    c = _kernel_for_heads(bias, n, decay)  # [H, n] or [n]
    cf = torch.fft.rfft(c, n=L, dim=-1).unsqueeze(-2).unsqueeze(-2)  # [H, 1, 1, n+1]
    # block = `rows` feature rows x `cols` value channels, its spectrum about block_bytes
    per_channel = v1[..., 0, 0].numel() * (n + 1) * 2 * v1.element_size()  # spectrum bytes of one channel
    cols = max(1, min(dv + 1, block_bytes // max(per_channel, 1)))
    rows = max(1, min(m, block_bytes // max(per_channel * (dv + 1), 1))) if cols == dv + 1 else 1
    grad = torch.is_grad_enabled()
    outs = []  # per column block: [..., H, n, cols], summed over the row blocks
    for c0 in range(0, dv + 1, cols):
        acc = None
        for r0 in range(0, m, rows):
            # U[..., r, c, j] = phi(k_j)_r [v_j; 1]_c for the block: channels first, sequence last
            U = pk[..., r0:r0 + rows].transpose(-1, -2).unsqueeze(-2) * v1t[..., c0:c0 + cols, :]  # [.., rows, cols, n]
            Uf = torch.fft.rfft(U, n=L, dim=-1)  # zero-padded to 2n: the circular convolution is the causal one
            Uf = Uf * cf if grad else Uf.mul_(cf)
            S = torch.fft.irfft(Uf, n=L, dim=-1)[..., :n]  # S_i = sum_{j<=i} c(i-j) U_j
            part = torch.einsum('...ir,...rci->...ic', pq[..., r0:r0 + rows], S)  # [..., H, n, cols]
            acc = part if acc is None else (acc + part if grad else acc.add_(part))
        outs.append(acc)
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # [..., H, n, dv+1]
    # FFT rounding never gives an exact 0: rows before the kernel's first nonzero lag see no key at all
    # (phi > 0, so every later row sees one), and their denominator is set to exactly 0.
    first = (c.detach() > 0).to(torch.int64).argmax(dim=-1, keepdim=True)  # [H, 1]; n when c is all zero
    first = torch.where((c.detach() > 0).any(dim=-1, keepdim=True), first, torch.full_like(first, n))
    blind = (torch.arange(n, device=c.device) < first).unsqueeze(-1)  # [H, n, 1]
    den = torch.where(blind, torch.zeros_like(out[..., dv:]), out[..., dv:])
    return _ratio(out[..., :dv], den)


def attention_blocked(q, k, v, W, bias, block: int = 0, far_scale: float = 1.0, decay=None, scan: int = 256):
    """Near field + far field: the decoder's algorithm (DESIGN section 2) as a training form.

    Lags t >= K-1 all weigh c(K-1) = c_tail. Cut the sequence into blocks of P >= K positions. A query in
    block b sees the keys of blocks b-1 and b through the band kernel C[r, s] = c(P + r - s) (clipped lags,
    0 above the diagonal), and every key of blocks <= b-2 (lags > P >= K-1) with the one weight c_tail:
    c_tail phi(q_i)^T F_{b-2}, where F is the prefix sum over blocks of phi(k_j) [v_j; 1]^T. O(n P m dv):
    linear in n, and exact, not an approximation: same values as `attention_fft` up to rounding (tested).
    Used to train at long contexts (4096+), where the FFT form is ~5x slower on this CPU.

    Same arguments and result as `attention_direct`; `block` = P (0: max(K, 64)).
    `far_scale` (training only; 1 = the exact attention): multiplies the far-field sums, as if every query sat
    `far_scale` times further into a stream with the same mix of old keys (see train.py --far-scale-max).

    With the decay tail (`decay` = r [H] or a scalar, r >= 0) a far key at lag t weighs
    c(K-1) g^(t-K+1), g = e^-r, and the prefix sums become a geometric recurrence over blocks:
    G_b = g^P G_{b-1} + L_b, L_b = sum_s g^(P-1-s) U_{bP+s}, i.e. the sums decayed to block b's last position.
    Row r of block b reads G_{b-2} weighted by c(K-1) g^(P+r+2-K) (every exponent >= 0: nothing overflows).
    The recurrence runs `scan` blocks at a time as one [scan, scan] matrix of powers g^(P(b-b')) (a carry
    between chunks), so it stays a few matmuls at training lengths and linear in n at any length.
    """
    if q.dim() == 3:
        return attention_blocked(q[None], k[None], v[None], W, bias, block, far_scale, decay, scan)[0]
    n = q.shape[-2]
    dv = v.shape[-1]
    K = bias.shape[-1]
    P = block or max(K, 64)
    if P < K:
        raise ValueError(f'block {P} must be >= the RPE length {K}')
    nb = -(-n // P)
    pad = nb * P - n
    pq = query_features(q, W)  # [B, H, n, m]
    pk = key_features(k, W)
    m = pk.shape[-1]
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)  # [B, H, n, dv+1]
    if pad:
        # padding at the end: causal, so no real query sees a padded key
        pq = torch.nn.functional.pad(pq, (0, 0, 0, pad))
        pk = torch.nn.functional.pad(pk, (0, 0, 0, pad))
        v1 = torch.nn.functional.pad(v1, (0, 0, 0, pad))
    lead = pq.shape[:-2]
    qb = pq.reshape(*lead, nb, P, m)  # [B, H, nb, P, m]
    kb = pk.reshape(*lead, nb, P, m)
    vb = v1.reshape(*lead, nb, P, dv + 1)
    # keys of blocks b-1 and b: [B, H, nb, 2P, .] (block -1 is zeros)
    kprev = torch.nn.functional.pad(kb, (0, 0, 0, 0, 1, 0))[..., :nb, :, :]
    vprev = torch.nn.functional.pad(vb, (0, 0, 0, 0, 1, 0))[..., :nb, :, :]
    kband = torch.cat([kprev, kb], dim=-2)
    vband = torch.cat([vprev, vb], dim=-2)
    c = _kernel_for_heads(bias, 2 * P, decay)  # [H, 2P] or [2P]
    r = torch.arange(P, device=q.device)
    s = torch.arange(2 * P, device=q.device)
    lag = P + r[:, None] - s[None, :]  # [P, 2P]
    C = c[..., lag.clamp(min=0)] * (lag >= 0).to(c.dtype)  # [H, P, 2P] or [P, 2P]
    if C.dim() == 3:
        C = C.unsqueeze(-3)  # [H, 1, P, 2P]: broadcast over blocks
    A = (qb @ kband.transpose(-1, -2)) * C  # [B, H, nb, P, 2P]
    out = A @ vband  # [B, H, nb, P, dv+1]
    c_tail = c[..., K - 1]  # [H] or []
    if c_tail.dim() == 1:
        c_tail = c_tail[:, None, None, None]  # [H, 1, 1, 1]
    if decay is None:
        # far field: F_b = sum over blocks <= b of phi(k)^T [v; 1]; block b reads F_{b-2}
        blocksum = kb.transpose(-1, -2) @ vb  # [B, H, nb, m, dv+1]
        prefix = torch.cumsum(blocksum, dim=-3)
        far = torch.nn.functional.pad(prefix, (0, 0, 0, 0, 2, 0))[..., :nb, :, :]  # F_{b-2}, zero for b < 2
        out = out + (c_tail * far_scale) * (qb @ far)
    else:
        r = decay.to(c.dtype) if torch.is_tensor(decay) else torch.tensor(decay, dtype=c.dtype)
        r = r.reshape(-1).expand(q.shape[1])  # [H] (a scalar: one rate for every head)
        lags = torch.arange(P, device=q.device, dtype=c.dtype)
        w_in = torch.exp(-r[:, None] * (P - 1 - lags))  # [H, P]: key s of a block, decayed to the block's end
        w_out = torch.exp(-r[:, None] * (P + 2 - K + lags))  # [H, P]: row r of block b reads G_{b-2}
        L = (kb * w_in[:, None, :, None]).transpose(-1, -2) @ vb  # [B, H, nb, m, dv+1]
        G = []
        carry = None  # G of the last block of the previous chunk
        for b0 in range(0, nb, scan):
            Lc = L[..., b0:b0 + scan, :, :]
            q_ = Lc.shape[-3]
            bi = torch.arange(q_, device=q.device, dtype=c.dtype)
            dist = bi[:, None] - bi[None, :]  # [q_, q_]
            D = torch.exp(-r[:, None, None] * P * dist.clamp(min=0)) * (dist >= 0).to(c.dtype)  # [H, q_, q_]
            Gc = torch.einsum('hbc,...hcij->...hbij', D, Lc)
            if carry is not None:
                Gc = Gc + torch.exp(-r[:, None] * P * (bi + 1))[:, :, None, None] * carry.unsqueeze(-3)
            G.append(Gc)
            carry = Gc[..., -1, :, :]
        G = torch.cat(G, dim=-3) if len(G) > 1 else G[0]
        far = torch.nn.functional.pad(G, (0, 0, 0, 0, 2, 0))[..., :nb, :, :]  # G_{b-2}, zero for b < 2
        out = out + (c_tail * far_scale) * w_out[:, None, :, None] * (qb @ far)
    out = out.reshape(*lead, nb * P, dv + 1)[..., :n, :]
    return _ratio(out[..., :dv], out[..., dv:])


def attention_reference(q, k, v, W, bias, decay=None):
    """The formula read literally (loops over i, unshifted features): the slow oracle for tests."""
    n = q.shape[-2]
    pq = plain_features(q, W)
    pk = plain_features(k, W)
    c = causal_kernel(bias, n, decay)
    out = torch.zeros_like(v)
    for i in range(n):
        w = c[..., i - torch.arange(i + 1)].unsqueeze(-1)  # [H, i+1, 1] or [i+1, 1]
        s = (pq[..., i : i + 1, :] * pk[..., : i + 1, :]).sum(-1, keepdim=True) * w  # [..., i+1, 1]
        den = s.sum(-2)
        out[..., i, :] = _ratio((s * v[..., : i + 1, :]).sum(-2), den)
    return out


def orthogonal_projection(m: int, d: int, generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    """Performer's orthogonal Gaussian random features: W [m, d].

    ceil(m/d) blocks of d orthonormal rows (QR of a Gaussian d x d matrix), the last block truncated, rows
    scaled by the norms of fresh Gaussian d-vectors (chi(d)), so each row has the marginal law of N(0, I_d).
    """
    blocks = []
    for _ in range((m + d - 1) // d):
        g = torch.randn(d, d, generator=generator, dtype=torch.float64)
        qm, r = torch.linalg.qr(g)
        qm = qm * torch.sign(torch.diagonal(r)).unsqueeze(0)  # Haar-distributed
        blocks.append(qm.transpose(0, 1))
    Wm = torch.cat(blocks, dim=0)[:m]
    scale = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (Wm * scale).to(dtype)
