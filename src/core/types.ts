// Public configuration types (plain data). Validation and resolution live in engine/config.ts.

/** How b(t) continues for lags past the table: 'clip' (constant), 'zero' (window), or linear decay. */
export type Tail = 'clip' | 'zero' | { decay: number };

/** One side of an RPE: bias[0..K-1] is b(0..K-1) (past) or b(-1..-K) (future). */
export interface RpeSide {
  bias: ArrayLike<number>;
  /** default 'clip' */
  tail?: Tail;
}

/** Relative positional encoding of one head. `future` omitted = mirror of `past`. */
export interface RpeSpec {
  past: RpeSide;
  future?: RpeSide;
}

export type Normalize = 'l2' | 'scale' | 'none';

export type FeatureSpec =
  | {
      kind: 'prf';
      /** m, the number of random features */
      count: number;
      /** seed of the projection W (default 0); ignored when `projection` is given */
      seed?: number;
      /** W: [count, keyDim] row-major, shared by all heads */
      projection?: Float64Array | Float32Array;
      /** default 'l2' (the paper's NPRF) */
      normalize?: Normalize;
      /** orthogonal blocks (default true) or i.i.d. Gaussian rows */
      orthogonal?: boolean;
    }
  | { kind: 'elu+1' }
  | { kind: 'relu' };

export interface AttentionConfig {
  heads: number;
  keyDim: number;
  valueDim: number;
  /** default true */
  causal?: boolean;
  features: FeatureSpec;
  /** one RPE shared by all heads, or one per head */
  rpe: RpeSpec | RpeSpec[];
}

export type ResolvedFeatures =
  | { kind: 'prf'; count: number; normalize: Normalize; projection: Float64Array /* [m, d] */; seed: number | null; orthogonal: boolean }
  | { kind: 'elu+1' }
  | { kind: 'relu' };

