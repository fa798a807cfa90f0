// Token ids at the model's boundary (shared by Model and Session, so neither imports the other for it).
import { ShapeError, describe } from '../core/errors.js';

/** Most tokens one call takes (the length of an array-like is read once and must be an integer in range). */
export const MAX_TOKENS_PER_CALL = 2 ** 32 - 1;

function checkShape(tokens: ArrayLike<number>, vocab: number, name: string): number {
  if (tokens === null || typeof tokens !== 'object') {
    throw new ShapeError(`${name} must be an array of token ids (bytes 0..${vocab - 1}), got ${describe(tokens)}`);
  }
  const n = tokens.length;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_TOKENS_PER_CALL) {
    throw new ShapeError(`${name} must be an array of token ids (bytes 0..${vocab - 1}) with an integer length in [0, ${MAX_TOKENS_PER_CALL}], got length ${describe(n)}`);
  }
  return n;
}

/** Check tokens: integers in [0, vocab). */
export function checkTokens(tokens: ArrayLike<number>, vocab: number, name = 'tokens'): void {
  const n = checkShape(tokens, vocab, name);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new ShapeError(`${name}[${i}] must be an integer token id in [0, ${vocab - 1}], got ${describe(t)}`);
    }
  }
}

/**
 * Checked copy of tokens (vocab <= 256): each element read exactly once, so what was checked is what is
 * used, whatever the caller (or a callback, or a getter) does to its array afterwards. A Uint8Array is
 * copied without checks (every byte is a valid id of a 256-token vocabulary).
 */
export function copyTokens(tokens: ArrayLike<number>, vocab: number, name = 'tokens'): Uint8Array {
  const n = checkShape(tokens, vocab, name);
  if (tokens instanceof Uint8Array && vocab === 256) return tokens.slice(0, n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new ShapeError(`${name}[${i}] must be an integer token id in [0, ${vocab - 1}], got ${describe(t)}`);
    }
    out[i] = t;
  }
  return out;
}
