// Chromium for the browser tests and benchmarks of durable sessions: a page entry bundled by esbuild, served
// with the shipped model from a node:http server on 127.0.0.1 (a free port; IndexedDB and Web Locks need a
// secure context, which loopback is), and Debian's Chromium driven by playwright-core with a fresh profile.
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  readonly context: BrowserContext;
  /** messages pages sent through tzReport, in arrival order */
  readonly messages: Record<string, unknown>[];
  /** what tzFrom answers: where a page resumes (the last position the harness received + 1), or null */
  resumeFrom: () => number | null;
  /** resolves with the first message (arrived or arriving) that `pred` accepts */
  next(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Bundle `entry`, serve it with the model at `/`, launch Chromium on a fresh profile. */
export async function startBrowser(entry: string, modelPath: string): Promise<Browser> {
  const out = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', write: false, logLevel: 'silent' });
  const script = out.outputFiles[0]!.text;
  const modelBytes = readFileSync(modelPath);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (type: string, body: string | Buffer): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/') send('text/html', '<!doctype html><meta charset="utf-8"><title>sessions</title><script type="module" src="/page.js"></script>');
    else if (path === '/page.js') send('text/javascript', script);
    else if (path === '/model.safetensors') send('application/octet-stream', modelBytes);
    else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const profile = mkdtempSync(join(tmpdir(), 'tzs-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  } catch (e) {
    server.close();
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const messages: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  const b: Browser = {
    origin,
    context,
    messages,
    resumeFrom: () => null,
    next(pred, timeoutMs = 30_000) {
      const had = messages.find(pred);
      if (had !== undefined) return Promise.resolve(had);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such message from the page in ${timeoutMs} ms; last: ${JSON.stringify(messages.slice(-3)).slice(0, 800)}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
    async close() {
      await context.close().catch(() => undefined);
      server.close();
      server.closeAllConnections();
      rmSync(profile, { recursive: true, force: true });
    },
  };
  await context.exposeFunction('tzReport', (m: Record<string, unknown>) => {
    messages.push(m);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(m)) waiters.splice(i, 1)[0]!.resolve(m);
    }
  });
  await context.exposeFunction('tzFrom', () => b.resumeFrom());
  return b;
}
