// The HTTP front of `toeplitz-attention serve` (DESIGN section 11), on node:http: routing, request bodies
// with limits, authentication, admission control, Server-Sent Events, the OpenAI-compatible completions
// route and the metrics. Sessions live in the hosts (hosts.ts): worker threads, each with the model loaded
// once, and each session pinned to one worker by a hash of its id.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ConfigError, describe } from '../core/errors.js';
import { SESSION_ID } from '../sessions/store.js';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_LEASE_MS } from '../sessions/session.js';
import { errorBody, HttpError, type ErrorBody } from './errors.js';
import { localHost, workerHost, type HostLink, type Op } from './hosts.js';
import { Exposition, mergeHistograms, newHistogram } from './metrics.js';
import type { HostConfig, HostStats, Reply, SamplingBody, Usage } from './protocol.js';

/** The model shipped with the package (models/ next to src/ or dist/). */
export const SHIPPED_MODEL = fileURLToPath(new URL('../../models/toeplitz-lm.safetensors', import.meta.url));

export interface ServeOptions {
  /** a toeplitz-lm .safetensors path or its bytes (default: the shipped model) */
  model?: string | Uint8Array;
  /** a store URL as openStore takes it (default file:toeplitz-sessions, a folder in the working directory) */
  store?: string;
  /** default 127.0.0.1; anything but a loopback address needs apiKey */
  host?: string;
  /** default 0: any free port */
  port?: number;
  /** worker threads (default: the cores available); 0 runs sessions in the main thread */
  workers?: number;
  /** live sessions kept in memory, over all workers (default 1024); the least recently used beyond are closed */
  maxLive?: number;
  /** streams (generations, resumes, completions) at once; more get 429 with Retry-After (default 256) */
  maxConcurrent?: number;
  /** clients must send `Authorization: Bearer <apiKey>` (all routes but /healthz) */
  apiKey?: string;
  leaseMs?: number;
  checkpointEvery?: number;
  /** close a live session idle this long (default 5000 ms), freeing its lease for other replicas */
  idleMs?: number;
  /** keep a generation whose clients all left paused this long for a reconnect (default 10000 ms) */
  pauseMs?: number;
  /** a resume waits this long for another writer's lease to run out (default leaseMs + 1000) */
  resumeWaitMs?: number;
  /** JSON request bodies (default 1 MiB) */
  maxBodyBytes?: number;
  /** snapshot PUT bodies (default 64 MiB) */
  maxSnapshotBytes?: number;
  /** the whole request (headers and body) must arrive within this (default 30000 ms) */
  requestTimeoutMs?: number;
  /** the largest maxTokens a request may ask for (default 16384) */
  maxTokens?: number;
  /** where unexpected errors are reported (default console.error) */
  log?: (message: string) => void;
}

export interface ToeplitzServer {
  /** the node:http server */
  readonly http: Server;
  /** start the hosts, then bind; resolves with the address */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** stop accepting, end streams (their generations stay pending for a reconnect), close the hosts */
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

function intOption(o: ServeOptions, name: keyof ServeOptions, fallback: number, min: number, max = 2 ** 31 - 1): number {
  const v = o[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`serve option ${name} must be an integer in [${min}, ${max}], got ${describe(v)}`);
  return v;
}

function checkServeOptions(o: ServeOptions) {
  if (o === null || typeof o !== 'object') throw new ConfigError(`serve options must be an object, got ${describe(o)}`);
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) throw new ConfigError(`host must be a non-empty string, got ${describe(host)}`);
  if (o.apiKey !== undefined && (typeof o.apiKey !== 'string' || o.apiKey.length < 8)) throw new ConfigError('apiKey must be a string of at least 8 characters');
  if (!LOOPBACK.test(host) && o.apiKey === undefined) throw new ConfigError(`binding ${host} (not a loopback address) needs an API key (--api-key): anyone who can reach it could read and drive every session`);
  const model = o.model ?? SHIPPED_MODEL;
  if (typeof model !== 'string' && !(model instanceof Uint8Array)) throw new ConfigError(`model must be a path or the bytes of a .safetensors file, got ${describe(model)}`);
  const store = o.store ?? 'file:toeplitz-sessions';
  if (typeof store !== 'string') throw new ConfigError(`store must be a URL string, got ${describe(store)}`);
  const workers = intOption(o, 'workers', availableParallelism(), 0, 64);
  const leaseMs = intOption(o, 'leaseMs', DEFAULT_LEASE_MS, 30);
  const maxLive = intOption(o, 'maxLive', 1024, 1);
  return {
    host, model, store, workers, leaseMs, maxLive,
    port: intOption(o, 'port', 0, 0, 65535),
    maxConcurrent: intOption(o, 'maxConcurrent', 256, 1),
    apiKey: o.apiKey ?? null,
    checkpointEvery: intOption(o, 'checkpointEvery', DEFAULT_CHECKPOINT_EVERY, 1),
    idleMs: intOption(o, 'idleMs', 5000, 1),
    pauseMs: intOption(o, 'pauseMs', 10_000, 0),
    resumeWaitMs: intOption(o, 'resumeWaitMs', leaseMs + 1000, 0),
    maxBodyBytes: intOption(o, 'maxBodyBytes', 1 << 20, 1),
    maxSnapshotBytes: intOption(o, 'maxSnapshotBytes', 64 << 20, 1),
    requestTimeoutMs: intOption(o, 'requestTimeoutMs', 30_000, 1),
    maxTokens: intOption(o, 'maxTokens', 16_384, 1),
    log: o.log ?? ((m: string) => console.error(m)),
  };
}

// ---------------------------------------------------------------------------------------------
// Request bodies and their validation

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new HttpError(413, 'too-large', `the request body is ${declared} bytes; the limit is ${limit}`));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(new HttpError(413, 'too-large', `the request body is over the limit of ${limit} bytes`));
        return;
      }
      parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', () => reject(new HttpError(400, 'aborted', 'the request body was cut short')));
  });
}

type Json = Record<string, unknown>;

async function readJson(req: IncomingMessage, limit: number, allowEmpty: boolean): Promise<Json> {
  const body = await readBody(req, limit);
  if (body.length === 0) {
    if (allowEmpty) return {};
    throw new HttpError(400, 'invalid', 'expected a JSON object body, got an empty body');
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    throw new HttpError(400, 'invalid-json', `the body is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'invalid', `expected a JSON object body, got ${describe(v)}`);
  return v as Json;
}

function onlyKeys(body: Json, keys: readonly string[], what: string): void {
  for (const k of Object.keys(body)) if (!keys.includes(k)) throw new HttpError(400, 'invalid', `${what}: unknown field ${JSON.stringify(k)}; expected ${keys.join(', ')}`);
}

function optNumber(body: Json, key: string, check: (x: number) => boolean, expect: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !check(v)) throw new HttpError(400, 'invalid', `${key} must be ${expect}, got ${describe(v)}`);
  return v;
}

function optString(body: Json, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, 'invalid', `${key} must be a string, got ${describe(v)}`);
  return v;
}

function stops(body: Json): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 16 || list.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 256)) {
    throw new HttpError(400, 'invalid', `stop must be a non-empty string or an array of at most 16 of them (each at most 256 characters), got ${describe(v)}`);
  }
  return list as string[];
}

const isInt = (x: number): boolean => Number.isSafeInteger(x);

function sampling(body: Json, seedKey = 'seed', topPKey = 'topP', topKKey = 'topK'): SamplingBody {
  const out: SamplingBody = {};
  const seed = optNumber(body, seedKey, (x) => isInt(x) && x >= 0 && x <= 0xffffffff, 'an integer in [0, 2^32)');
  const temperature = optNumber(body, 'temperature', (x) => Number.isFinite(x) && x >= 0 && x <= 100, 'a number in [0, 100]');
  const topK = optNumber(body, topKKey, (x) => isInt(x) && x >= 0 && x <= 256, 'an integer in [0, 256]');
  const topP = optNumber(body, topPKey, (x) => Number.isFinite(x) && x > 0 && x <= 1, 'a number in (0, 1]');
  if (seed !== undefined) out.seed = seed;
  if (temperature !== undefined) out.temperature = temperature;
  if (topK !== undefined) out.topK = topK;
  if (topP !== undefined) out.topP = topP;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Responses

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, e: ErrorBody): void {
  const headers: Record<string, string> = {};
  if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
  if (e.status === 401) headers['www-authenticate'] = 'Bearer';
  if (e.status === 413) headers.connection = 'close';
  sendJson(res, e.status, { code: e.code, message: e.message }, headers);
}

/** Write an event; false when the socket is full (the reader is slower than the generation). */
function sse(res: ServerResponse, text: string): boolean {
  if (res.destroyed || res.writableEnded) return true;
  return res.write(text);
}

/** FNV-1a of the id: which worker a session is pinned to. */
function pin(id: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

// ---------------------------------------------------------------------------------------------

export function createServer(options: ServeOptions = {}): ToeplitzServer {
  const o = checkServeOptions(options);
  const keyHash = o.apiKey === null ? null : createHash('sha256').update(o.apiKey).digest();
  const hostConfig: HostConfig = {
    model: o.model, store: o.store, maxLive: Math.max(1, Math.ceil(o.maxLive / Math.max(1, o.workers))), leaseMs: o.leaseMs,
    checkpointEvery: o.checkpointEvery, idleMs: o.idleMs, pauseMs: o.pauseMs, resumeWaitMs: o.resumeWaitMs, maxTokens: o.maxTokens,
  };
  let links: HostLink[] = [];
  let active = 0;
  let rejected = 0;
  let closing: Promise<void> | null = null;
  const statuses = new Map<number, number>();
  let roundRobin = 0;

  const linkFor = (id: string): HostLink => links[pin(id, links.length)]!;

  /** One request to the host of `id` (or any host), answered once. */
  function call(link: HostLink, op: Op, transfer?: ArrayBuffer[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      link.send(op, (reply) => {
        if (reply.kind === 'ok') resolve(reply.value);
        else if (reply.kind === 'error') reject(new HttpError(reply.error.status, reply.error.code, reply.error.message, reply.error.retryAfter));
      }, transfer);
    });
  }

  function admit(): void {
    if (active >= o.maxConcurrent) {
      rejected++;
      throw new HttpError(429, 'overloaded', `the server runs ${active} streams, its limit (--max-concurrent ${o.maxConcurrent}); retry later`, 1);
    }
  }

  /**
   * Run a stream op on `link`: wait for its start (an error before it is a JSON error response), then
   * write its events through `events`. A client that leaves cancels it (its generation pauses at once).
   */
  function stream(req: IncomingMessage, res: ServerResponse, link: HostLink, op: Op, events: { start(): void; token(t: { token: number; text: string; position: number }): boolean | void; done(u: Usage): void; error(e: ErrorBody): void }): Promise<void> {
    admit();
    active++;
    return new Promise((resolve) => {
      let ended = false;
      let held = false;
      const finish = (): void => {
        if (ended) return;
        ended = true;
        active--;
        resolve();
      };
      const rid = link.send(op, (reply: Reply) => {
        switch (reply.kind) {
          case 'start':
            events.start();
            return;
          case 'token':
            // backpressure: a full socket holds the generation until it drains (no unbounded queue in memory)
            if (events.token(reply) === false && !held) {
              held = true;
              link.send({ op: 'hold', target: rid, held: true }, null);
              res.once('drain', () => {
                held = false;
                if (!ended) link.send({ op: 'hold', target: rid, held: false }, null);
              });
            }
            return;
          case 'done':
            events.done(reply.usage);
            res.end();
            finish();
            return;
          case 'error':
            if (res.headersSent) {
              events.error(reply.error);
              res.end();
            } else sendError(res, reply.error);
            finish();
            return;
        }
      });
      res.on('close', () => {
        if (ended) return;
        link.forget(rid);
        link.send({ op: 'cancel', target: rid }, null);
        finish();
      });
      req.on('error', () => undefined);
    });
  }

  function sseHeaders(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
  }

  const sessionEvents = (res: ServerResponse) => ({
    start: () => sseHeaders(res),
    token: (t: { token: number; text: string; position: number }) => sse(res, `id: ${t.position}\ndata: ${JSON.stringify({ token: t.token, text: t.text, position: t.position })}\n\n`),
    done: (u: Usage) => sse(res, `event: done\ndata: ${JSON.stringify({ usage: u })}\n\n`),
    error: (e: ErrorBody) => sse(res, `event: error\ndata: ${JSON.stringify({ code: e.code, message: e.message })}\n\n`),
  });

  function authorized(req: IncomingMessage): boolean {
    if (keyHash === null) return true;
    const h = req.headers.authorization;
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
    return timingSafeEqual(createHash('sha256').update(h.slice(7)).digest(), keyHash);
  }

  function sessionId(raw: string): string {
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, 'invalid', 'the session id in the path is not valid percent-encoding');
    }
    if (!SESSION_ID.test(id)) throw new HttpError(400, 'invalid', `a session id is 1-128 characters of [A-Za-z0-9._-] not starting with '.', got ${JSON.stringify(id.slice(0, 140))}`);
    return id;
  }

  function position(text: string, what: string): number {
    if (!/^\d{1,15}$/.test(text.trim())) throw new HttpError(400, 'invalid', `${what} must be a token position (an integer >= 0), got ${JSON.stringify(text.slice(0, 40))}`);
    return Number(text.trim());
  }

  async function metrics(): Promise<string> {
    const stats = (await Promise.all(links.map((l, i) => call(l, { op: 'stats', list: i === 0 })))) as HostStats[];
    const snap = newHistogram();
    const write = newHistogram();
    let tokens = 0;
    let live = 0;
    let queued = 0;
    for (const s of stats) {
      tokens += s.tokens;
      live += s.live;
      queued += Math.max(0, s.running - 1);
      mergeHistograms(snap, s.checkpointSnapshot);
      mergeHistograms(write, s.checkpointWrite);
    }
    return new Exposition()
      .counter('toeplitz_serve_tokens_generated_total', 'Tokens generated (sessions and completions).', [[undefined, tokens]])
      .gauge('toeplitz_serve_sessions_live', 'Durable sessions open in memory (all workers).', live)
      .gauge('toeplitz_serve_sessions_stored', 'Sessions held in the store.', stats[0]?.stored ?? 0)
      .gauge('toeplitz_serve_streams_active', 'Streams being served (generations, resumes, completions).', active)
      .gauge('toeplitz_serve_queue_depth', 'Generations waiting for their turn on a worker (each worker runs one token at a time, round-robin).', queued)
      .counter('toeplitz_serve_rejected_total', 'Streams refused with 429 by admission control.', [[undefined, rejected]])
      .counter('toeplitz_serve_requests_total', 'Responses by status.', [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => [{ status: String(s) }, n]))
      .histogram('toeplitz_serve_checkpoint_seconds', 'Checkpoint latency: the snapshot on the token path, and the store write off it.', [[{ phase: 'snapshot' }, snap], [{ phase: 'write' }, write]])
      .text();
  }

  // -------------------------------------------------------------------------------------------
  // Routes

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new HttpError(400, 'invalid', 'the request target is not a valid path');
    }
    const path = url.pathname;
    const allow = (...methods: string[]): void => {
      if (!methods.includes(method)) {
        res.setHeader('allow', methods.join(', '));
        throw new HttpError(405, 'method-not-allowed', `${method} is not allowed on ${path}; allowed: ${methods.join(', ')}`);
      }
    };
    if (path === '/healthz') {
      allow('GET');
      return sendJson(res, 200, { ok: true, workers: links.length, streams: active });
    }
    if (!authorized(req)) throw new HttpError(401, 'unauthorized', 'this server needs Authorization: Bearer <api key>');
    if (path === '/metrics') {
      allow('GET');
      const text = await metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(text);
      return;
    }
    if (path === '/v1/completions') {
      allow('POST');
      return completions(req, res);
    }
    if (path === '/v1/sessions') {
      allow('POST');
      const body = await readJson(req, o.maxBodyBytes, true);
      onlyKeys(body, ['prompt', 'seed', 'temperature', 'topK', 'topP'], 'POST /v1/sessions');
      const prompt = optString(body, 'prompt') ?? null;
      const s = sampling(body);
      if (s.seed === undefined) s.seed = randomBytes(4).readUInt32LE(0);
      const id = randomBytes(16).toString('hex'); // 128 bits
      const value = await call(linkFor(id), { op: 'create', id, prompt, sampling: s });
      return sendJson(res, 201, value);
    }
    const m = /^\/v1\/sessions\/([^/]+)(\/generate|\/snapshot)?$/.exec(path);
    if (m === null) throw new HttpError(404, 'not-found', `no route ${method} ${path}`);
    const id = sessionId(m[1]!);
    const link = linkFor(id);
    if (m[2] === undefined) {
      allow('GET', 'DELETE');
      if (method === 'GET') return sendJson(res, 200, await call(link, { op: 'info', id }));
      await call(link, { op: 'delete', id });
      res.writeHead(204).end();
      return;
    }
    if (m[2] === '/snapshot') {
      allow('GET', 'PUT');
      if (method === 'GET') {
        const bytes = (await call(link, { op: 'snapshot', id })) as Uint8Array;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        res.end(bytes);
        return;
      }
      const body = await readBody(req, o.maxSnapshotBytes);
      const bytes = Uint8Array.from(body); // its own buffer, transferred to the host
      return sendJson(res, 200, await call(link, { op: 'import', id, bytes }, [bytes.buffer]));
    }
    allow('GET', 'POST');
    if (method === 'POST') {
      const body = await readJson(req, o.maxBodyBytes, false);
      onlyKeys(body, ['prompt', 'maxTokens', 'stop'], `POST /v1/sessions/${id}/generate`);
      const maxTokens = optNumber(body, 'maxTokens', (x) => isInt(x) && x >= 0 && x <= o.maxTokens, `an integer in [0, ${o.maxTokens}]`);
      if (maxTokens === undefined) throw new HttpError(400, 'invalid', 'maxTokens is required (an integer >= 0)');
      const prompt = optString(body, 'prompt') ?? '';
      return stream(req, res, link, { op: 'generate', id, prompt, maxTokens, stop: stops(body) }, sessionEvents(res));
    }
    const last = req.headers['last-event-id'];
    const q = url.searchParams.get('from');
    const from = typeof last === 'string' && last.length > 0 ? position(last, 'Last-Event-ID') + 1 : q !== null ? position(q, 'from') : 0;
    return stream(req, res, link, { op: 'resume', id, from }, sessionEvents(res));
  }

  /** OpenAI-compatible text completions: a fresh (not durable) session per request, on the least busy host. */
  async function completions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, o.maxBodyBytes, false);
    let prompt: unknown = body.prompt;
    if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
    if (typeof prompt !== 'string' || prompt.length === 0) throw new HttpError(400, 'invalid', `prompt must be a non-empty string (or an array of one), got ${describe(body.prompt)}`);
    const maxTokens = optNumber(body, 'max_tokens', (x) => isInt(x) && x >= 1 && x <= o.maxTokens, `an integer in [1, ${o.maxTokens}]`) ?? 16;
    optNumber(body, 'n', (x) => x === 1, '1 (one choice per request)');
    if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw new HttpError(400, 'invalid', `stream must be a boolean, got ${describe(body.stream)}`);
    const model = typeof body.model === 'string' ? body.model : 'toeplitz-lm';
    const s = sampling(body, 'seed', 'top_p', 'top_k');
    if (s.temperature === undefined) s.temperature = 1; // OpenAI's default
    const op: Op = { op: 'complete', prompt, maxTokens, stop: stops(body), sampling: s };
    const link = links[roundRobin++ % links.length]!;
    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const finish = (u: Usage): string => (u.finishReason === 'stop' ? 'stop' : 'length');
    const usage = (u: Usage) => ({ prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens });
    if (body.stream === true) {
      const chunk = (text: string, reason: string | null, u?: Usage): string =>
        `data: ${JSON.stringify({ id, object: 'text_completion', created, model, choices: [{ text, index: 0, logprobs: null, finish_reason: reason }], ...(u ? { usage: usage(u) } : {}) })}\n\n`;
      return stream(req, res, link, op, {
        start: () => sseHeaders(res),
        token: (t) => (t.text === '' ? true : sse(res, chunk(t.text, null))),
        done: (u) => sse(res, chunk('', finish(u), u) + 'data: [DONE]\n\n'),
        error: (e) => sse(res, `data: ${JSON.stringify({ error: { code: e.code, message: e.message } })}\n\n`),
      });
    }
    let text = '';
    return stream(req, res, link, op, {
      start: () => undefined,
      token: (t) => void (text += t.text),
      done: (u) => sendJson(res, 200, { id, object: 'text_completion', created, model, choices: [{ text, index: 0, logprobs: null, finish_reason: finish(u) }], usage: usage(u) }),
      error: () => undefined,
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('finish', () => statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1));
    try {
      if (closing !== null) throw new HttpError(503, 'shutdown', 'the server is shutting down', 1);
      await route(req, res);
    } catch (e) {
      const body = errorBody(e);
      if (body.status >= 500 && body.code === 'internal') o.log(`toeplitz-attention serve: ${(e as Error)?.stack ?? String(e)}`);
      if (!res.headersSent) sendError(res, body);
      else res.end();
    }
  }

  const http = createHttpServer(
    // Node checks these timeouts every connectionsCheckingInterval (30 s by default): check often enough to keep them
    { requestTimeout: o.requestTimeoutMs, headersTimeout: Math.min(o.requestTimeoutMs, 10_000), connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(o.requestTimeoutMs / 4))) }, (req, res) => void handle(req, res));
  http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const text = JSON.stringify({ code: status === 408 ? 'timeout' : 'bad-request', message: status === 408 ? 'the request did not arrive in time' : `malformed HTTP request (${err.code ?? 'parse error'})` });
    socket.end(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  });

  async function startHosts(): Promise<void> {
    if (o.workers === 0) {
      links = [await localHost(hostConfig)];
      return;
    }
    const respawn = (i: number) => (code: number): void => {
      o.log(`toeplitz-attention serve: worker ${i} exited (code ${code}); starting a new one`);
      void workerHost(hostConfig, respawn(i)).then((l) => {
        if (closing === null) links[i] = l;
        else void l.close();
      }, (e: unknown) => o.log(`toeplitz-attention serve: worker ${i} cannot start: ${(e as Error).message}`));
    };
    links = await Promise.all(Array.from({ length: o.workers }, (_, i) => workerHost(hostConfig, respawn(i))));
  }

  return {
    http,
    async listen() {
      await startHosts();
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(o.port, o.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
      const a = http.address();
      const port = typeof a === 'object' && a !== null ? a.port : o.port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;
      return { host: o.host, port, url: `http://${host}:${port}` };
    },
    close() {
      closing ??= (async () => {
        http.close();
        await Promise.all(links.map((l) => l.close().catch(() => undefined)));
        http.closeAllConnections();
      })();
      return closing;
    },
  };
}
