// The element type of the hot loops: 'float64' (the default and the reference) or 'float32' (opt-in: the FFT near
// field on float32 channels, with its own accuracy contract; see attention()).
import { ConfigError, describe } from '../core/errors.js';

export type DType = 'float32' | 'float64';

/** The dtype names (the one place that knows them). */
export const DTYPE_NAMES: readonly DType[] = ['float64', 'float32'];

/** Validate a dtype option: undefined is 'float64'. Throws ConfigError naming `where`, what it must be and what arrived. */
export function checkDtypeOption(value: unknown, where = 'options.dtype'): DType {
  const dtype = value ?? 'float64';
  if ((DTYPE_NAMES as readonly unknown[]).includes(dtype)) return dtype as DType;
  throw new ConfigError(`${where} must be 'float64' or 'float32', got ${describe(dtype)}`);
}
