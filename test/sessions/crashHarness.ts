// Runs crash-child.ts again and again on one store, SIGKILLing it at random moments, and checks after
// every round what the consumer received against the uninterrupted reference (plan.ts).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { expect } from 'vitest';
import { tinyModel } from '../model/tiny.js';
import { planStates, PLAN, type PlanState } from './plan.js';
import { Rng } from '../../src/math/rng.js';

/** The child bundled once into plain JS (a child then starts in ~100 ms instead of tsx's ~500 ms). */
export async function bundleChild(entry = 'crash-child.ts'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tzs-child-'));
  // the Redis store imports ioredis at run time (not bundled): resolve it from the project's node_modules
  symlinkSync(join(import.meta.dirname, '..', '..', 'node_modules'), join(dir, 'node_modules'));
  const outfile = join(dir, entry.replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [join(import.meta.dirname, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    logLevel: 'error',
    // ioredis is CommonJS and requires Node built-ins
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return outfile;
}

export interface RoundResult {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Start the child; `onLine` sees each stdout line as it arrives (e.g. to kill at a moment). */
export function runChild(bundle: string, env: Record<string, string>, onLine?: (line: string, kill: () => void) => void): Promise<RoundResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let buf = '';
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        onLine?.(line, kill);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.on('exit', (code, signal) => resolve({ lines, code, signal, stderr }));
  });
}

export interface CrashStats {
  rounds: number;
  kills: number;
  completedPlans: number;
  storeErrors: number;
}

/**
 * `kills` SIGKILLs of the child on `url` at random moments (from outside at a random time, or from inside
 * the n-th store write after a random delay); `between` runs between rounds (e.g. restart Redis) and
 * `during` while a child runs (e.g. kill Redis under it). Every round checks: the session holds every
 * acknowledged op (and at most the one in flight beyond), every token received equals the reference at its
 * position, in order; each completed plan ends at the reference's position with its snapshot bytes.
 */
export async function crashRounds(
  bundle: string,
  url: string,
  kills: number,
  rng: () => number,
  hooks: { between?: () => Promise<void>; during?: () => Promise<void>; externalOnly?: boolean; windowMs?: number } = {},
): Promise<CrashStats> {
  const { states, position, snapshot } = await planStates(tinyModel(3));
  const refHash = createHash('sha256').update(snapshot).digest('hex');
  const statesJson = JSON.stringify(states.map((st) => ({ start: st.start, end: st.end, temperature: st.temperature })));
  const stats: CrashStats = { rounds: 0, kills: 0, completedPlans: 0, storeErrors: 0 };
  let plan = 0;
  let received: Record<number, number> = {};
  let acked = -1;
  // the kills, then rounds without one until the plan in flight completes (its final state is checked)
  let finished = false;
  while (stats.kills < kills || !finished) {
    const killing = stats.kills < kills;
    const id = `crash-${plan}`;
    const external = killing && (hooks.externalOnly === true || rng() < 0.5);
    const env: Record<string, string> = { URL: url, ID: id, RECEIVED: JSON.stringify(received), LEASE_MS: '60', STATES: statesJson };
    if (killing && !external) {
      env.KILL_WRITE = String(Math.floor(rng() * 8));
      env.KILL_DELAY_US = String(Math.floor(rng() * 3000));
    }
    const killAfter = rng() * (hooks.windowMs ?? 120);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let during: Promise<void> | undefined;
    const r = await runChild(bundle, env, (line, kill) => {
      if (line.startsWith('at ')) {
        if (external) timer = setTimeout(kill, killAfter);
        if (hooks.during !== undefined && killing) during = hooks.during();
      }
    });
    clearTimeout(timer);
    await during;
    stats.rounds++;
    if (r.signal === 'SIGKILL' && killing) stats.kills++;
    else expect(r.code, `child failed: ${r.stderr}`).toBe(0);
    // check what this round reported
    for (const line of r.lines) {
      const [what, ...rest] = line.split(' ');
      if (what === 'at') {
        const at = Number(rest[0]);
        expect(at, `round ${stats.rounds}: the session lost acknowledged op ${acked}`).toBeGreaterThanOrEqual(acked);
        expect(at, `round ${stats.rounds}: the session holds an op never issued`).toBeLessThanOrEqual(acked + 1);
        acked = Math.max(acked, at); // held now: it must stay held
      } else if (what === 'ack') {
        acked = Number(rest[0]);
      } else if (what === 'tok') {
        const [i, pos, token] = rest.map(Number) as [number, number, number];
        const st: PlanState = states[i]!;
        const have = received[i] ?? 0;
        expect(pos, `round ${stats.rounds}: op ${i} token out of order`).toBe(st.start + have + 1);
        expect(token, `round ${stats.rounds}: op ${i} token at position ${pos}`).toBe(st.tokens[have]);
        received[i] = have + 1;
      } else if (what === 'store-error') {
        stats.storeErrors++;
      } else if (what === 'done') {
        expect(Number(rest[0])).toBe(position);
        expect(rest[1], 'final snapshot bytes differ from the uninterrupted run').toBe(refHash);
        states.forEach((st, i) => {
          if (st.op.kind === 'generate') expect(received[i] ?? 0, `op ${i}: all tokens received`).toBe(st.tokens.length);
        });
        expect(acked).toBe(PLAN.ops.length - 1);
        stats.completedPlans++;
        finished = !killing;
        plan++;
        received = {};
        acked = -1;
      }
    }
    await hooks.between?.();
  }
  return stats;
}

/** A seeded uniform generator for kill moments (the seed is printed with the stats): uniform in [0, 1) from the project's seeded generator. */
export function rngFor(seed: number): () => number {
  const r = new Rng(seed >>> 0);
  return () => r.nextFloat64();
}
