// Size limits shared by every path that builds a config or reads one back (one rule, one place).

/** Longest RPE table (entries per side). */
export const MAX_TABLE = 1 << 26;
/** Largest PRF projection W (count x keyDim float64 entries: 512 MiB). */
export const MAX_PROJECTION_ENTRIES = 1 << 26;
/** Bytes of derived kernel tables a config may need (one float64 per lag of every distinct table). */
export const MAX_DERIVED_BYTES = 1 << 30;
/** Largest position a Decoder reaches (far below 2^53, so position + L stays exact). */
export const MAX_POSITION = 2 ** 50;
