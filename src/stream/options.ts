// Where the decoder comes from, and the option checks shared by every operator (errors at the call site).
import { Decoder } from '../codec/decoder.js';
import type { AttentionConfig } from '../engine/config.js';
import { ConfigError, describe } from '../core/errors.js';
import type { AttendOptions, AttendSource } from './types.js';

/** The decoder of one subscription: the shared Decoder itself, or a fresh one (config or snapshot bytes). */
export function resolveSource(source: AttendSource): Decoder {
  if (source instanceof Decoder) return source;
  if (source !== null && typeof source === 'object' && 'restore' in source) {
    const bytes = (source as { restore: unknown }).restore;
    if (!(bytes instanceof Uint8Array)) throw new ConfigError(`source.restore must be a Uint8Array of snapshot bytes, got ${describe(bytes)}`);
    return Decoder.restore(bytes);
  }
  return new Decoder(source as AttentionConfig);
}

/** Check { checkpoint?, group? }; throws ConfigError naming the field, what was expected and what arrived. */
export function checkOptions(options: AttendOptions | undefined): AttendOptions {
  const o = options ?? {};
  if (o === null || typeof o !== 'object') throw new ConfigError(`options must be an object { checkpoint?, group? }, got ${describe(o)}`);
  if (o.checkpoint !== undefined) {
    const { every, sink } = o.checkpoint;
    if (typeof every !== 'number' || !Number.isInteger(every) || every < 1) {
      throw new ConfigError(`checkpoint.every must be an integer >= 1, got ${describe(every)}`);
    }
    if (typeof sink !== 'function' && typeof sink !== 'string') {
      throw new ConfigError(`checkpoint.sink must be a function (bytes, position) => void | Promise<void> or a file path, got ${describe(sink)}`);
    }
    const trigger = o.checkpoint.trigger as unknown;
    if (trigger !== undefined && (trigger === null || typeof (trigger as { subscribe?: unknown }).subscribe !== 'function')) {
      throw new ConfigError(`checkpoint.trigger must be an Observable, got ${describe(trigger)}`);
    }
  }
  if (o.group !== undefined) {
    const { count, timeMs } = o.group;
    if (count !== undefined && (typeof count !== 'number' || !Number.isInteger(count) || count < 1)) {
      throw new ConfigError(`group.count must be an integer >= 1, got ${describe(count)}`);
    }
    if (timeMs !== undefined && (typeof timeMs !== 'number' || !Number.isFinite(timeMs) || timeMs < 0)) {
      throw new ConfigError(`group.timeMs must be a finite number >= 0, got ${describe(timeMs)}`);
    }
    if (count === undefined && timeMs === undefined) throw new ConfigError('group needs count and/or timeMs, got neither');
  }
  return o;
}
