// Errors across the worker boundary: every typed class of the library comes back as itself, with the same
// name, message and fields, after the structured clone that postMessage applies.
import { describe, expect, it } from 'vitest';
import { ConfigError, ResourceError, ShapeError, SnapshotError, StateError, ToeplitzAttentionError } from '../../src/index.js';
import { ModelError } from '../../src/model/index.js';
import { SessionError } from '../../src/sessions/index.js';
import { fromWire, toWire } from '../../src/web/wire.js';

const clone = <T>(x: T): T => structuredClone(x);

describe('typed errors across the boundary', () => {
  const cases: Array<[Error, new (...a: never[]) => Error, string[]]> = [
    [new ConfigError('maxTokens must be an integer >= 0, got -1'), ConfigError, []],
    [new ShapeError('tokens[1] must be an integer token id in [0, 255], got 300'), ShapeError, []],
    [new StateError('generate() is not allowed while feed() is running'), StateError, []],
    [new SnapshotError('corrupt', 'checksum mismatch'), SnapshotError, ['code']],
    [new ResourceError('wasm-memory', 5e9, 4294967296, 'cannot reserve 5 GB'), ResourceError, ['resource', 'requestedBytes', 'limitBytes']],
    [new ResourceError('wasm-memory', 1e6, null, 'the runtime refused'), ResourceError, ['resource', 'requestedBytes', 'limitBytes']],
    [new ModelError('wrong-model', 'a session snapshot of another model'), ModelError, ['code']],
    [new SessionError('damaged', 'session a: journal record 7: CRC-32 mismatch', 'a', 'journal record 7'), SessionError, ['code', 'session', 'record']],
    [new SessionError('busy', 'session b is held by another writer', 'b'), SessionError, ['code', 'session', 'record']],
    [new ToeplitzAttentionError('base'), ToeplitzAttentionError, []],
  ];
  for (const [err, cls, fields] of cases) {
    it(`${err.name}${(err as { code?: string }).code ? ` (${(err as { code?: string }).code})` : ''} comes back as itself`, () => {
      const back = fromWire(clone(toWire(err)));
      expect(back).toBeInstanceOf(cls);
      expect(back.constructor).toBe(err.constructor);
      expect([back.name, back.message]).toEqual([err.name, err.message]);
      for (const f of fields) expect((back as unknown as Record<string, unknown>)[f], f).toEqual((err as unknown as Record<string, unknown>)[f]);
      expect(back.stack).toContain("(in the engine's worker)");
    });
  }

  it('other errors keep their name and message; non-errors become an Error with their text', () => {
    const t = fromWire(clone(toWire(new TypeError('x is not a function'))));
    expect([t.name, t.message]).toEqual(['TypeError', 'x is not a function']);
    const s = fromWire(clone(toWire('plain string')));
    expect([s.name, s.message]).toEqual(['Error', 'plain string']);
  });
});
