// `toeplitz-attention serve`: the HTTP server of toeplitz-attention/serve, from the command line. The first
// stdout line is `listening on http://HOST:PORT` (scripts read the port from it when --port is 0).
import { Command, InvalidArgumentError } from './args.js';
import { ConfigError } from '../core/errors.js';
import { createServer } from '../serve/index.js';

function int(min: number) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${text}"`);
    return n;
  };
}

interface ServeCliOptions {
  host: string; port: number; store: string; model?: string; workers?: number; maxLive?: number; maxConcurrent?: number;
  apiKey?: string; leaseMs?: number; checkpointEvery?: number;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve streaming generation over HTTP (sessions survive crashes and move between replicas; docs/serve.md)')
    .option('--host <host>', 'address to bind (anything but loopback needs --api-key)', '127.0.0.1')
    .option('--port <port>', 'port, 0 = any free one', int(0), 8080)
    .option('--store <url>', 'session store: file:DIR, redis://host:port[/db] or memory:', 'file:toeplitz-sessions')
    .option('--model <file>', 'model .safetensors (default: the shipped model)')
    .option('--workers <n>', 'worker threads (default: the cores available; 0 = the main thread)', int(0))
    .option('--max-live <n>', 'live sessions kept in memory (LRU)', int(1))
    .option('--max-concurrent <n>', 'streams at once; more get 429', int(1))
    .option('--api-key <key>', 'require Authorization: Bearer <key> (required off loopback)')
    .option('--lease-ms <ms>', 'session lease (a dead replica\'s sessions are taken over after it)', int(30))
    .option('--checkpoint-every <n>', 'checkpoint every n tokens', int(1))
    .action(async (o: ServeCliOptions, cmd: Command) => {
      let server;
      try {
        server = createServer({
          host: o.host, port: o.port, store: o.store,
          ...(o.model !== undefined ? { model: o.model } : {}),
          ...(o.workers !== undefined ? { workers: o.workers } : {}),
          ...(o.maxLive !== undefined ? { maxLive: o.maxLive } : {}),
          ...(o.maxConcurrent !== undefined ? { maxConcurrent: o.maxConcurrent } : {}),
          ...(o.apiKey !== undefined ? { apiKey: o.apiKey } : {}),
          ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
          ...(o.checkpointEvery !== undefined ? { checkpointEvery: o.checkpointEvery } : {}),
        });
      } catch (e) {
        if (e instanceof ConfigError) cmd.error(`error: ${e.message}`, { exitCode: 2, code: 'toeplitz.usage' });
        throw e;
      }
      const { url } = await server.listen();
      process.stdout.write(`listening on ${url}\n`);
      process.stderr.write(`toeplitz-attention serve: store ${o.store}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
