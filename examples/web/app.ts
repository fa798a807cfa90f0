// The demo page: a durable session in a worker, streamed into the page. The session id lives in the URL
// (?session=ID) and localStorage, the text shown so far in localStorage: a reload reopens the session and
// resumes an interrupted generation from the first token not shown. Built by `npm run web`.
import { createEngine, type WebSession } from 'toeplitz-attention/web';
// a bundler copies the model next to the page and gives its URL (esbuild: --loader:.safetensors=file)
import modelUrl from 'toeplitz-attention/models/toeplitz-lm.safetensors';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const out = $('out');
const status = $('status');
const buttons = { generate: $<HTMLButtonElement>('generate'), stop: $<HTMLButtonElement>('stop'), cont: $<HTMLButtonElement>('continue'), exp: $<HTMLButtonElement>('export') };
const params = new URLSearchParams(location.search);
const seed = Number(params.get('seed') ?? 1);
/** for tests: what the page generated, token by token */
const log: { token: number; position: number }[] = [];
(globalThis as { __demo?: unknown }).__demo = { log, done: false, error: null as string | null };
const demo = (globalThis as unknown as { __demo: { log: typeof log; done: boolean; error: string | null; ready?: boolean } }).__demo;

const newId = (): string => `s-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let id = params.get('session') ?? localStorage.getItem('tza.session') ?? newId();
const keep = (): void => {
  localStorage.setItem('tza.session', id);
  const url = new URL(location.href);
  url.searchParams.set('session', id);
  history.replaceState(null, '', url);
};

// the transcript shown: text and the position of its last token
interface Transcript { prompt: string[]; text: string; position: number }
const load = (): Transcript => JSON.parse(localStorage.getItem(`tza.text.${id}`) ?? 'null') ?? { prompt: [], text: '', position: 0 };
let shown: Transcript = load();
let saveTimer = 0;
const save = (now = false): void => {
  clearTimeout(saveTimer);
  const write = () => localStorage.setItem(`tza.text.${id}`, JSON.stringify(shown));
  if (now) write();
  else saveTimer = window.setTimeout(write, 200);
};
addEventListener('pagehide', () => save(true));

function render(): void {
  out.textContent = '';
  out.append(shown.text);
}

function append(piece: string, prompt = false): void {
  if (prompt) {
    const s = document.createElement('span');
    s.className = 'prompt';
    s.textContent = piece;
    out.append(s);
  } else out.append(piece);
  shown.text += piece;
}

if ('serviceWorker' in navigator && location.protocol.startsWith('http')) navigator.serviceWorker.register('./sw.js').catch(() => undefined);

const engine = await createEngine({ model: modelUrl, ...(params.get('store') ? { store: params.get('store')! } : {}) });
let session: WebSession = await open();
let running: AbortController | null = null;

async function open(): Promise<WebSession> {
  keep();
  shown = load();
  render();
  // wait: a reload may find the old page's lease not yet released; a short lease bounds that wait
  return engine.openSession(id, { seed, temperature: 0.8, wait: true, leaseMs: 4000 });
}

function busy(on: boolean): void {
  buttons.generate.disabled = on;
  buttons.cont.disabled = on || session.position === 0;
  buttons.exp.disabled = on;
  buttons.stop.disabled = !on;
}

async function stream(tokens: AsyncIterable<{ token: number; text: string; position: number }>, ac: AbortController): Promise<void> {
  running = ac;
  busy(true);
  status.textContent = 'generating…';
  try {
    for await (const t of tokens) {
      append(t.text);
      shown.position = t.position;
      log.push({ token: t.token, position: t.position });
      save();
    }
    status.textContent = 'done';
  } catch (e) {
    status.textContent = ac.signal.aborted ? 'stopped' : `error: ${(e as Error).message}`;
    if (!ac.signal.aborted) demo.error = (e as Error).message;
  } finally {
    running = null;
    save(true);
    busy(false);
    refresh();
    demo.done = true;
  }
}

function generate(prompt: string): Promise<void> {
  const max = Math.max(1, Number(($('max') as HTMLInputElement).value) || 400);
  demo.done = false;
  if (prompt.length > 0) {
    append(prompt, true);
    shown.position = session.position + new TextEncoder().encode(prompt).length;
    save(true);
  }
  const ac = new AbortController();
  return stream(session.generate(prompt, { maxTokens: max, signal: ac.signal }), ac);
}

buttons.generate.onclick = () => void generate(($('prompt') as HTMLTextAreaElement).value);
buttons.cont.onclick = () => void generate('');
buttons.stop.onclick = () => running?.abort();
buttons.exp.onclick = async () => {
  const bytes = await session.snapshot();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  a.download = `${id}.session`;
  a.click();
  URL.revokeObjectURL(a.href);
};
($('import') as HTMLInputElement).onchange = async (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  try {
    const next = newId();
    const s = await engine.importSession(next, new Uint8Array(await file.arrayBuffer()));
    await session.close();
    session = s;
    id = next;
    keep();
    shown = { prompt: [], text: `[session file ${file.name}, position ${s.position}]\n`, position: s.position };
    render();
    save(true);
    busy(false);
    status.textContent = `imported ${file.name}`;
  } catch (err) {
    status.textContent = `import refused: ${(err as Error).message}`;
  }
};
$('new').onclick = async () => {
  running?.abort();
  await session.close();
  id = newId();
  session = await open();
  busy(false);
};

/** The stats panel: every 250 ms while the page lives, and once more when a generation ends (so it shows the end). */
function refresh(): void {
  const s = engine.stats();
  $('tps').textContent = s.tokensPerSecond > 0 ? s.tokensPerSecond.toFixed(0) : '-';
  $('pos').textContent = session.position.toLocaleString('en');
  $('bytes').textContent = session.stateBytes.toLocaleString('en');
  $('backend').textContent = `${s.backend}${s.worker ? ', worker' : ''}`;
}
setInterval(refresh, 250);

busy(false);
demo.ready = true;
status.textContent = `session ${id} (${engine.store}), position ${session.position}`;
// a reload in the middle of a generation: resume it from the first token not shown
if (session.pending() !== null || shown.position < session.position) {
  const p = session.pending();
  const from = Math.max(shown.position + 1, 1);
  try {
    const ac = new AbortController();
    if (p !== null || from <= session.position) await stream(session.resume({ from, signal: ac.signal }), ac);
  } catch (e) {
    status.textContent = `could not resume from ${from}: ${(e as Error).message}`;
  }
}
if (params.has('autostart') && session.position === 0) void generate(($('prompt') as HTMLTextAreaElement).value);
