// Where a generated token's time goes (issue 21 item 5): a V8 CPU profile of generation only (after warm-up and
// the prompt's prefill), sampled every 100 us through the inspector (what `node --cpu-prof` records, without the
// startup), split into the one-row products, the attention kernels, and the rest.
//
//   npx tsx bench/profile-generation.ts [--tokens N] [--backend wasm|js] [--model path] [--out file.cpuprofile]
//
// WASM functions are named from the module's export section; an internal function (no export) counts under the
// exported function that called it (its parent in the profile's call tree).
import { readFileSync, writeFileSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadModel } from '../src/model/index.js';
import { WASM_BASE64 } from '../src/backend/wasmBinary.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Function index -> export name, from the binary's export section. */
function wasmExportNames(bytes: Uint8Array): Map<number, string> {
  const names = new Map<number, string>();
  let p = 8;
  const leb = (): number => {
    let r = 0;
    let s = 0;
    for (;;) {
      const b = bytes[p++]!;
      r |= (b & 0x7f) << s;
      if ((b & 0x80) === 0) return r >>> 0;
      s += 7;
    }
  };
  while (p < bytes.length) {
    const id = bytes[p++]!;
    const size = leb();
    const end = p + size;
    if (id === 7) {
      const n = leb();
      for (let i = 0; i < n; i++) {
        const len = leb();
        const name = new TextDecoder().decode(bytes.subarray(p, p + len));
        p += len;
        const kind = bytes[p++]!;
        const index = leb();
        if (kind === 0) names.set(index, name);
      }
    }
    p = end;
  }
  return names;
}

const GEMV = new Set(['gemvPacked', 'gemvPacked32', 'gemmPacked', 'gemmPacked32', 'gemm']);
const ATTENTION = new Set(['aformRing', 'aformRows', 'farAbsorb', 'farContract', 'scaleFar', 'prfLogits', 'expRows', 'expShift']);
const MODEL_WASM = new Set(['swiglu']);

export function splitProfile(profile: Profile, names: Map<number, string>): { total: number; parts: Record<string, number>; top: Array<[string, number]> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  const label = (n: ProfileNode): string => {
    const m = /^wasm-function\[(\d+)\]/.exec(n.callFrame.functionName);
    if (m) {
      // an internal function: its nearest exported ancestor
      for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
        const a = byId.get(id)!;
        const am = /^wasm-function\[(\d+)\]/.exec(a.callFrame.functionName);
        if (am && names.has(Number(am[1]))) return `wasm ${names.get(Number(am[1]))}${a === n ? '' : ' (+ callees)'}`;
        if (!am) break;
      }
      return `wasm ${n.callFrame.functionName}`;
    }
    const file = n.callFrame.url.split('/').slice(-2).join('/');
    return `${n.callFrame.functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
  };
  const parts: Record<string, number> = { 'one-row products (GEMV)': 0, 'attention kernels (WASM)': 0, 'engine JS (decoder step, wrappers)': 0, 'model (JS forward, session, sampler; WASM SwiGLU)': 0, 'GC, runtime, other': 0 };
  const labels = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const t = self.get(n.id) ?? 0;
    if (t === 0 || n.callFrame.functionName === '(idle)') continue;
    total += t;
    const l = label(n);
    labels.set(l, (labels.get(l) ?? 0) + t);
    const fn = l.startsWith('wasm ') ? l.slice(5).split(' ')[0]! : '';
    const url = n.callFrame.url;
    if (GEMV.has(fn)) parts['one-row products (GEMV)']! += t;
    else if (ATTENTION.has(fn)) parts['attention kernels (WASM)']! += t;
    else if (/\/src\/(engine|backend|math)\//.test(url)) parts['engine JS (decoder step, wrappers)']! += t;
    else if (MODEL_WASM.has(fn) || /\/src\/model\//.test(url)) parts['model (JS forward, session, sampler; WASM SwiGLU)']! += t;
    else parts['GC, runtime, other']! += t;
  }
  const top = [...labels.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  return { total, parts, top };
}

export async function profileGeneration(log: (s: string) => void, opts: { tokens?: number; backend?: 'wasm' | 'js'; model?: string; out?: string } = {}): Promise<Record<string, number>> {
  const tokens = opts.tokens ?? 3000;
  const bytes = readFileSync(opts.model ?? join(root, 'models', 'toeplitz-lm.safetensors'));
  const model = loadModel(bytes, { backend: opts.backend ?? 'wasm' });
  const text = readFileSync(join(root, 'README.md'), 'utf8').replace(/[^\x20-\x7e\n]/g, ' ');
  const prompt = new TextEncoder().encode(text).subarray(0, 1000);
  const ins = new Inspector();
  ins.connect();
  await ins.post('Profiler.enable');
  await ins.post('Profiler.setSamplingInterval', { interval: 100 });
  let profile: Profile | null = null;
  for (const [n, profiled] of [[500, false], [tokens, true]] as const) {
    const s = model.session({ seed: 7, temperature: 0.8, validUtf8: false });
    s.feed(prompt, { lastOnly: true });
    if (profiled) await ins.post('Profiler.start');
    const c0 = process.cpuUsage();
    for await (const g of s.generate('', { maxTokens: n })) void g;
    const c = process.cpuUsage(c0);
    if (profiled) {
      profile = (await ins.post('Profiler.stop')).profile as unknown as Profile;
      log(`${n} tokens from position ${prompt.length} (${model.backend}): ${((c.user + c.system) / 1000 / n).toFixed(3)} ms CPU per token while profiled`);
    }
  }
  ins.disconnect();
  if (opts.out) writeFileSync(opts.out, JSON.stringify(profile));
  const { total, parts, top } = splitProfile(profile!, wasmExportNames(Buffer.from(WASM_BASE64, 'base64')));
  const pct = (t: number): string => `${((100 * t) / total).toFixed(1)}%`;
  log(Object.entries(parts).map(([k, t]) => `${k} ${pct(t)}`).join('; '));
  for (const [k, t] of top) log(`  ${pct(t).padStart(6)}  ${k}`);
  return Object.fromEntries(Object.entries(parts).map(([k, t]) => [k, t / total]));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  await profileGeneration(console.log, { tokens: opt('--tokens') === undefined ? undefined : Number(opt('--tokens')), backend: opt('--backend') as 'wasm' | 'js' | undefined, model: opt('--model'), out: opt('--out') });
}
