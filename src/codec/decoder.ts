// The public Decoder: the engine's DecoderCore plus snapshot bytes (this is the folder that imports
// msgpackr, so the engine stays free of it and an attention()-only bundle carries none of it).
import { DecoderCore, type DecoderOptions } from '../engine/decoder.js';
import { decodeSnapshotAs, encodeSnapshot, type DecodeOptions } from './snapshot.js';

export type { DecoderOptions };

export class Decoder extends DecoderCore {

  /** The whole state and config as versioned snapshot bytes (see FORMAT.md); deterministic. */
  snapshot(): Uint8Array {
    return encodeSnapshot(this);
  }

  /**
   * A Decoder from snapshot bytes, continuing bit-identically (the snapshot records method and backend;
   * options override them). Bad bytes: SnapshotError; bad options: ConfigError.
   */
  static restore(bytes: Uint8Array, options?: DecodeOptions): Decoder {
    return decodeSnapshotAs((config, state, opts) => Decoder.fromState(config, state, opts), bytes, options);
  }
}
