#!/usr/bin/env node
// The package as its users get it: build, `npm pack`, install the tarball into a fresh project, then
//   (a) import and use every entry from plain `node` (no loader),
//   (b) type-check a consumer .ts under `module: node16` and `moduleResolution: bundler` (strict,
//       noUnusedLocals, exactOptionalPropertyTypes, no skipLibCheck, no @types/node),
//   (c) run the installed CLI,
//   (d) publint and @arethetypeswrong/cli (profile esm-only) on the tarball,
//   (e) bundle the root entry for the browser with esbuild (minified) and run it in headless Chromium;
//       an attention()-only bundle must not contain msgpackr.
// Prints the tarball's size and file count and the bundle sizes. Exits non-zero on any failure.
//
// Usage: node scripts/consumer-check.mjs [--no-build] [--keep]   (CI: .ci/run, after the unit tests)
// Needs the registry (or its cache) for the consumer's dependencies, and Chromium at /usr/bin/chromium
// (CHROMIUM=/path overrides; `apt-get install -y chromium`).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = new Set(process.argv.slice(2));
const requireRoot = createRequire(join(root, 'package.json'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** Entries whose source does not exist yet (e.g. ./model while it is being written): skipped, with a note. */
const pending = Object.entries(pkg.exports)
  .filter(([, t]) => typeof t === 'object' && !existsSync(join(root, t.import.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'))))
  .map(([entry]) => entry);
const hasModel = !pending.includes('./model') && !pending.includes('./model/file');
const shippedModels = existsSync(join(root, 'models')) ? readdirSync(join(root, 'models')).filter((f) => f.endsWith('.safetensors')) : [];
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const started = performance.now();

const failures = [];
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const seconds = (t0) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Run a command; returns { status, stdout, stderr }; throws with its output when `check` and it fails. */
function run(cmd, args, { cwd = root, check = true, env = {}, timeout = 300_000 } = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout, maxBuffer: 64 << 20 });
  const out = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (check && out.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${out.status}\n${(out.stdout + out.stderr).trim().split('\n').slice(-30).join('\n')}`);
  }
  return out;
}

/** A named check: failures are recorded and reported, later checks still run (unless `fatal`). */
async function check(name, fn, { fatal = false } = {}) {
  const t0 = performance.now();
  try {
    const note = await fn();
    console.log(`ok    ${name} (${seconds(t0)})${note ? `: ${note}` : ''}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL  ${name} (${seconds(t0)})\n${String(e?.stack ?? e).replace(/^/gm, '      ')}`);
    if (fatal) finish();
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function finish() {
  console.log(`\nconsumer check: ${failures.length === 0 ? 'all passed' : `${failures.length} failed (${failures.join('; ')})`} in ${seconds(started)}`);
  if (!argv.has('--keep') && work) rmSync(work, { recursive: true, force: true });
  else if (work) console.log(`kept ${work}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

/** Read a little-endian float64/float32 C-order .npy (as the CLI writes it). */
function readNpy(bytes) {
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = Buffer.from(bytes.subarray(0, start)).toString('latin1');
  const shape = /'shape': \(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const data = header.includes("'<f8'") ? new Float64Array(bytes.slice(start).buffer) : new Float32Array(bytes.slice(start).buffer);
  return { shape, data };
}

/** The shortest import path in an esbuild metafile from the entry to an input matching `target`, or null. */
function importChain(meta, target) {
  const inputs = meta.inputs;
  const entry = Object.keys(inputs).find((p) => !p.includes('node_modules/'));
  const prev = new Map([[entry, null]]);
  const queue = [entry];
  while (queue.length) {
    const at = queue.shift();
    if (target.test(at)) {
      const path = [];
      for (let p = at; p !== null; p = prev.get(p)) path.unshift(p.replace(/^.*node_modules\//, ''));
      return path;
    }
    for (const imp of inputs[at]?.imports ?? []) {
      if (!prev.has(imp.path) && inputs[imp.path]) {
        prev.set(imp.path, at);
        queue.push(imp.path);
      }
    }
  }
  return null;
}

const maxAbsDiff = (a, b) => {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

let work;
let tarball;
let packInfo;
let consumer;
let nodeReport;

console.log(`toeplitz-attention ${pkg.version}: consumer check${pending.length ? ` (skipped until their sources exist: ${pending.join(', ')})` : ''}\n`);

if (!argv.has('--no-build')) {
  await check('build (npm run build)', () => void run('npm', ['run', 'build']), { fatal: true });
}

work = mkdtempSync(join(tmpdir(), 'tza-consumer-check-'));

await check('pack (npm pack)', () => {
  // --ignore-scripts: prepack would build again (this script or CI has just built)
  const out = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work]);
  packInfo = JSON.parse(out.stdout.slice(out.stdout.indexOf('[')))[0];
  tarball = join(work, packInfo.filename);
  const files = packInfo.files.map((f) => f.path);
  // models/*.safetensors ships on purpose: the CLI's generate and eval default to the trained model
  const forbidden = files.filter((f) => /^(test|bench|examples|scripts|train|\.ci|node_modules)\/|^tsconfig|^vitest|\.tgz$/.test(f) || (f.startsWith('models/') && !f.endsWith('.safetensors')));
  assert(forbidden.length === 0, `the tarball ships files users do not need: ${forbidden.join(', ')}`);
  const required = ['package.json', 'LICENSE', 'README.md', 'FORMAT.md', 'bin/toeplitz-attention.js', 'dist/cli/main.js'];
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (pending.includes(entry)) continue;
    if (typeof target === 'string') required.push(target.replace(/^\.\//, ''));
    else for (const file of Object.values(target)) required.push(file.replace(/^\.\//, ''));
  }
  // a pattern export (./models/*.safetensors) must match at least one shipped file
  const matches = (pattern) => pattern.includes('*') ? files.some((f) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]+')}$`).test(f)) : files.includes(pattern);
  const missing = [...new Set(required)].filter((f) => !matches(f));
  assert(missing.length === 0, `the tarball lacks ${missing.join(', ')}`);
  return `${packInfo.filename}: ${kb(packInfo.size)} packed, ${kb(packInfo.unpackedSize)} unpacked, ${packInfo.entryCount} files`;
}, { fatal: true });

await check('dependencies are what the compiled code imports', () => {
  const imported = new Set();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (p.endsWith('.js')) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
          const spec = m[1] ?? m[2];
          if (spec.startsWith('.') || spec.startsWith('node:')) continue;
          imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
        }
      }
    }
  };
  walk(join(root, 'dist'));
  const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
  const undeclared = [...imported].filter((d) => !declared.has(d));
  assert(undeclared.length === 0, `dist imports packages that are not dependencies: ${undeclared.join(', ')}`);
  const unused = Object.keys(pkg.dependencies ?? {}).filter((d) => !imported.has(d) && !d.startsWith('@types/'));
  assert(unused.length === 0, `dependencies that no compiled file imports: ${unused.join(', ')}`);
  for (const t of Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@types/'))) {
    const target = t.slice('@types/'.length);
    const used = run('grep', ['-rlE', `from ['"]${target}['"]`, join(root, 'dist'), '--include=*.d.ts'], { check: false }).stdout.trim();
    assert(used !== '', `${t} is a dependency but no declaration file imports ${target}`);
  }
  const peers = Object.keys(pkg.peerDependencies ?? {});
  for (const p of peers) assert(pkg.peerDependenciesMeta?.[p]?.optional === true, `peer dependency ${p} should be optional`);
  return `imports ${[...imported].sort().join(', ')}; optional peers ${peers.join(', ') || 'none'}`;
});

await check('install the tarball into a fresh project', () => {
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'tza-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
  // what a user of ./rx adds next to the package: rxjs (an optional peer) and ndarray (to build tensors)
  const version = (name) => JSON.parse(readFileSync(requireRoot.resolve(`${name}/package.json`), 'utf8')).version;
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, `rxjs@^${version('rxjs')}`, `ndarray@^${version('ndarray')}`], { cwd: consumer });
  // a Node TypeScript project also has @types/node (the bundler check below goes without it, with the DOM lib)
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--save-dev', `@types/node@^${version('@types/node')}`], { cwd: consumer });
  for (const name of ['tsx', 'esbuild', 'vega', 'vega-lite', 'typescript', 'vitest', 'playwright-core']) {
    assert(!existsSync(join(consumer, 'node_modules', name)), `installing the package pulled in ${name}, a development tool`);
  }
  for (const f of readdirSync(join(root, 'test', 'consumer'))) cpSync(join(root, 'test', 'consumer', f), join(consumer, f));
  const count = run('npm', ['ls', '--all', '--parseable', '--omit=dev'], { cwd: consumer, check: false }).stdout.trim().split('\n').length - 1;
  return `${count} packages installed (the package, rxjs, ndarray and their dependencies), no development tools`;
}, { fatal: true });

await check('(a) plain node: ., ./rx, ./codec' + (hasModel ? ', ./model, ./model/file' : ''), () => {
  const out = run(process.execPath, ['node-check.mjs'], { cwd: consumer, env: { TZA_HAS_MODEL: hasModel ? '1' : '0', TZA_SHIPPED_MODEL: shippedModels.length ? `models/${shippedModels[0]}` : '', NODE_OPTIONS: '' } });
  nodeReport = JSON.parse(out.stdout.trim().split('\n').pop());
  assert(nodeReport.version === pkg.version, `toeplitz-attention/package.json says ${nodeReport.version}`);
  const model = hasModel ? `, ./model (tiny random model through ./model/file: session.feed vs logits ${nodeReport.modelSessionVsLogits.toExponential(1)}${nodeReport.shippedModel ? `; shipped ${nodeReport.shippedModel.path} loads` : ''})` : '';
  return `attention vs reference ${nodeReport.attentionVsReference.toExponential(1)}, decoder+restore vs attention ${nodeReport.decoderVsAttention.toExponential(1)}, rx vs attention ${nodeReport.rxVsAttention.toExponential(1)}, snapshot ${nodeReport.snapshotBytes} bytes${model}`;
});

await check("README quickstart (the shipped README's code, run as quickstart.mjs)", () => {
  const readme = readFileSync(join(consumer, 'node_modules', 'toeplitz-attention', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quickstart'));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  const printed = /It prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(section)?.[1];
  assert(code && printed, 'README.md has no ```js quickstart block followed by "It prints" and its output');
  writeFileSync(join(consumer, 'quickstart.mjs'), code);
  const out = run(process.execPath, ['quickstart.mjs'], { cwd: consumer }).stdout.trim().split('\n');
  const want = printed.trim().split('\n');
  assert(out.length === want.length, `quickstart printed ${out.length} lines, the README shows ${want.length}:\n${out.join('\n')}`);
  for (let i = 0; i < out.length; i++) {
    const diff = /max \|diff\| = (\S+)$/.exec(out[i]);
    if (diff) assert(Number(diff[1]) < 1e-12 && out[i].replace(/= \S+$/, '') === want[i].replace(/= \S+$/, ''), `quickstart line ${i + 1}: ${out[i]}`);
    else assert(out[i] === want[i], `quickstart line ${i + 1} is "${out[i]}", the README says "${want[i]}"`);
  }
  return out.filter((l) => /diff/.test(l)).join('; ');
});

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const strictFlags = { strict: true, noUnusedLocals: true, noUnusedParameters: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, skipLibCheck: false, noEmit: true, target: 'ES2022' };
// a Node project (node16, @types/node, no DOM) and a browser app (bundler, DOM, no @types/node)
const personas = [
  ['node16', { module: 'node16', moduleResolution: 'node16', lib: ['ES2022'], types: ['node'] }, 'Node types, no DOM'],
  ['bundler', { module: 'preserve', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [] }, 'DOM, no @types/node'],
];
for (const [name, resolution, persona] of personas) {
  await check(`(b) tsc, ${name} resolution, strict + noUnusedLocals + exactOptionalPropertyTypes`, () => {
    const file = `tsconfig.${name}.json`;
    writeFileSync(join(consumer, file), JSON.stringify({ compilerOptions: { ...strictFlags, ...resolution }, files: ['consumer.ts', ...(hasModel ? ['model.ts'] : [])] }, null, 2));
    const out = run(process.execPath, [tsc, '-p', file, '--pretty', 'false'], { cwd: consumer, check: false });
    assert(out.status === 0, `type errors:\n${(out.stdout + out.stderr).trim()}`);
    return `consumer.ts${hasModel ? ' + model.ts' : ''}, ${persona}, skipLibCheck false`;
  });
}

await check('(c) the installed CLI (npx toeplitz-attention)', () => {
  const cli = (args, opts) => run('npx', ['--no', '--', 'toeplitz-attention', ...args], { cwd: consumer, ...opts });
  const version = cli(['--version']).stdout.trim();
  assert(version === pkg.version, `--version printed "${version}", package.json says ${pkg.version}`);
  const dir = nodeReport.dir;
  const out = join(dir, 'z.npy');
  const config = { count: 16, seed: 5, bias: '0,-0.5,-1,-1.5', tail: 'decay:0.25' }; // as test/consumer/inputs.mjs
  const files = ['--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy')];
  cli(['run', ...files, '--out', out, '--count', String(config.count), '--seed', String(config.seed), '--bias', config.bias, '--tail', config.tail, '--quiet']);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const z = readNpy(new Uint8Array(readFileSync(out)));
  assert(JSON.stringify(z.shape) === JSON.stringify(expected.shape), `run wrote shape [${z.shape}], expected [${expected.shape}]`);
  const diff = maxAbsDiff(z.data, expected.z);
  assert(diff < 1e-12, `run's output differs from attention() by ${diff}`);
  const w = join(dir, 'W.npy');
  cli(['export-projection', '--count', '16', '--key-dim', '4', '--seed', '5', '--out', w, '--quiet']);
  cli(['run', ...files, '--out', join(dir, 'zw.npy'), '--projection', w, '--bias', config.bias, '--tail', config.tail, '--quiet']);
  assert(maxAbsDiff(readNpy(new Uint8Array(readFileSync(join(dir, 'zw.npy')))).data, z.data) === 0, 'run --projection (exported W) differs from run --seed');
  const inspect = cli(['inspect', nodeReport.snapshotFile]);
  assert(JSON.parse(inspect.stdout).checksum.valid === true, 'inspect did not report a valid checksum');
  const bench = cli(['bench'], { check: false });
  assert(bench.status !== 0 && /npm run bench/.test(bench.stderr) && !/ERR_MODULE_NOT_FOUND/.test(bench.stderr), `bench: exit ${bench.status}, ${bench.stderr.trim()}`);
  const bad = cli(['run', ...files, '--out', out, '--bias', ',-1'], { check: false });
  assert(bad.status === 2 && bad.stderr.trim().split('\n').length === 1, `--bias ",-1": exit ${bad.status}, ${bad.stderr.trim()}`);
  let generated = '';
  if (shippedModels.length) {
    const g = cli(['generate', '--prompt', 'Call me Ishmael.', '--tokens', '24', '--temperature', '0', '--quiet']);
    assert(g.stdout.length > 0, 'generate with the shipped model printed nothing');
    generated = `; generate (shipped model): ${JSON.stringify(g.stdout.slice(0, 40))}`;
  }
  return `--version ${version}; run = attention() (${diff.toExponential(1)}); export-projection + run --projection; inspect; bench points to npm run bench${generated}`;
});

await check('(c) the installed server (the package bin: toeplitz-attention serve)', async () => {
  if (!shippedModels.length) return 'skipped: no shipped model';
  const { spawn } = await import('node:child_process');
  // the installed bin run by node itself (not through npx, whose child would outlive a kill)
  const bin = join(consumer, 'node_modules', 'toeplitz-attention', 'bin', 'toeplitz-attention.js');
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--workers', '1', '--store', 'memory:'], { cwd: consumer, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const url = await new Promise((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new Error(`no "listening on" line in 60 s; stderr: ${stderr.trim()}`)), 60_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /^listening on (http:\/\/\S+)/.exec(out);
        if (m) { clearTimeout(timer); res(m[1]); }
      });
      child.on('exit', (code) => rej(new Error(`serve exited with ${code}: ${stderr.trim()}`)));
    });
    assert((await fetch(`${url}/healthz`)).ok, '/healthz is not ok');
    const created = await (await fetch(`${url}/v1/sessions`, { method: 'POST', body: JSON.stringify({ prompt: 'Call me Ishmael. ', seed: 7 }) })).json();
    assert(typeof created.id === 'string' && created.position === 17, `POST /v1/sessions gave ${JSON.stringify(created)}`);
    const sse = await (await fetch(`${url}/v1/sessions/${created.id}/generate`, { method: 'POST', body: JSON.stringify({ maxTokens: 8 }) })).text();
    const tokens = [...sse.matchAll(/^data: (\{"token".*)$/gm)].map((m) => JSON.parse(m[1]));
    assert(tokens.length === 8 && /event: done/.test(sse), `generate streamed ${tokens.length} tokens: ${sse.slice(0, 200)}`);
    return `${url}: a session streamed 8 tokens over SSE (${JSON.stringify(tokens.map((t) => t.text).join(''))})`;
  } finally {
    const exited = new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((res) => setTimeout(res, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

await check('(d) publint', async () => {
  const { publint } = await import(pathToFileURL(requireRoot.resolve('publint')).href);
  const { formatMessage } = await import(pathToFileURL(join(dirname(requireRoot.resolve('publint')), 'utils.js')).href);
  const buf = readFileSync(tarball);
  const { messages, pkg: packed } = await publint({ pack: { tarball: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) }, level: 'suggestion' });
  const skipped = (m) => m.path[0] === 'exports' && pending.includes(m.path[1]);
  const lines = [];
  for (const m of messages) lines.push(`${skipped(m) ? `skipped (${m.path[1]} not written yet)` : m.type}: ${formatMessage(m, packed, { color: false })}`);
  if (lines.length) console.log(lines.map((l) => `      ${l}`).join('\n'));
  const errors = messages.filter((m) => (m.type === 'error' || m.type === 'warning') && !skipped(m));
  assert(errors.length === 0, `${errors.length} publint errors or warnings`);
  return `${messages.filter((m) => !skipped(m)).length} messages`;
});

await check('(d) attw --profile esm-only', () => {
  const attw = join(dirname(requireRoot.resolve('@arethetypeswrong/cli/package.json')), 'dist', 'index.js');
  const args = [attw, tarball, '--profile', 'esm-only', '--no-definitely-typed', '--format', 'table-flipped', '--no-color', '--no-emoji'];
  if (pending.length) args.push('--exclude-entrypoints', ...pending);
  const out = run(process.execPath, args, { check: false });
  const text = (out.stdout + out.stderr).trim();
  assert(out.status === 0, `attw found problems:\n${text}`);
  return text.split('\n').find((l) => /No problems found/.test(l))?.trim() ?? 'no problems';
});

let bundleNote = '';
await check('(e) browser bundles (esbuild, platform browser, minified)', async () => {
  const esbuild = await import(pathToFileURL(requireRoot.resolve('esbuild')).href);
  const common = { absWorkingDir: consumer, bundle: true, platform: 'browser', minify: true, metafile: true, write: true, logLevel: 'silent', target: 'es2022' };
  // files that contribute bytes to the output (the metafile's inputs also list files parsed, then shaken off)
  const inputsOf = (meta) => Object.values(meta.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([p]) => p));
  const pkgsOf = (meta) => [...new Set(inputsOf(meta).map((p) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean))].sort();
  const only = await esbuild.build({ ...common, entryPoints: ['attention-only.mjs'], format: 'esm', outfile: 'attention-only.min.js' });
  const onlyBytes = readFileSync(join(consumer, 'attention-only.min.js'));
  const onlyPkgs = pkgsOf(only.metafile);
  const page = await esbuild.build({ ...common, entryPoints: ['browser-entry.mjs'], format: 'iife', outfile: 'page.min.js' });
  const pageBytes = readFileSync(join(consumer, 'page.min.js'));
  const nodeBuiltins = Object.keys(page.metafile.inputs).filter((p) => p.startsWith('node:'));
  assert(nodeBuiltins.length === 0, `the root entry pulls Node built-ins into a browser bundle: ${nodeBuiltins.join(', ')}`);
  bundleNote = `attention()-only bundle ${onlyBytes.length} bytes minified (${gzipSync(onlyBytes).length} gzipped), packages: ${onlyPkgs.join(', ')}; page bundle (attention, Decoder, snapshot/restore) ${pageBytes.length} bytes`;
  console.log(`      ${bundleNote}`);
  const chain = onlyPkgs.includes('msgpackr') ? importChain(only.metafile, /node_modules\/msgpackr\//) : null;
  assert(chain === null && !onlyBytes.includes('msgpackr'), `the attention()-only bundle contains msgpackr (the snapshot codec must not be reachable from attention()): ${chain?.join(' -> ')}`);
  assert(!onlyPkgs.includes('rxjs') && !onlyPkgs.includes('commander') && !onlyPkgs.includes('cli-progress'), `the attention()-only bundle contains ${onlyPkgs.join(', ')}`);
  return bundleNote;
});

await check('(e) headless Chromium runs the minified root bundle', async () => {
  assert(existsSync(chromiumPath), `no Chromium at ${chromiumPath} (apt-get install -y chromium, or set CHROMIUM)`);
  const bundle = readFileSync(join(consumer, 'page.min.js'), 'utf8');
  const playwright = await import(pathToFileURL(requireRoot.resolve('playwright-core')).href);
  const chromium = playwright.chromium ?? playwright.default.chromium;
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.setContent('<!doctype html><html><head><meta charset="utf-8"><title>toeplitz-attention</title></head><body></body></html>');
    await page.addScriptTag({ content: bundle });
    await page.waitForFunction(() => window.__tza !== undefined, undefined, { timeout: 60_000 });
    const result = await page.evaluate(() => window.__tza);
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
    assert(result && !result.failure, `the page failed: ${result?.failure ?? 'no result'}`);
    const expected = JSON.parse(readFileSync(join(nodeReport.dir, 'expected.json'), 'utf8')).z;
    const vsNode = maxAbsDiff(result.z, expected);
    assert(vsNode < 1e-12, `attention() in Chromium differs from Node by ${vsNode}`);
    assert(result.vsReference < 1e-12, `attention() vs referenceAttention() in Chromium: ${result.vsReference}`);
    assert(result.constantValues < 1e-12, `constant values should give exactly that constant: off by ${result.constantValues}`);
    assert(result.restoredPosition === 9 && result.restoreDiff === 0, `Decoder snapshot/restore in Chromium: position ${result.restoredPosition}, diff ${result.restoreDiff}`);
    assert(result.errorName === 'ConfigError' && result.errorIsConfigError === true, `a caught ConfigError has name "${result.errorName}" (instanceof: ${result.errorIsConfigError}) in the minified bundle`);
    assert(result.wasmReady === true, `the WASM SIMD backend did not load in Chromium (initWasm() -> ${result.wasmReady})`);
    assert(result.wasmVsJs < 1e-12 && result.wasmDecoderVsJs < 1e-12 && result.wasmDecoderBackend === 'wasm', `WASM in Chromium: attention vs JS ${result.wasmVsJs}, decoder (${result.wasmDecoderBackend}) vs JS ${result.wasmDecoderVsJs}`);
    return `${/Chrome\/[\d.]+/.exec(result.userAgent)?.[0] ?? result.userAgent}: attention() = Node's (${vsNode.toExponential(1)}), vs reference ${result.vsReference.toExponential(1)}, restore bit-identical, ConfigError.name "${result.errorName}" (minified class "${result.errorClassName}"); WASM SIMD backend after initWasm() (before: ${result.wasmBeforeInit}): attention vs JS ${result.wasmVsJs.toExponential(1)}, Decoder.chunk on wasm vs JS ${result.wasmDecoderVsJs.toExponential(1)}`;
  } finally {
    await browser.close();
  }
});

console.log(`\ntarball: ${packInfo.filename}, ${packInfo.size} bytes packed (${kb(packInfo.size)}), ${packInfo.unpackedSize} bytes unpacked, ${packInfo.entryCount} files`);
if (bundleNote) console.log(bundleNote);
finish();
