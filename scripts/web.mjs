#!/usr/bin/env node
// npm run web: build the demo page (examples/web) with esbuild into web-dist/ and serve it on 127.0.0.1.
//   node scripts/web.mjs [--port 8080] [--out web-dist] [--build-only]
// The page imports 'toeplitz-attention/web' as a user's page does; here that resolves to this checkout's
// sources. Outputs: index.html, app.js (the page), worker.js (the engine's worker), the model file, sw.js
// (the service worker, with the list of files it caches for offline use).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** 'toeplitz-attention/...' -> this checkout's sources (a user's bundler resolves the package's exports instead) */
const selfPackage = {
  name: 'toeplitz-attention-sources',
  setup(b) {
    const map = { 'toeplitz-attention/web': 'src/web/index.ts', 'toeplitz-attention/web/worker': 'src/web/worker.ts' };
    b.onResolve({ filter: /^toeplitz-attention(\/|$)/ }, (a) => {
      if (map[a.path]) return { path: join(root, map[a.path]) };
      if (a.path.startsWith('toeplitz-attention/models/')) return { path: join(root, a.path.slice('toeplitz-attention/'.length)) };
      return { errors: [{ text: `${a.path} is not mapped to the sources in scripts/web.mjs` }] };
    });
  },
};

/** Build the demo into `out`; returns the files written (relative to out). */
export async function buildDemo(out = join(root, 'web-dist'), { minify = true } = {}) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const r = await build({
    entryPoints: { app: join(root, 'examples/web/app.ts'), worker: 'toeplitz-attention/web/worker' },
    bundle: true,
    format: 'esm',
    splitting: true,
    chunkNames: 'chunk-[hash]',
    platform: 'browser',
    target: 'es2022',
    outdir: out,
    minify,
    sourcemap: false,
    loader: { '.safetensors': 'file' },
    assetNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
    plugins: [selfPackage],
  });
  const built = Object.keys(r.metafile.outputs).map((p) => relative(out, resolve(p)).split(sep).join('/'));
  writeFileSync(join(out, 'index.html'), readFileSync(join(root, 'examples/web/index.html')));
  const files = ['./', './index.html', ...built.map((f) => `./${f}`)];
  const version = createHash('sha256').update(built.map((f) => readFileSync(join(out, f))).reduce((h, b) => h.update(b), createHash('sha256')).digest('hex')).digest('hex').slice(0, 16);
  const sw = readFileSync(join(root, 'examples/web/sw.js'), 'utf8').replace('__VERSION__', `tza-${version}`).replace('__FILES__', JSON.stringify(files));
  writeFileSync(join(out, 'sw.js'), sw);
  return { out, files: ['index.html', 'sw.js', ...built], metafile: r.metafile };
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.safetensors': 'application/octet-stream', '.json': 'application/json' };

/** Serve `dir` on host:port (0: any free port); resolves with the server and its URL. */
export function serveDir(dir, { host = '127.0.0.1', port = 0 } = {}) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = resolve(dir, `.${path.endsWith('/') ? `${path}index.html` : path}`);
    if (!file.startsWith(resolve(dir) + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, 'cache-control': 'no-cache' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const a = server.address();
      ok({ server, url: `http://${host}:${a.port}/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
  const out = resolve(opt('--out', join(root, 'web-dist')));
  const t0 = performance.now();
  const { files } = await buildDemo(out);
  console.log(`built ${files.length} files into ${relative(process.cwd(), out) || '.'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (!args.includes('--build-only')) {
    const { url } = await serveDir(out, { port: Number(opt('--port', 8080)) });
    console.log(`serving the demo at ${url}`);
  }
}
