import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/sessions/index.js';
import { storeContract, storeTtlContract } from './storeContract.js';

const root = mkdtempSync(join(tmpdir(), 'tzs-file-'));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

storeContract('file:', async () => openStore(`file:${join(root, `s${n++}`)}`), { reopen: async (first) => openStore(first.url) });
storeTtlContract('file:', async (ttlMs) => openStore(`file:${join(root, `t${n++}`)}`, { ttlMs }));

describe('file: a writer stalled past its lease between the fence check and the publication', () => {
  it('publishes its checkpoint late, and that neither hides nor loses what the next holder wrote', async () => {
    // The one interleaving no check can stop: w1's lease has run out but nobody holds a newer one yet, so its fence
    // check passes; w2 lists the folder (before w1's temp file exists, so w2's clean-up of dead writers' temp files
    // misses it), w1 writes its checkpoint's temp file and passes its checks, w2 publishes its lease, and w1,
    // stalled (a GC pause, SIGSTOP, a slow disk), publishes only after w2 has appended and checkpointed.
    const store = await openStore(`file:${join(root, `stall${n++}`)}`);
    const bytes = (x: number): Uint8Array => Uint8Array.from({ length: 64 }, (_, i) => (x * 31 + i) & 255);
    const r1 = await store.acquire('s', 'w1', 40);
    if (!('lease' in r1)) throw new Error('w1 got no lease');
    for (let seq = 1; seq <= 3; seq++) await store.append(r1.lease, seq, bytes(seq));
    await new Promise((r) => setTimeout(r, 80)); // w1's lease runs out
    const internals = store as unknown as {
      current: (lease: { owner: string }) => Promise<void>;
      through: (id: string) => Promise<number>;
      readLease: (id: string, token: number) => Promise<unknown>;
    };
    const current = internals.current.bind(store);
    const through = internals.through.bind(store);
    const readLease = internals.readLease.bind(store);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let stalled!: () => void;
    const atStall = new Promise<void>((resolve) => (stalled = resolve));
    let w1Checking = false;
    internals.current = async (lease) => {
      await current(lease);
      w1Checking = lease.owner === 'w1';
    };
    internals.through = async (id) => {
      const t = await through(id);
      if (w1Checking) {
        w1Checking = false;
        stalled();
        await gate; // w1 passed both checks: its temp file is written, the publication is next
      }
      return t;
    };
    let late: Promise<unknown> | null = null;
    internals.readLease = async (id, token) => {
      // w2's acquire, between its listing and its lease's publication: now w1 checkpoints
      if (late === null) {
        late = store.checkpoint(r1.lease, bytes(103), 3).then(
          () => 'published',
          (e: unknown) => e,
        );
        await atStall;
      }
      return readLease(id, token);
    };
    const r2 = await store.acquire('s', 'w2', 10_000);
    if (!('lease' in r2)) throw new Error('w2 got no lease');
    for (let seq = 4; seq <= 6; seq++) await store.append(r2.lease, seq, bytes(seq));
    await store.checkpoint(r2.lease, bytes(106), 6);
    open();
    expect(await late).toBe('published'); // it got through: no check could stop it
    const got = await store.load('s');
    expect(got?.checkpoint?.through).toBe(6);
    expect(Array.from(got!.checkpoint!.bytes)).toEqual(Array.from(bytes(106)));
    expect(got!.journal).toEqual([]);
    await store.append(r2.lease, 7, bytes(7));
    const after = await store.load('s');
    expect([after!.checkpoint!.through, after!.journal.map((e) => e.seq)]).toEqual([6, [7]]);
    await store.close();
  });
});
