// A private redis-server for tests: a free loopback port, a temp folder, append-only persistence with an
// fsync per write (so an acknowledged write survives SIGKILL), started and stopped by the test. When
// Debian's redis-server is not installed the Redis tests are skipped by name (REDIS_SERVER says why).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
/** true when redis-server runs here */
export const HAVE_REDIS = spawnSync(BIN, ['--version'], { encoding: 'utf8' }).status === 0;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(port: number, up: boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.end();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok === up) return;
    if (Date.now() > until) throw new Error(`redis-server on ${port} did not come ${up ? 'up' : 'down'} in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class RedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'tzs-redis-'));
  port = 0;
  private child: ChildProcess | null = null;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--protected-mode', 'no', '--loglevel', 'warning'];
    this.child = spawn(BIN, args, { stdio: 'ignore' });
    await waitFor(this.port, true);
  }

  /** SIGKILL: no shutdown save; what survives is what the append-only file had fsynced. */
  async kill(): Promise<void> {
    const c = this.child;
    if (c === null) return;
    this.child = null;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
    await waitFor(this.port, false);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
