"""Tests of attention.py: the FFT form (the paper's algorithm) equals the direct masked form and the literal
formula in float64; gradients agree with finite differences; the model and the safetensors round trip.

    /usr/bin/python3 -m unittest discover -s train      or      /usr/bin/python3 train/test_attention.py
"""

import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from attention import (attention_blocked, attention_direct, attention_direct_autograd, attention_fft,  # noqa: E402
                       attention_reference, causal_kernel, l2_normalize, orthogonal_projection, plain_features,
                       query_features, key_features, toeplitz_fft, toeplitz_matrix)

F64 = torch.float64


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest per-row relative error (rows = last axis), against b."""
    num = (a - b).norm(dim=-1)
    den = b.norm(dim=-1).clamp_min(1e-300)
    return (num / den).max().item()


def random_case(g, B, H, n, d, dv, m, K, bias_lo=-3.0, bias_hi=2.0, scale=1.0):
    q = torch.randn(B, H, n, d, generator=g, dtype=F64) * scale
    k = torch.randn(B, H, n, d, generator=g, dtype=F64) * scale
    v = torch.randn(B, H, n, dv, generator=g, dtype=F64)
    W = orthogonal_projection(m, d, g, dtype=F64)
    bias = bias_lo + (bias_hi - bias_lo) * torch.rand(H, K, generator=g, dtype=F64)
    return q, k, v, W, bias


class FeatureTests(unittest.TestCase):
    def test_l2_normalize_is_scale_safe_and_zero_safe(self):
        x = torch.tensor([[3.0, 4.0], [3e200, 4e200], [3e-200, 4e-200], [0.0, 0.0]], dtype=F64)
        y = l2_normalize(x)
        expect = torch.tensor([[0.6, 0.8]] * 3 + [[0.0, 0.0]], dtype=F64)
        self.assertLess((y - expect).abs().max().item(), 1e-15)

    def test_shifted_features_are_proportional_to_the_formula(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 9, 8, generator=g, dtype=F64)
        W = orthogonal_projection(12, 8, g, dtype=F64)
        ref = plain_features(x, W)
        for f, axes in ((query_features, (-1,)), (key_features, (-2, -1))):
            ratio = f(x, W) / ref
            spread = ratio.amax(dim=axes) / ratio.amin(dim=axes)
            self.assertLess((spread - 1).abs().max().item(), 1e-13)

    def test_orthogonal_projection_blocks(self):
        g = torch.Generator().manual_seed(2)
        W = orthogonal_projection(20, 8, g, dtype=F64)  # blocks of 8, 8, 4 rows
        self.assertEqual(tuple(W.shape), (20, 8))
        for b0 in (0, 8, 16):
            blk = W[b0:b0 + 8]
            unit = blk / blk.norm(dim=1, keepdim=True)
            gram = unit @ unit.T
            self.assertLess((gram - torch.eye(blk.shape[0], dtype=F64)).abs().max().item(), 1e-12)


class KernelTests(unittest.TestCase):
    def test_clip_tail(self):
        b = torch.tensor([[0.0, -1.0, -2.0]], dtype=F64)
        c = causal_kernel(b, 6)
        self.assertTrue(torch.allclose(c, torch.exp(torch.tensor([[0, -1, -2, -2, -2, -2.0]], dtype=F64))))

    def test_toeplitz_fft_equals_matrix_product(self):
        g = torch.Generator().manual_seed(3)
        for n in (1, 2, 7, 64, 100):
            c = torch.rand(3, n, generator=g, dtype=F64)
            x = torch.randn(2, 3, n, 5, generator=g, dtype=F64)  # [B, H, n, channels]
            direct = toeplitz_matrix(c, n) @ x
            fft = toeplitz_fft(c.unsqueeze(-2), x.transpose(-1, -2)).transpose(-1, -2)
            self.assertLess(rel_err(fft, direct), 1e-12)


class AttentionEqualityTests(unittest.TestCase):
    def test_fft_equals_direct_over_random_shapes(self):
        g = torch.Generator().manual_seed(4)
        shapes = [(1, 1, 1, 4, 3, 4, 1), (2, 3, 17, 8, 5, 6, 7), (1, 2, 64, 16, 16, 32, 64),
                  (3, 4, 100, 8, 4, 16, 13), (1, 1, 257, 32, 32, 32, 128), (2, 2, 300, 6, 9, 20, 400),
                  (1, 3, 512, 16, 8, 8, 1)]
        for (B, H, n, d, dv, m, K) in shapes:
            with self.subTest(B=B, H=H, n=n, d=d, dv=dv, m=m, K=K):
                q, k, v, W, bias = random_case(g, B, H, n, d, dv, m, K)
                fft = attention_fft(q, k, v, W, bias)
                direct = attention_direct(q, k, v, W, bias)
                plain = attention_direct_autograd(q, k, v, W, bias)
                self.assertEqual(tuple(fft.shape), (B, H, n, dv))
                self.assertLess(rel_err(fft, direct), 1e-10)
                self.assertLess(rel_err(plain, direct), 1e-12)
                one_row = attention_fft(q, k, v, W, bias, block_bytes=1)  # one channel per block
                self.assertLess(rel_err(one_row, fft), 1e-12)

    def test_blocked_equals_direct_over_random_shapes_and_blocks(self):
        # n below, at and across block boundaries; blocks of exactly K and larger; K = 1 (no RPE)
        g = torch.Generator().manual_seed(11)
        shapes = [(1, 1, 1, 4, 3, 4, 1, 0), (2, 3, 17, 8, 5, 6, 7, 7), (1, 2, 64, 16, 16, 32, 16, 16),
                  (3, 4, 100, 8, 4, 16, 13, 20), (1, 1, 257, 32, 32, 32, 128, 0), (2, 2, 300, 6, 9, 20, 4, 5),
                  (1, 3, 513, 16, 8, 8, 1, 0), (1, 2, 640, 8, 4, 8, 64, 64)]
        for (B, H, n, d, dv, m, K, P) in shapes:
            with self.subTest(B=B, H=H, n=n, d=d, dv=dv, m=m, K=K, P=P):
                q, k, v, W, bias = random_case(g, B, H, n, d, dv, m, K)
                blocked = attention_blocked(q, k, v, W, bias, block=P)
                direct = attention_direct(q, k, v, W, bias)
                self.assertEqual(tuple(blocked.shape), (B, H, n, dv))
                self.assertLess(rel_err(blocked, direct), 1e-12)
                shared = bias[0]  # one table for all heads: [K]
                self.assertLess(rel_err(attention_blocked(q, k, v, W, shared, block=P),
                                        attention_direct(q, k, v, W, shared)), 1e-12)
        with self.assertRaises(ValueError):
            attention_blocked(q, k, v, W, torch.zeros(2, 70, dtype=F64), block=64)

    def test_decay_tail_forms_agree(self):
        # toeplitz-lm/2: FFT == direct == blocked (one scan chunk, and chunks of 1 and 3 blocks: the carry)
        # == the formula, per-head and shared rates; rate 0 is exactly the clip tail
        g = torch.Generator().manual_seed(13)
        shapes = [(1, 1, 1, 4, 3, 4, 1, 0), (2, 3, 17, 8, 5, 6, 7, 7), (1, 2, 64, 16, 16, 32, 16, 16),
                  (3, 4, 100, 8, 4, 16, 13, 20), (1, 1, 257, 32, 32, 32, 128, 0), (2, 2, 300, 6, 9, 20, 4, 5),
                  (1, 2, 640, 8, 4, 8, 64, 64)]
        for (B, H, n, d, dv, m, K, P) in shapes:
            with self.subTest(B=B, H=H, n=n, d=d, dv=dv, m=m, K=K, P=P):
                q, k, v, W, bias = random_case(g, B, H, n, d, dv, m, K)
                r = 0.3 * torch.rand(H, generator=g, dtype=F64)
                r[0] = 1e-3  # a slow head: its far field matters
                direct = attention_direct(q, k, v, W, bias, r)
                self.assertLess(rel_err(attention_fft(q, k, v, W, bias, decay=r), direct), 1e-10)
                self.assertLess(rel_err(attention_direct_autograd(q, k, v, W, bias, r), direct), 1e-12)
                for scan in (256, 1, 3):
                    self.assertLess(rel_err(attention_blocked(q, k, v, W, bias, block=P, decay=r, scan=scan),
                                            direct), 1e-12)
                self.assertLess(rel_err(attention_blocked(q, k, v, W, bias[0], block=P, decay=0.01),
                                        attention_direct(q, k, v, W, bias[0], 0.01)), 1e-12)
                zero = torch.zeros(H, dtype=F64)
                self.assertLess(rel_err(attention_blocked(q, k, v, W, bias, block=P, decay=zero),
                                        attention_direct(q, k, v, W, bias)), 1e-12)
                if n <= 100:
                    self.assertLess(rel_err(attention_reference(q, k, v, W, bias, r), direct), 1e-10)

    def test_decay_tail_kernel(self):
        b = torch.tensor([[0.0, -1.0, -2.0], [0.5, 0.0, -1.0]], dtype=F64)
        c = causal_kernel(b, 6, torch.tensor([0.5, 0.0], dtype=F64))
        expect = torch.tensor([[0, -1, -2, -2.5, -3, -3.5], [0.5, 0, -1, -1, -1, -1]], dtype=F64)
        self.assertLess((c - torch.exp(expect)).abs().max().item(), 1e-15)

    def test_decay_bounds_the_far_field_where_clip_does_not(self):
        # the point of toeplitz-lm/2: with keys far in the past dominating, a clip head's output keeps
        # drifting towards their average while a decay head's settles
        g = torch.Generator().manual_seed(14)
        q, k, v, W, bias = random_case(g, 1, 1, 4000, 8, 4, 8, 16)
        v[..., :1000, :] += 5.0  # old keys carry a different value
        clip = attention_blocked(q, k, v, W, bias, block=16)
        dec = attention_blocked(q, k, v, W, bias, block=16, decay=torch.tensor([0.05], dtype=F64))
        self.assertLess(dec[0, 0, 2000:].mean(0).abs().max().item(), 1.0)
        self.assertGreater(clip[0, 0, 2000:].mean(0).abs().max().item(), 1.5)

    def test_far_scale_touches_only_rows_with_a_far_field(self):
        g = torch.Generator().manual_seed(12)
        q, k, v, W, bias = random_case(g, 1, 2, 100, 8, 4, 8, 10)
        exact = attention_blocked(q, k, v, W, bias, block=16)
        scaled = attention_blocked(q, k, v, W, bias, block=16, far_scale=4.0)
        self.assertEqual((scaled[..., :32, :] - exact[..., :32, :]).abs().max().item(), 0.0)  # blocks 0, 1
        self.assertGreater((scaled[..., 32:, :] - exact[..., 32:, :]).abs().min().item(), 0.0)

    def test_equals_the_literal_formula(self):
        g = torch.Generator().manual_seed(5)
        for (B, H, n, d, dv, m, K) in [(1, 2, 9, 4, 3, 5, 4), (2, 1, 40, 8, 6, 16, 50)]:
            q, k, v, W, bias = random_case(g, B, H, n, d, dv, m, K)
            ref = attention_reference(q, k, v, W, bias)
            self.assertLess(rel_err(attention_fft(q, k, v, W, bias), ref), 1e-10)
            self.assertLess(rel_err(attention_direct(q, k, v, W, bias), ref), 1e-12)

    def test_large_dynamic_range_stays_finite(self):
        # Huge |q|, |k| are harmless (l2 normalization). Biases from -20 to 5 (DESIGN section 4) give c a
        # dynamic range of e^25: one FFT of the whole sequence then loses about log10(e^25) ~ 11 digits
        # on the smallest outputs (why the TypeScript engine works blockwise); the direct form does not.
        g = torch.Generator().manual_seed(6)
        q, k, v, W, bias = random_case(g, 1, 2, 200, 16, 8, 32, 200, bias_lo=-20.0, bias_hi=5.0, scale=1e150)
        fft = attention_fft(q, k, v, W, bias)
        direct = attention_direct(q, k, v, W, bias)
        self.assertTrue(torch.isfinite(fft).all() and torch.isfinite(direct).all())
        self.assertLess(rel_err(fft, direct), 1e-6)

    def test_no_visible_key_gives_zero(self):
        g = torch.Generator().manual_seed(7)
        q, k, v, W, _ = random_case(g, 1, 1, 6, 4, 3, 5, 1)
        bias = torch.tensor([[-math.inf, 0.0]], dtype=F64)  # c(0) = 0: position 0 sees nothing
        for f in (attention_fft, attention_direct, attention_reference):
            z = f(q, k, v, W, bias)
            self.assertTrue(torch.isfinite(z).all())
            self.assertEqual(z[0, 0, 0].abs().max().item(), 0.0)

    def test_three_dimensional_inputs(self):
        g = torch.Generator().manual_seed(8)
        q, k, v, W, bias = random_case(g, 1, 3, 20, 8, 4, 8, 5)
        a = attention_direct(q[0], k[0], v[0], W, bias)
        b = attention_fft(q[0], k[0], v[0], W, bias)
        self.assertLess(rel_err(a, attention_direct(q, k, v, W, bias)[0]), 1e-15)
        self.assertLess(rel_err(b, a), 1e-10)


class GradientTests(unittest.TestCase):
    def _check(self, f):
        g = torch.Generator().manual_seed(9)
        q, k, v, W, bias = random_case(g, 2, 2, 6, 4, 3, 5, 4, bias_lo=-1.0, bias_hi=1.0)
        args = [t.clone().requires_grad_(True) for t in (q, k, v)]
        b = bias.clone().requires_grad_(True)
        self.assertTrue(torch.autograd.gradcheck(lambda q, k, v, b: f(q, k, v, W, b), (*args, b),
                                                 eps=1e-6, atol=1e-7, rtol=1e-5))

    def test_gradcheck_fft(self):
        self._check(attention_fft)
        self._check(lambda q, k, v, W, b: attention_fft(q, k, v, W, b, block_bytes=1))  # one channel per block
        self._check(lambda q, k, v, W, b: attention_fft(q, k, v, W, b, block_bytes=2 * 2 * 7 * 2 * 8 * 2))  # 2 channels per block

    def test_gradcheck_direct(self):
        self._check(attention_direct)

    def test_gradcheck_blocked(self):
        self._check(lambda q, k, v, W, b: attention_blocked(q, k, v, W, b, block=4))  # n = 6: far field used

    def _check_decay(self, f):
        # gradients of q, k, v, the table and the per-head rates r (lags up to 5 > K - 1 = 3: the tail is used)
        g = torch.Generator().manual_seed(15)
        q, k, v, W, bias = random_case(g, 2, 2, 6, 4, 3, 5, 4, bias_lo=-1.0, bias_hi=1.0)
        args = [t.clone().requires_grad_(True) for t in (q, k, v, bias)]
        r = torch.tensor([0.3, 0.7], dtype=F64, requires_grad=True)
        self.assertTrue(torch.autograd.gradcheck(lambda q, k, v, b, r: f(q, k, v, W, b, r), (*args, r),
                                                 eps=1e-6, atol=1e-7, rtol=1e-5))

    def test_gradcheck_decay_tail(self):
        self._check_decay(attention_direct)
        self._check_decay(attention_direct_autograd)
        self._check_decay(lambda q, k, v, W, b, r: attention_fft(q, k, v, W, b, decay=r))
        self._check_decay(lambda q, k, v, W, b, r: attention_blocked(q, k, v, W, b, block=4, decay=r))
        self._check_decay(lambda q, k, v, W, b, r: attention_blocked(q, k, v, W, b, block=4, decay=r, scan=1))

    def test_gradcheck_direct_autograd(self):
        self._check(attention_direct_autograd)

    def test_fft_and_direct_gradients_agree(self):
        g = torch.Generator().manual_seed(10)
        q, k, v, W, bias = random_case(g, 2, 3, 50, 8, 6, 16, 20)
        grads = []
        for f in (attention_fft, attention_direct, lambda *a: attention_blocked(*a, block=20)):
            ts = [t.clone().requires_grad_(True) for t in (q, k, v, bias)]
            w = torch.randn(2, 3, 50, 6, generator=torch.Generator().manual_seed(0), dtype=F64)
            (f(*ts[:3], W, ts[3]) * w).sum().backward()
            grads.append([t.grad for t in ts])
        for other in (grads[0], grads[2]):
            for a, b in zip(other, grads[1]):
                self.assertLess((a - b).abs().max().item() / b.abs().max().item(), 1e-10)


class ModelTests(unittest.TestCase):
    def test_model_forms_agree_and_export_round_trips(self):
        from export import export_model, load_model, read_safetensors
        from model import ModelConfig, ToeplitzLM
        torch.manual_seed(0)
        for tied in (True, False):
            cfg = ModelConfig(dim=32, layers=2, heads=2, keyDim=16, valueDim=8, hidden=40, features=12,
                              rpe_length=9, tiedEmbedding=tied)
            m = ToeplitzLM(cfg)
            with torch.no_grad():
                for l in m.layers:
                    l.attention.rpe_bias.normal_()
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, 'm.safetensors')
                export_model(m, path, {'steps': 0})
                with open(path, 'rb') as fh:
                    raw = fh.read()
                header_len = int.from_bytes(raw[:8], 'little')
                self.assertEqual((8 + header_len) % 8, 0)
                tensors, meta = read_safetensors(path)
                self.assertEqual(set(tensors), set(m.state_dict()))
                self.assertEqual('output.weight' in tensors, not tied)
                m64, config = load_model(path)
            self.assertEqual(config['format'], 'toeplitz-lm/1')
            self.assertEqual(config['steps'], 0)
            tokens = torch.randint(0, 256, (1, 70))
            m64.set_method('fft')
            a = m64(tokens)
            m64.set_method('direct')
            b = m64(tokens)
            self.assertLess(rel_err(a, b), 1e-10)
            m64.set_method('blocked')
            self.assertLess(rel_err(m64(tokens), b), 1e-10)
            m.set_method('direct')
            c = m(tokens).double()
            self.assertLess(rel_err(c, b), 1e-4)  # float32 model vs its float64 copy


class DecayModelTests(unittest.TestCase):
    def test_v2_export_round_trips_and_v1_converts(self):
        from export import export_model, load_model, read_safetensors
        from model import ModelConfig, ToeplitzLM
        torch.manual_seed(1)
        cfg = ModelConfig(dim=32, layers=2, heads=2, keyDim=16, valueDim=8, hidden=40, features=12,
                          rpe_length=9, rpe_tail='decay', decay_min=0.01, decay_init=0.05)
        m = ToeplitzLM(cfg)
        with torch.no_grad():
            for l in m.layers:
                l.attention.rpe_bias.normal_()
                l.attention.rpe_decay_log.normal_(-3.0, 1.0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'm.safetensors')
            export_model(m, path, {})
            tensors, _ = read_safetensors(path)
            self.assertEqual(tensors['layers.1.attention.rpe_decay'].shape, (2,))
            self.assertNotIn('layers.1.attention.rpe_decay_log', tensors)
            r = m.layers[1].attention.decay().detach()
            self.assertTrue(torch.equal(tensors['layers.1.attention.rpe_decay'], r.float()))
            m64, config = load_model(path)
        self.assertEqual(config['format'], 'toeplitz-lm/2')
        self.assertEqual(config['rpe'], {'length': 9, 'tail': 'decay'})
        # the loaded rates are the file's exactly
        self.assertTrue(torch.equal(m64.layers[1].attention.decay(), r.float().double()))
        tokens = torch.randint(0, 256, (1, 70))
        outs = []
        for method in ('fft', 'direct', 'blocked'):
            m64.set_method(method)
            outs.append(m64(tokens))
        self.assertLess(rel_err(outs[0], outs[1]), 1e-10)
        self.assertLess(rel_err(outs[2], outs[1]), 1e-10)
        m.set_method('direct')
        self.assertLess(rel_err(m(tokens).double(), outs[1]), 1e-4)


if __name__ == '__main__':
    unittest.main()
