// The serving load test, full size (DESIGN section 7): 64 concurrent sessions x 256 tokens on loopback, the
// shipped model, a file: store (the default), with 1 worker and with 2 workers side by side in one run. The
// two configurations alternate round by round (the machine is shared) and the ratio is the median of the
// per-round ratios. Reported per configuration: aggregate tokens/s (all tokens over the wall time from the
// generate requests to the last token), p50/p99 inter-token latency (every gap between two tokens of one
// stream, as the client sees it), fairness (p99/p50 across sessions of each session's mean inter-token gap),
// and the process RSS after a warm-up round and after the last round (flat: nothing leaks per request).
// Nothing lost: every session's text is checked against its offline reference (a plain model session).
//
//   npm run bench -- serve        (SMALL=1: 16 sessions x 64 tokens, one round)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelFile } from '../src/model/file.js';
import { createServer, SHIPPED_MODEL } from '../src/serve/index.js';

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

interface Stream {
  tokens: number[];
  text: string;
  times: number[];
}

async function readStream(res: Response): Promise<Stream> {
  const out: Stream = { tokens: [], text: '', times: [] };
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const now = performance.now();
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (block.startsWith('event: error')) throw new Error(`stream error: ${block}`);
      if (block.startsWith('event:')) continue;
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data === undefined) continue;
      const t = JSON.parse(data) as { token: number; text: string };
      out.tokens.push(t.token);
      out.text += t.text;
      out.times.push(now);
    }
  }
  return out;
}

interface RoundResult {
  tokensPerSecond: number;
  /** CPU time of this process (all threads: client, HTTP, workers) per wall second: the cores it got */
  cores: number;
  /** tokens per CPU second */
  tokensPerCpuSecond: number;
  gaps: number[];
  perSessionMeanGap: number[];
  texts: string[];
}

async function round(url: string, sessions: number, tokens: number, seed0: number): Promise<RoundResult> {
  const post = (path: string, body: unknown): Promise<Response> => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const ids = await Promise.all(Array.from({ length: sessions }, async (_, i) => {
    const r = await post('/v1/sessions', { prompt: `Chapter ${i + 1}. `, seed: seed0 + i, temperature: 0.8 });
    if (r.status !== 201) throw new Error(`create: ${r.status} ${await r.text()}`);
    return ((await r.json()) as { id: string }).id;
  }));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const streams = await Promise.all(ids.map(async (id) => {
    const r = await post(`/v1/sessions/${id}/generate`, { prompt: 'Call me', maxTokens: tokens });
    if (r.status !== 200) throw new Error(`generate: ${r.status} ${await r.text()}`);
    return readStream(r);
  }));
  const t1 = Math.max(...streams.map((s) => s.times[s.times.length - 1] ?? 0));
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const total = streams.reduce((n, s) => n + s.tokens.length, 0);
  const gaps: number[] = [];
  const perSessionMeanGap: number[] = [];
  for (const s of streams) {
    if (s.tokens.length !== tokens) throw new Error(`a stream ended after ${s.tokens.length} of ${tokens} tokens`);
    for (let i = 1; i < s.times.length; i++) gaps.push(s.times[i]! - s.times[i - 1]!);
    perSessionMeanGap.push((s.times[s.times.length - 1]! - s.times[0]!) / (s.times.length - 1));
  }
  return { tokensPerSecond: total / ((t1 - t0) / 1000), cores: cpuSeconds / ((performance.now() - t0) / 1000), tokensPerCpuSecond: total / cpuSeconds, gaps, perSessionMeanGap, texts: streams.map((s) => s.text) };
}

export async function runServeBench(log: (s: string) => void, small: boolean): Promise<unknown> {
  const sessions = small ? 16 : 64;
  const tokens = small ? 64 : 256;
  const rounds = small ? 1 : 3;
  const model = loadModelFile(SHIPPED_MODEL);
  log(`${sessions} concurrent sessions x ${tokens} tokens, shipped model, file: store, loopback; ${rounds} rounds per configuration, interleaved`);
  // offline references (same seeds every round)
  const refs: string[] = [];
  for (let i = 0; i < sessions; i++) {
    const s = model.session({ seed: 1000 + i, temperature: 0.8 });
    s.feed(new TextEncoder().encode(`Chapter ${i + 1}. `), { lastOnly: true });
    let text = '';
    for await (const t of s.generate('Call me', { maxTokens: tokens })) text += t.text;
    refs.push(text);
  }
  const configs = [1, 2] as const;
  const servers = [];
  const dirs: string[] = [];
  for (const workers of configs) {
    const dir = mkdtempSync(join(tmpdir(), `tzserve-bench-${workers}-`));
    dirs.push(dir);
    const server = createServer({ store: `file:${dir}`, workers, maxConcurrent: 1024, maxLive: 4 * sessions });
    const { url } = await server.listen();
    servers.push({ workers, server, url, results: [] as RoundResult[] });
  }
  // warm-up (JIT, worker start): one small round each
  for (const s of servers) await round(s.url, 8, 32, 1000);
  const rssWarm = process.memoryUsage().rss;
  const rssRounds: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const per: number[] = [];
    for (const s of servers) {
      const res = await round(s.url, sessions, tokens, 1000);
      res.texts.forEach((t, i) => {
        if (t !== refs[i]) throw new Error(`session ${i} (${s.workers} workers): the text differs from its offline reference`);
      });
      s.results.push(res);
      per.push(res.tokensPerSecond);
      log(`  round ${r + 1}, ${s.workers} worker${s.workers > 1 ? 's' : ''}: ${res.tokensPerSecond.toFixed(0)} tokens/s, ${res.cores.toFixed(2)} cores used, ${res.tokensPerCpuSecond.toFixed(0)} tokens per CPU second`);
    }
    ratios.push(per[1]! / per[0]!);
    rssRounds.push(process.memoryUsage().rss);
  }
  const rssEnd = process.memoryUsage().rss;
  const rows = servers.map((s) => {
    const gaps = s.results.flatMap((r) => r.gaps);
    const perSession = s.results.flatMap((r) => r.perSessionMeanGap);
    return {
      workers: s.workers,
      tokensPerSecond: quantile(s.results.map((r) => r.tokensPerSecond), 0.5),
      cores: quantile(s.results.map((r) => r.cores), 0.5),
      tokensPerCpuSecond: quantile(s.results.map((r) => r.tokensPerCpuSecond), 0.5),
      interTokenMs: { p50: quantile(gaps, 0.5), p99: quantile(gaps, 0.99) },
      fairness: quantile(perSession, 0.99) / quantile(perSession, 0.5),
    };
  });
  for (const s of servers) await s.server.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  const ratio = quantile(ratios, 0.5);
  log('');
  log('| workers | tokens/s (median) | cores used | tokens per CPU second | inter-token p50 | inter-token p99 | fairness (p99/p50 of per-session gaps) |');
  log('|---|---|---|---|---|---|---|');
  for (const r of rows) log(`| ${r.workers} | ${r.tokensPerSecond.toFixed(0)} | ${r.cores.toFixed(2)} | ${r.tokensPerCpuSecond.toFixed(0)} | ${r.interTokenMs.p50.toFixed(1)} ms | ${r.interTokenMs.p99.toFixed(1)} ms | ${r.fairness.toFixed(2)} |`);
  log(`2 workers vs 1: x${ratio.toFixed(2)} (median of per-round ratios ${ratios.map((x) => x.toFixed(2)).join(', ')}); every session's text equal to its offline reference`);
  const mib = (x: number): string => (x / 2 ** 20).toFixed(0);
  log(`RSS (this process: client, both servers, their 3 workers): ${mib(rssWarm)} MiB after warm-up (8 sessions each), ${rssRounds.map(mib).join(' -> ')} MiB after each round (${sessions} new sessions per server per round; idle ones are closed after 5 s), ${mib(rssEnd)} MiB at the end`);
  return { sessions, tokens, rounds, rows, ratio, ratios, rssMiB: { afterWarmup: rssWarm / 2 ** 20, afterRounds: rssRounds.map((x) => x / 2 ** 20), end: rssEnd / 2 ** 20 } };
}
