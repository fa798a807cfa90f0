// Child of the lease tests: opens session ID on URL (waiting WAIT ms for another writer, 0 = not at all)
// and prints `open <ms>`, or `busy <code>` when it is held; then generates MAX tokens after PROMPT (or
// resumes from FROM when given), SLOW_MS per token, printing `tok <position> <token>`, then `done`.
// Synchronization that does not depend on how fast processes start on a loaded machine:
//   BARRIER=dir:count  once loaded, write dir/<pid> and wait until count files are there, then open
//   HOLD_AT=p, HOLD_FILE=f  after printing the token at position p, wait until file f exists
import { existsSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openSession, openStore, SessionError } from '../../src/sessions/index.js';
import { tinyModel } from '../model/tiny.js';

const out = (line: string): void => void writeSync(1, line + '\n');
const env = process.env;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const store = await openStore(env.URL!);
if (env.BARRIER !== undefined) {
  const [dir, count] = env.BARRIER.split(':') as [string, string];
  writeFileSync(join(dir, String(process.pid)), '');
  while (readdirSync(dir).length < Number(count)) await sleep(2);
}
const t0 = performance.now();
let s;
try {
  s = await openSession(tinyModel(3), store, env.ID!, { seed: 11, leaseMs: Number(env.LEASE_MS ?? '300'), wait: Number(env.WAIT ?? '0') });
} catch (e) {
  if (e instanceof SessionError && e.code === 'busy') {
    out(`busy ${e.code}`);
    await store.close();
    process.exit(3);
  }
  throw e;
}
out(`open ${(performance.now() - t0).toFixed(0)}`);
const slow = Number(env.SLOW_MS ?? '0');
const it = env.FROM !== undefined ? s.resume({ from: Number(env.FROM) }) : s.generate(env.PROMPT ?? 'lease', { maxTokens: Number(env.MAX ?? '100') });
const holdAt = env.HOLD_AT === undefined ? -1 : Number(env.HOLD_AT);
for await (const t of it) {
  out(`tok ${t.position} ${t.token}`);
  if (t.position === holdAt) while (!existsSync(env.HOLD_FILE!)) await sleep(2);
  if (slow > 0) await sleep(slow);
}
await s.close();
await store.close();
out('done');
