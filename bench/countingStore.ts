// A SessionStore wrapper that counts the bytes written through it and times its checkpoint writes (the
// sessions benches in Node and in Chromium; no Node built-in, so the browser page bundles it too).
import type { SessionStore } from '../src/sessions/index.js';

export function counting(inner: SessionStore): SessionStore & { bytes: number; writeMs: number[] } {
  const c = Object.create(inner) as SessionStore & { bytes: number; writeMs: number[] };
  c.bytes = 0;
  c.writeMs = [];
  c.append = async (l, seq, b) => {
    c.bytes += b.length;
    return inner.append(l, seq, b);
  };
  c.checkpoint = async (l, b, t) => {
    c.bytes += b.length;
    const t0 = performance.now();
    await inner.checkpoint(l, b, t);
    c.writeMs.push(performance.now() - t0);
  };
  return c;
}
