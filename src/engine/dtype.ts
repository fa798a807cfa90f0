// The element type of the hot loops: 'float64' (the default and the reference) or 'float32' (opt-in, with its own
// accuracy contract). attention(): the FFT near field on float32 channels. Decoder: rings of float32 key features
// and values (half the state bytes) and float32 window kernels; features, far field and accumulators stay float64.
import { ConfigError, describe } from '../core/errors.js';

export type DType = 'float32' | 'float64';

/** The dtype names (the one place that knows them). */
export const DTYPE_NAMES: readonly DType[] = ['float64', 'float32'];

/**
 * Validate a dtype option: undefined is 'float64'. Throws ConfigError naming `where`, what it must be and what
 * arrived, or calls `fail` with the message (a decoder state's check throws StateError).
 */
export function checkDtypeOption(value: unknown, where = 'options.dtype', fail?: (message: string) => never): DType {
  const dtype = value ?? 'float64';
  if ((DTYPE_NAMES as readonly unknown[]).includes(dtype)) return dtype as DType;
  const message = `${where} must be 'float64' or 'float32', got ${describe(dtype)}`;
  if (fail !== undefined) return fail(message);
  throw new ConfigError(message);
}
