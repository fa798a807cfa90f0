// The arithmetic a Decoder keeps its state in (DESIGN section 8): 'float64' (the default, the reference) or
// 'float32' (opt-in: rings of float32 key features and values, half the state bytes, float32 window kernels,
// float64 far field and accumulators; its own accuracy contract, per-row normwise error <= 1e-4).
import { ConfigError, describe } from '../core/errors.js';

export type Dtype = 'float32' | 'float64';

export const DTYPE_NAMES: readonly Dtype[] = ['float64', 'float32'];

/**
 * Validate a dtype (undefined is 'float64'; null is refused). Throws ConfigError naming `where` and what arrived, or calls `fail`
 * with the message (a decoder state's check throws StateError).
 */
export function checkDtypeOption(value: unknown, where = 'options.dtype', fail?: (message: string) => never): Dtype {
  const dtype = value === undefined ? 'float64' : value;
  if (dtype === 'float64' || dtype === 'float32') return dtype;
  const message = `${where} must be 'float64' or 'float32', got ${describe(value)}`;
  if (fail !== undefined) return fail(message);
  throw new ConfigError(message);
}
