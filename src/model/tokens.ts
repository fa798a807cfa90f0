// Token ids at the model's boundary (shared by Model and Session, so neither imports the other for it).
import { ShapeError, describe } from '../core/errors.js';

/** Check tokens: integers in [0, vocab). */
export function checkTokens(tokens: ArrayLike<number>, vocab: number, name = 'tokens'): void {
  if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') {
    throw new ShapeError(`${name} must be an array of token ids (bytes 0..${vocab - 1}), got ${describe(tokens)}`);
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new ShapeError(`${name}[${i}] must be an integer token id in [0, ${vocab - 1}], got ${describe(t)}`);
    }
  }
}
