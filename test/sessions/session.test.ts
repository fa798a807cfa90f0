// DurableSession: damaged records, a store that dies mid-generation, one writer per session, bad input.
import { mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GeneratedToken } from '../../src/model/index.js';
import { MemoryStore, openSession, openStore, SessionError, type SessionStore } from '../../src/sessions/index.js';
import { tinyModel } from '../model/tiny.js';

const model = tinyModel(2);
const root = mkdtempSync(join(tmpdir(), 'tzs-session-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function collect(it: AsyncIterable<GeneratedToken>): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const t of it) out.push(t);
  return out;
}

async function reference(prompt: string, maxTokens: number, seed = 3): Promise<GeneratedToken[]> {
  return collect(model.session({ seed }).generate(prompt, { maxTokens }));
}

async function expectSessionError(p: Promise<unknown>, code: string): Promise<SessionError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e, `expected SessionError '${code}'`).toBeInstanceOf(SessionError);
  expect((e as SessionError).code).toBe(code);
  return e as SessionError;
}

/** A memory store whose load() hands out altered bytes (what a damaged disk or a bad copy would give). */
function damaging(inner: MemoryStore, alter: (what: 'checkpoint' | number, b: Uint8Array) => Uint8Array): SessionStore {
  return Object.assign(Object.create(inner) as MemoryStore, {
    load: async (id: string) => {
      const s = await inner.load(id);
      if (s === null) return null;
      return {
        checkpoint: s.checkpoint === null ? null : { bytes: alter('checkpoint', s.checkpoint.bytes), through: s.checkpoint.through },
        journal: s.journal.map((e) => ({ seq: e.seq, bytes: alter(e.seq, e.bytes) })),
      };
    },
  });
}

/** A session with a checkpoint (mid-generation) and journal records after it, then crashed. */
async function crashedSession(store: MemoryStore, id: string): Promise<void> {
  const s = await openSession(model, store, id, { seed: 3, checkpointEvery: 20, leaseMs: 1000 });
  let n = 0;
  for await (const _ of s.generate('abc', { maxTokens: 50 })) if (++n === 30) break; // checkpoint at 20, end record
  await s.feed([1, 2, 3]);
  await s.setOptions({ temperature: 0.5 });
  s.abandon();
  let skew = 0;
  store.now = () => Date.now() + (skew += 5000);
}

describe('damaged records are typed errors naming the session and the record', () => {
  it('truncated or bit-flipped checkpoint: SessionError damaged, record "checkpoint"; never a different continuation', async () => {
    const base = new MemoryStore();
    await crashedSession(base, 'dmg');
    const good = await base.load('dmg');
    expect(good!.checkpoint).not.toBeNull();
    expect(good!.journal.length).toBeGreaterThanOrEqual(2);
    const size = good!.checkpoint!.bytes.length;
    // every byte of the first 96 (framing, header, generation tokens, snapshot header) and 200 more spread
    const offsets = [...Array.from({ length: 96 }, (_, i) => i), ...Array.from({ length: 200 }, (_, i) => Math.floor(((i + 0.5) * size) / 200))];
    for (const at of offsets) {
      const bit = 1 << (at % 8);
      const store = damaging(base, (w, b) => (w === 'checkpoint' ? ((b[at] = b[at]! ^ bit), b) : b));
      const e = await expectSessionError(openSession(model, store, 'dmg', { leaseMs: 1000 }), 'damaged');
      expect(e.session).toBe('dmg');
      expect(e.record).toBe('checkpoint');
      expect(e.message).toMatch(/session dmg: checkpoint: /);
    }
    for (const len of [0, 5, 11, 12, 40, size >> 1, size - 1]) {
      const store = damaging(base, (w, b) => (w === 'checkpoint' ? b.subarray(0, len) : b));
      const e = await expectSessionError(openSession(model, store, 'dmg', { leaseMs: 1000 }), 'damaged');
      expect(e.record).toBe('checkpoint');
    }
  });

  it('truncated or bit-flipped journal record, a missing one, or one of another session: damaged, naming it', async () => {
    const base = new MemoryStore();
    await crashedSession(base, 'dj');
    const { journal } = (await base.load('dj'))!;
    const target = journal[journal.length - 1]!;
    const name = `journal record ${target.seq}`;
    for (let at = 0; at < target.bytes.length; at++) {
      for (const bit of [1, 128]) {
        const store = damaging(base, (w, b) => (w === target.seq ? ((b[at] = b[at]! ^ bit), b) : b));
        const e = await expectSessionError(openSession(model, store, 'dj', { leaseMs: 1000 }), 'damaged');
        expect([e.session, e.record]).toEqual(['dj', name]);
      }
    }
    for (let len = 0; len < target.bytes.length; len++) {
      const store = damaging(base, (w, b) => (w === target.seq ? b.subarray(0, len) : b));
      const e = await expectSessionError(openSession(model, store, 'dj', { leaseMs: 1000 }), 'damaged');
      expect(e.record).toBe(name);
    }
    // a gap
    const gap = Object.assign(Object.create(base) as MemoryStore, {
      load: async (id: string) => {
        const s = (await base.load(id))!;
        return { checkpoint: s.checkpoint, journal: s.journal.filter((e) => e.seq !== journal[0]!.seq) };
      },
    });
    const e = await expectSessionError(openSession(model, gap, 'dj', { leaseMs: 1000 }), 'damaged');
    expect(e.record).toBe(`journal record ${journal[0]!.seq}`);
    // a record copied from another session
    const other = new MemoryStore();
    await crashedSession(other, 'zz');
    const foreign = (await other.load('zz'))!.journal[0]!;
    const swapped = damaging(base, (w, b) => (w === foreign.seq ? foreign.bytes : b));
    const e2 = await expectSessionError(openSession(model, swapped, 'dj', { leaseMs: 1000 }), 'damaged');
    expect(e2.message).toMatch(/belongs to session "zz"/);
    // and undamaged it opens and goes on
    const fine = await openSession(model, base, 'dj', { leaseMs: 1000 });
    expect(fine.position).toBe(3 + 30 + 3);
    await fine.close();
  });

  it('file: a checkpoint file cut short on disk is damaged, naming the session and the checkpoint', async () => {
    const dir = join(root, 'dmgfile');
    const store = await openStore(`file:${dir}`);
    const s = await openSession(model, store, 'f1', { seed: 1 });
    await collect(s.generate('hello', { maxTokens: 20 }));
    await s.close();
    const name = readdirSync(join(dir, 'f1')).find((n) => n.startsWith('c.'))!;
    const path = join(dir, 'f1', name);
    const whole = readFileSync(path);
    for (const len of [3, 15, 100]) {
      truncateSync(path, len);
      const e = await expectSessionError(openSession(model, store, 'f1'), 'damaged');
      expect([e.session, e.record]).toEqual(['f1', 'checkpoint']);
    }
    writeFileSync(path, whole);
    const again = await openSession(model, store, 'f1');
    expect(again.position).toBe(25);
    await again.close();
    await store.close();
  });
});

/** A memory store that can be switched off (every call rejects, as an unreachable Redis would). */
function switchable(inner: MemoryStore): SessionStore & { down: boolean; writes: number } {
  const w = Object.create(inner) as MemoryStore & { down: boolean; writes: number };
  w.down = false;
  w.writes = 0;
  for (const m of ['acquire', 'renew', 'release', 'load', 'append', 'checkpoint', 'list', 'delete'] as const) {
    (w as unknown as Record<string, unknown>)[m] = async (...a: unknown[]) => {
      if (w.down) throw new Error('connection refused');
      if (m === 'append' || m === 'checkpoint') w.writes++;
      return (inner[m] as (...x: unknown[]) => Promise<unknown>).apply(inner, a);
    };
  }
  return w;
}

describe('a store that dies mid-generation', () => {
  it("stops generation with SessionError 'store' at the next durability point; nothing acknowledged is lost; it continues exactly once the store is back", async () => {
    const store = switchable(new MemoryStore());
    const want = await reference('store', 200);
    const s = await openSession(model, store, 'down', { seed: 3, checkpointEvery: 16, leaseMs: 5000 });
    const got: GeneratedToken[] = [];
    let err: unknown = null;
    try {
      for await (const t of s.generate('store', { maxTokens: 200 })) {
        got.push(t);
        if (got.length === 40) store.down = true;
      }
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SessionError);
    expect((err as SessionError).code).toBe('store');
    // stopped at the next checkpoint attempt: within checkpointEvery tokens of the outage
    expect(got.length).toBeGreaterThan(40);
    expect(got.length).toBeLessThanOrEqual(40 + 16 + 1);
    expect(got.map((t) => t.token)).toEqual(want.slice(0, got.length).map((t) => t.token));
    expect(s.pending()).toEqual({ from: 6, to: 205 });
    // an input while the store is down: refused, not applied
    const pos = s.position;
    await expectSessionError(s.feed([1]), 'store');
    // resume while still down: the same typed error, nothing yielded
    await expectSessionError(collect(s.resume({ from: got.length + 6 })), 'store');
    expect(s.position).toBeGreaterThanOrEqual(pos);
    store.down = false;
    const rest = await collect(s.resume({ from: 5 + got.length + 1 }));
    expect([...got, ...rest].map((t) => [t.position, t.token])).toEqual(want.map((t) => [t.position, t.token]));
    await s.close();
    // and the store holds it: a fresh open is at the end
    const again = await openSession(model, store, 'down');
    expect(again.position).toBe(205);
    await again.close();
  });
});

describe('one writer per session', () => {
  it("a second writer gets SessionError 'busy'; with wait it gets the session once the first closes; a taken-over writer is 'fenced'", async () => {
    const store = new MemoryStore();
    const a = await openSession(model, store, 'one', { seed: 1, leaseMs: 5000 });
    await a.feed([1, 2]);
    const e = await expectSessionError(openSession(model, store, 'one'), 'busy');
    expect(e.session).toBe('one');
    expect(e.message).toMatch(/held by another writer/);
    const waiting = openSession(model, store, 'one', { wait: 2000 });
    await new Promise((r) => setTimeout(r, 30));
    await a.close();
    const b = await waiting;
    expect(b.position).toBe(2);
    await b.close();
    // takeover after a lease runs out: the old writer is fenced on its next write
    const c = await openSession(model, store, 'one', { leaseMs: 1000 });
    c.stopTimers(); // it stalls: no renewals
    let skew = 0;
    store.now = () => Date.now() + skew;
    skew = 1500;
    const d = await openSession(model, store, 'one', { leaseMs: 1000 });
    await expectSessionError(c.feed([9]), 'fenced');
    await d.feed([3]);
    expect(d.position).toBe(3);
    await expectSessionError(c.feed([9]), 'fenced');
    await d.close();
  });

  it('generate while another generate runs is a StateError; so are feed and close', async () => {
    const s = await openSession(model, new MemoryStore(), 'st', { seed: 1 });
    const it = s.generate('x', { maxTokens: 5 });
    await it.next();
    expect(() => s.generate('y', { maxTokens: 1 })).toThrow(/not allowed while generate\(\) is running/);
    await expect(s.feed([1])).rejects.toMatchObject({ name: 'StateError' });
    await expect(s.close()).rejects.toMatchObject({ name: 'StateError' });
    await it.return(undefined);
    await s.close();
  });
});

describe('bad options and ids are typed errors, and change nothing', () => {
  it('ids, options, from, setOptions', async () => {
    const store = new MemoryStore();
    for (const id of ['', '../x', 'a/b', '.x', 'x'.repeat(129), 5, null]) {
      await expect(openSession(model, store, id as string)).rejects.toMatchObject({ name: 'ConfigError' });
    }
    for (const o of [{ checkpointEvery: 0 }, { checkpointEvery: 1.5 }, { checkpointMs: -1 }, { leaseMs: 5 }, { wait: 'yes' }, { temperature: -1 }, { topP: 0 }, { seed: NaN }, { chekpointEvery: 5 }]) {
      await expect(openSession(model, store, 'o', o as object)).rejects.toMatchObject({ name: 'ConfigError' });
    }
    expect(await store.list()).toEqual([]);
    const s = await openSession(model, store, 'o', { seed: 4 });
    await s.feed([1, 2, 3]);
    await expect(s.setOptions({ seed: 2 } as object)).rejects.toMatchObject({ name: 'ConfigError' });
    await expect(s.setOptions({ temperature: NaN })).rejects.toMatchObject({ name: 'ConfigError' });
    await expect(s.feed([256])).rejects.toMatchObject({ name: 'ShapeError' });
    expect(() => s.generate('x', { maxTokens: -1 })).toThrow(/maxTokens/);
    expect(() => s.resume()).toThrow(/no generation to resume/);
    await collect(s.generate('x', { maxTokens: 4 }));
    expect(() => s.resume({ from: 3 })).toThrow(/from must be an integer position in \[5, 9\]/);
    expect(s.position).toBe(8);
    // a resume of a finished generation yields its tokens again, exactly
    const again = await collect(s.resume({ from: 6 }));
    expect(again.map((t) => t.position)).toEqual([6, 7, 8]);
    await s.close();
    await expect(openSession(model, store, 'o', { seed: 5 })).rejects.toThrow(/exists with seed 4/);
    await expect(openStore('nope:')).rejects.toMatchObject({ name: 'ConfigError' });
    await expect(openStore('file:')).rejects.toMatchObject({ name: 'ConfigError' });
    await expect(openStore('memory:', { ttlMs: 0 })).rejects.toMatchObject({ name: 'ConfigError' });
  });

  it('another model: refused with ModelError wrong-model', async () => {
    const store = new MemoryStore();
    const s = await openSession(model, store, 'm', { seed: 1 });
    await s.feed([1]);
    s.abandon();
    store.now = () => Date.now() + 1e6;
    await expect(openSession(tinyModel(9), store, 'm')).rejects.toMatchObject({ name: 'ModelError', code: 'wrong-model' });
  });
});

describe('option changes', () => {
  it('setOptions applies from the next token: temperature 0 gives the argmax of the logits; the generator keeps its place', async () => {
    const s = await openSession(model, new MemoryStore(), 'opt', { seed: 9, temperature: 1.3 });
    const logits = await s.feed(new TextEncoder().encode('abc'), { lastOnly: true });
    await s.setOptions({ temperature: 0 });
    expect(s.sampling).toEqual({ seed: 9, temperature: 0, topK: 0, topP: 1, validUtf8: true });
    const [first] = await collect(s.generate('', { maxTokens: 1 }));
    // the argmax over the bytes that can start a character after 'abc' (validUtf8 sampling masks the others)
    const starts = (b: number): boolean => b < 0x80 || (b >= 0xc2 && b <= 0xf4);
    let best = -1;
    for (let i = 0; i < logits.length; i++) if (starts(i) && (best < 0 || logits[i]! > logits[best]!)) best = i;
    expect(first!.token).toBe(best);
    // back to sampling: the same tokens as a plain session given the same option changes (a greedy step
    // draws nothing from the generator)
    await s.setOptions({ temperature: 1.3 });
    const rest = await collect(s.generate('', { maxTokens: 20 }));
    const ref = model.session({ seed: 9, temperature: 1.3 });
    ref.feed(new TextEncoder().encode('abc'));
    ref.setSampling({ temperature: 0, topK: 0, topP: 1 });
    expect((await collect(ref.generate('', { maxTokens: 1 })))[0]!.token).toBe(best);
    ref.setSampling({ temperature: 1.3, topK: 0, topP: 1 });
    const want = await collect(ref.generate('', { maxTokens: 20 }));
    expect(rest.map((t) => t.token)).toEqual(want.map((t) => t.token));
    await s.close();
  });
});

describe('list, delete, bytes', () => {
  it('file: lists sessions with their bytes, deletes them', async () => {
    const dir = join(root, 'list');
    const store = await openStore(`file:${dir}`);
    for (const id of ['b', 'a']) {
      const s = await openSession(model, store, id, { seed: 1 });
      await collect(s.generate('hi', { maxTokens: 10 }));
      await s.close();
    }
    const list = await store.list();
    expect(list.map((i) => i.id)).toEqual(['a', 'b']);
    for (const i of list) expect(i.bytes).toBeGreaterThan(1000);
    await store.delete('a');
    expect((await store.list()).map((i) => i.id)).toEqual(['b']);
    expect(readdirSync(dir)).toEqual(['b']);
    await store.close();
  });
});
