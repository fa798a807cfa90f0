// One writer per session across processes (issue 18): two Node processes race for one session; no
// interleaving, the loser gets SessionError 'busy'; after the holder is SIGKILLed, the other takes over once
// the lease runs out and continues exactly. On Redis (SET NX PX lease, fencing token in Lua) and on the
// file: store's lock (lease files published with link(2)).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModel } from '../model/tiny.js';
import { bundleChild, runChild } from './crashHarness.js';
import { HAVE_REDIS, RedisServer } from './redisServer.js';

let bundle = '';
const root = mkdtempSync(join(tmpdir(), 'tzs-lease-'));
beforeAll(async () => {
  bundle = await bundleChild('lease-child.ts');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function referenceTokens(prompt: string, max: number): Promise<number[]> {
  const out: number[] = [];
  for await (const t of tinyModel(3).session({ seed: 11 }).generate(prompt, { maxTokens: max })) out.push(t.token);
  return out;
}

const toks = (lines: string[]): [number, number][] => lines.filter((l) => l.startsWith('tok ')).map((l) => l.split(' ').slice(1).map(Number) as [number, number]);

function leaseSuite(name: string, url: () => string): void {
  it(`${name}: two processes race for a new session: one writes, the other gets 'busy'; no interleaving`, async () => {
    // both processes load first, then race (a barrier): a slow start on a loaded machine cannot let one finish first
    const barrier = mkdtempSync(join(root, 'barrier-'));
    // and the winner holds after its first token until the loser has been refused (so it cannot finish first either)
    const hold = join(barrier, '..', `${barrier.split('/').pop()}-hold`);
    const env = { URL: url(), ID: `race-${Date.now()}`, MAX: '60', SLOW_MS: '3', PROMPT: 'race', BARRIER: `${barrier}:2`, HOLD_AT: '5', HOLD_FILE: hold };
    const refused = (line: string): void => {
      if (line.startsWith('busy ')) writeFileSync(hold, '');
    };
    const [a, b] = await Promise.all([runChild(bundle, env, refused), runChild(bundle, env, refused)]);
    const results = [a, b];
    const busy = results.filter((r) => r.code === 3);
    const won = results.filter((r) => r.code === 0);
    expect(busy.length, `${a.stderr}${b.stderr}`).toBe(1);
    expect(won.length).toBe(1);
    expect(busy[0]!.lines).toEqual(['busy busy']);
    const want = await referenceTokens('race', 60);
    expect(toks(won[0]!.lines).map(([, t]) => t)).toEqual(want);
    expect(toks(won[0]!.lines).map(([p]) => p)).toEqual(want.map((_, i) => 4 + i + 1));
  });

  it(`${name}: the holder is SIGKILLed; the waiting process takes over once the lease runs out and continues exactly`, async () => {
    const id = `takeover-${Date.now()}`;
    const leaseMs = 600;
    const base = { URL: url(), ID: id, LEASE_MS: String(leaseMs) };
    let killedAt = 0;
    let writing: () => void = () => undefined;
    const started = new Promise<void>((r) => (writing = r));
    // the holder waits at position 10 until the early process has been refused (however slowly it starts)
    const hold = join(root, `hold-${id}`);
    const holder = runChild(bundle, { ...base, MAX: '400', SLOW_MS: '4', PROMPT: 'take', HOLD_AT: '10', HOLD_FILE: hold }, (line, kill) => {
      if (line.startsWith('tok 10 ')) writing();
      if (line.startsWith('tok 40 ')) {
        killedAt = performance.now();
        kill();
      }
    });
    // a second process while the holder lives: busy at once
    await started;
    const early = await runChild(bundle, { ...base, WAIT: '0', FROM: '5' });
    writeFileSync(hold, '');
    expect(early.code, early.stderr).toBe(3);
    const a = await holder;
    expect(a.signal).toBe('SIGKILL');
    const got = toks(a.lines);
    const last = got[got.length - 1]![0];
    // the successor waits for the dead holder's lease, then resumes from what the consumer received
    let openedAt = 0;
    let waitedMs = -1;
    const b = await runChild(bundle, { ...base, WAIT: '5000', FROM: String(last + 1) }, (line) => {
      if (line.startsWith('open ')) {
        openedAt = performance.now();
        waitedMs = Number(line.slice(5));
      }
    });
    expect(b.code, b.stderr).toBe(0);
    // the holder renewed every leaseMs / 3, so its lease ran at least 2/3 leaseMs past its death
    expect(openedAt - killedAt, 'it waited for the lease to run out').toBeGreaterThanOrEqual((leaseMs * 2) / 3 - 20);
    // and no longer than the lease (its own wait, from its store being open: process start-up not counted)
    expect(waitedMs).toBeGreaterThanOrEqual(0);
    expect(waitedMs).toBeLessThan(leaseMs + 2000);
    const rest = toks(b.lines);
    const want = await referenceTokens('take', 400);
    expect([...got, ...rest].map(([, t]) => t)).toEqual(want);
    expect([...got, ...rest].map(([p]) => p)).toEqual(want.map((_, i) => 4 + i + 1));
  });
}

describe('lease across processes', () => {
  leaseSuite('file:', () => `file:${join(root, 'f')}`);
  if (!HAVE_REDIS) {
    it.skip('redis://: skipped, redis-server is not installed (apt-get install redis-server; .ci/run does)', () => undefined);
  } else {
    const server = new RedisServer();
    beforeAll(() => server.start());
    afterAll(() => server.stop());
    leaseSuite('redis://', () => server.url);
  }
});
