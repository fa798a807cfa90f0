// Declared layouts (backend/layout.ts) and region bookkeeping (backend/regions.ts): the alignment rule, the exact
// sizes a workspace gives up for a layout, and a first-fit allocator checked against a plain model of its bytes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { declare, layoutFloats, lineBytes, LINE_BYTES } from '../../src/backend/layout.js';
import { RegionAllocator } from '../../src/backend/regions.js';
import { JsWorkspace, createJsPool } from '../../src/backend/js.js';
import { createWasmPool, createWasmWorkspace, wasmF64Entries, wasmSupported } from '../../src/backend/wasm.js';

describe('declare', () => {
  it('places every array on its own 64-byte line, in order, and totals the bytes exactly', () => {
    const l = declare([
      { name: 'a', type: 'f64', length: 1 },
      { name: 'b', type: 'f64', length: 8 },
      { name: 'c', type: 'f32', length: 17 },
      { name: 'd', type: 'f64', length: 0 },
      { name: 'e', type: 'f64', length: 9 },
    ]);
    expect(l.arrays.map((a) => a.offset)).toEqual([0, 64, 128, 256, 256]);
    expect(l.bytes).toBe(256 + 128);
    expect(layoutFloats(l)).toBe(48);
    expect(lineBytes('f32', 16)).toBe(64);
    expect(lineBytes('f32', 17)).toBe(128);
  });

  it('a layout of f64 arrays takes what f64() of each takes from a WASM workspace (wasmF64Entries)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 20 }), (lengths) => {
        const l = declare(lengths.map((length, i) => ({ name: `x${i}`, type: 'f64' as const, length })));
        expect(layoutFloats(l)).toBe(lengths.reduce((s, n) => s + wasmF64Entries(n), 0));
        for (const a of l.arrays) expect(a.offset % LINE_BYTES).toBe(0);
      }),
    );
  });

  it('refuses a name declared twice, a bad length or type, naming the array', () => {
    expect(() => declare([{ name: 'a', type: 'f64', length: 1 }, { name: 'a', type: 'f64', length: 2 }])).toThrow(/'a' is declared twice/);
    expect(() => declare([{ name: 'r', type: 'f64', length: 1.5 }])).toThrow(/'r' needs an integer length >= 0, got 1.5/);
    expect(() => declare([{ name: 'r', type: 'f64', length: -1 }])).toThrow(/'r' needs an integer length/);
    expect(() => declare([{ name: 't', type: 'f16' as 'f64', length: 1 }])).toThrow(/'t' has type f16, expected 'f64' or 'f32'/);
  });

  for (const backend of ['js', 'wasm'] as const) {
    it.skipIf(backend === 'wasm' && !wasmSupported())(`${backend}: take(layout) gives zeroed, aligned, disjoint views of the declared lengths`, () => {
      const l = declare([
        { name: 'k', type: 'f64', length: 5 },
        { name: 'h', type: 'f32', length: 3 },
        { name: 'v', type: 'f64', length: 16 },
      ]);
      const ws = backend === 'wasm' ? createWasmWorkspace(layoutFloats(l) * 2) : new JsWorkspace();
      const first = ws.take(l);
      first.f64('k').fill(7);
      first.f64('v').fill(9);
      first.f32('h').fill(3);
      if (backend === 'wasm') {
        // exactly layout.bytes taken: a second take fits, a third does not
        const second = ws.take(l);
        expect(second.f64('k').byteOffset - first.f64('k').byteOffset).toBe(l.bytes);
        expect(() => ws.take(l)).toThrow(/does not fit/);
      }
      const views = [first.f64('k'), first.f32('h'), first.f64('v')];
      expect(views.map((a) => a.length)).toEqual([5, 3, 16]);
      for (const a of views) expect(a.byteOffset % LINE_BYTES).toBe(first.f64('k').byteOffset % LINE_BYTES);
      expect(Array.from(first.f64('k'))).toEqual([7, 7, 7, 7, 7]);
      expect(Array.from(first.f32('h'))).toEqual([3, 3, 3]);
      expect(() => first.f64('h')).toThrow(/no f64 array 'h'/);
      expect(() => first.f32('nope')).toThrow(/no f32 array 'nope'/);
      // a released region is zeroed when taken again
      if (backend === 'wasm') {
        const ws2 = createWasmWorkspace(layoutFloats(l));
        const mark = ws2.mark();
        ws2.take(l).f64('v').fill(1);
        ws2.release(mark);
        expect(Array.from(ws2.take(l).f64('v')).every((x) => x === 0)).toBe(true);
      }
    });
  }
});

for (const backend of ['js', 'wasm'] as const) {
  describe.skipIf(backend === 'wasm' && !wasmSupported())(`${backend}: workspaces over regions of a pool`, () => {
    it('carve exactly their region, zero what an earlier array left, and refuse more than the region holds', () => {
      const l = declare([{ name: 'a', type: 'f64', length: 10 }, { name: 'b', type: 'f64', length: 3 }]);
      const pool = backend === 'js' ? createJsPool(4096) : createWasmPool(4096, 'a test pool');
      const r = pool.alloc(l.bytes + 64)!;
      expect(r.bytes).toBe(l.bytes + 64);
      const other = pool.alloc(64)!;
      const ws = pool.workspace(r);
      const mark = ws.mark();
      ws.take(l).f64('a').fill(5);
      ws.f64(8).fill(6);
      expect(() => ws.f64(1)).toThrow(/full/);
      ws.release(mark);
      const again = ws.take(l);
      expect(Array.from(again.f64('a')).every((x) => x === 0)).toBe(true);
      expect(Array.from(ws.f64(8)).every((x) => x === 0)).toBe(true);
      expect(pool.regions).toBe(2);
      pool.free(r);
      pool.free(other);
      expect(() => pool.free(other)).toThrow(/free/);
      expect(pool.usedBytes).toBe(0);
      expect(pool.alloc(4096 + 64)).toBeNull();
    });

    it('f32() carves lineBytes(f32, n) of the region as f64() carves its lines, zeroes what an earlier array left, and refuses more than the region holds', () => {
      const pool = backend === 'js' ? createJsPool(4096) : createWasmPool(4096, 'a test pool');
      const r = pool.alloc(4 * LINE_BYTES)!;
      const ws = pool.workspace(r);
      const start = ws.available;
      const mark = ws.mark();
      const a = ws.f32(17); // 68 bytes: two lines
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.length).toBe(17);
      expect(start - ws.available).toBe(lineBytes('f32', 17) / 8);
      a.fill(3);
      const b = ws.f32(16); // exactly one line
      expect(start - ws.available).toBe((lineBytes('f32', 17) + lineBytes('f32', 16)) / 8);
      if (backend === 'wasm') expect((b.byteOffset - a.byteOffset) % LINE_BYTES).toBe(0);
      expect(() => ws.f32(17)).toThrow(/full/);
      ws.release(mark);
      expect(ws.available).toBe(start);
      expect(Array.from(ws.f32(17)).every((x) => x === 0)).toBe(true);
      pool.free(r);
    });
  });
}

describe('RegionAllocator', () => {
  it('random alloc/free sequences: ranges are line-aligned, inside, disjoint; freeing everything gives one range back', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 900 }).map((bytes) => ({ op: 'alloc' as const, bytes })), fc.nat().map((pick) => ({ op: 'free' as const, pick }))), { maxLength: 200 }),
        (lines, ops) => {
          const start = 1024;
          const ra = new RegionAllocator(start, start + lines * LINE_BYTES);
          const live: Array<{ at: number; bytes: number }> = [];
          const owner = new Int32Array(lines).fill(-1); // model: which allocation holds each line
          let id = 0;
          const ids: number[] = [];
          for (const o of ops) {
            if (o.op === 'alloc') {
              const need = Math.ceil(o.bytes / LINE_BYTES);
              const at = ra.alloc(o.bytes);
              // first fit in the model
              let expected = -1;
              for (let i = 0; i + need <= lines && expected < 0; i++) {
                let free = true;
                for (let j = i; j < i + need; j++) if (owner[j] !== -1) free = false;
                if (free) expected = i;
              }
              expect(at).toBe(expected < 0 ? -1 : start + expected * LINE_BYTES);
              if (at >= 0) {
                for (let j = 0; j < need; j++) owner[(at - start) / LINE_BYTES + j] = id;
                live.push({ at, bytes: o.bytes });
                ids.push(id++);
              }
            } else if (live.length > 0) {
              const i = o.pick % live.length;
              const r = live.splice(i, 1)[0]!;
              const rid = ids.splice(i, 1)[0]!;
              ra.free(r.at, r.bytes);
              for (let j = 0; j < lines; j++) if (owner[j] === rid) owner[j] = -1;
            }
            let used = 0;
            for (const x of owner) if (x !== -1) used++;
            expect(ra.used).toBe(used * LINE_BYTES);
            expect(ra.count).toBe(live.length);
          }
          for (const r of live) ra.free(r.at, r.bytes);
          expect(ra.used).toBe(0);
          expect(ra.largestFree).toBe(lines * LINE_BYTES);
        },
      ),
      { numRuns: 200, seed: 5 },
    );
  });

  it('refuses to free a range twice or one it never gave', () => {
    const ra = new RegionAllocator(0, 640);
    const a = ra.alloc(100);
    ra.alloc(64);
    ra.free(a, 100);
    expect(() => ra.free(a, 100)).toThrow(/not an allocated range/);
    expect(() => ra.free(1000, 64)).toThrow(/not an allocated range/);
  });
});
