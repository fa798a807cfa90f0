// Child process of the crash tests: runs PLAN on a durable session of the tiny model, picking up wherever
// the store says the session stands, and reports on stdout (written synchronously, so what a SIGKILL
// interrupts is exactly what a consumer did not receive):
//   at <i>                  the last plan op the session already holds when this process starts (-1: none)
//   ack <i>                 op i was acknowledged (feed/options resolved, a generation ran to its end)
//   tok <i> <pos> <token>   a token of generation op i reached the consumer
//   store-error <code>      the store failed; the child waits and continues (Redis restarted by the parent)
//   done <position> <snapshot sha-256>
// Environment: URL, ID, RECEIVED (JSON {op: count of tokens received so far}), KILL_WRITE (SIGKILL itself
// during its n-th store write, after KILL_DELAY_US microseconds of it), LEASE_MS.
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { openSession, openStore, SessionError } from '../../src/sessions/index.js';
import type { Lease, SessionStore } from '../../src/sessions/store.js';
import { tinyModel } from '../model/tiny.js';
import { PLAN, type PlanOp } from './plan.js';

const out = (line: string): void => {
  writeSync(1, line + '\n');
};
const env = process.env;
const url = env.URL!;
const id = env.ID!;
const received = JSON.parse(env.RECEIVED ?? '{}') as Record<string, number>;
const killWrite = env.KILL_WRITE === undefined ? -1 : Number(env.KILL_WRITE);
const killDelayUs = Number(env.KILL_DELAY_US ?? '0');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The store, with a SIGKILL planted inside its n-th write (append or checkpoint) when asked. */
function withKill(s: SessionStore): SessionStore {
  let writes = 0;
  const arm = (): void => {
    if (writes++ !== killWrite) return;
    const until = process.hrtime.bigint() + BigInt(killDelayUs) * 1000n;
    // the write has been started (its I/O is in flight on another thread or socket); die while it runs
    const spin = (): void => {
      if (process.hrtime.bigint() >= until) process.kill(process.pid, 'SIGKILL');
      else setImmediate(spin);
    };
    setImmediate(spin);
  };
  return {
    url: s.url,
    acquire: (i, o, t) => s.acquire(i, o, t),
    renew: (l: Lease, t) => s.renew(l, t),
    release: (l) => s.release(l),
    load: (i) => s.load(i),
    append: (l, seq, b) => {
      const p = s.append(l, seq, b);
      arm();
      return p;
    },
    checkpoint: (l, b, t) => {
      const p = s.checkpoint(l, b, t);
      arm();
      return p;
    },
    list: () => s.list(),
    delete: (i) => s.delete(i),
    close: () => s.close(),
  };
}

const tStart = performance.now();
const model = tinyModel(3);
const tModel = performance.now() - tStart;
// where each op leaves the session (the parent computed the uninterrupted run)
const states = (JSON.parse(env.STATES!) as { start: number; end: number; temperature: number }[]).map((st, i) => ({ ...st, op: PLAN.ops[i]! }));
const t0 = performance.now();
const store = withKill(await openStore(url));
const leaseMs = Number(env.LEASE_MS ?? '60');

/** Retry a step while the store is down (the parent restarts Redis); other errors are real. */
async function retrying<T>(f: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof SessionError) || e.code !== 'store') throw e;
      out(`store-error ${e.code}`);
      await sleep(30);
    }
  }
}

const s = await retrying(() => openSession(model, store, id, { ...PLAN.sampling, checkpointEvery: 40, checkpointMs: 5, leaseMs, wait: true }));

// where the session stands: the last op it holds (state after op i: position and temperature)
let at = -1;
const pend = s.pending();
if (pend !== null) {
  at = states.findIndex((st) => st.op.kind === 'generate' && st.start === pend.from - 1);
  if (at < 0) throw new Error(`pending generation from ${pend.from} matches no plan op`);
} else {
  for (let i = states.length - 1; i >= 0; i--) {
    if (states[i]!.end === s.position && states[i]!.temperature === s.sampling.temperature) {
      at = i;
      break;
    }
  }
  if (at < 0 && s.position !== 0) throw new Error(`position ${s.position} matches no plan op`);
}
out(`at ${at} boot ${performance.timeOrigin ? (tStart).toFixed(0) : 0}ms model ${tModel.toFixed(0)}ms open ${(performance.now() - t0).toFixed(0)}ms`);

let count = 0;
const report = (i: number, t: { token: number; position: number }): void => {
  count++;
  out(`tok ${i} ${t.position} ${t.token}`);
};

async function runOp(i: number, op: PlanOp, first: boolean): Promise<void> {
  const st = states[i]!;
  if (op.kind === 'generate') {
    let got = first ? (received[i] ?? 0) : 0;
    // the generation is in the store once its record is: from then on, resume from what the consumer has
    let inStore = first;
    await retrying(async () => {
      if (!inStore && s.pending()?.from === st.start + 1) inStore = true;
      if (inStore) {
        for await (const t of s.resume({ from: st.start + got + 1 })) {
          report(i, t);
          got++;
        }
        return;
      }
      for await (const t of s.generate(op.prompt, { maxTokens: op.maxTokens, stop: op.stop })) {
        inStore = true;
        report(i, t);
        got++;
      }
    });
  } else if (op.kind === 'feed') {
    await retrying(async () => {
      // a failed append may still have landed (the reply was lost): the state tells
      if (s.position === st.end) return;
      await s.feed(op.tokens, { lastOnly: true });
    });
  } else {
    await retrying(async () => {
      if (s.sampling.temperature === st.temperature) return;
      await s.setOptions(op.options);
    });
  }
  out(`ack ${i}`);
}

if (at >= 0 && PLAN.ops[at]!.kind === 'generate') await runOp(at, PLAN.ops[at]!, true);
for (let i = at + 1; i < PLAN.ops.length; i++) await runOp(i, PLAN.ops[i]!, false);
await retrying(() => s.close());
out(`time ${(performance.now() - t0).toFixed(0)}ms`);
out(`done ${s.position} ${createHash('sha256').update(s.snapshot()).digest('hex')}`);
await store.close();
void count;
