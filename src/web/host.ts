// The engine's host: loads the model, opens the store and runs durable sessions for the engine on the
// other end of an endpoint (a worker's global scope, Node's parentPort through the launcher's adapter,
// or one end of a MessageChannel in the same thread). One reply per request, in the order each finishes.
import { ConfigError, StateError, describe, ModelError } from '../core/errors.js';
import { loadModel, type Model } from '../model/model.js';
import type { GeneratedToken } from '../model/session.js';
import { openSession, type DurableSession } from '../sessions/session.js';
import { importSession } from '../sessions/import.js';
import type { SessionStore } from '../sessions/store.js';
import type { ModelSource, Reply, Request, SessionState } from './protocol.js';
import { openWebStore } from './store.js';
import { toWire } from './wire.js';

/** The host's side of the message channel. */
export interface HostEndpoint {
  post(message: Reply, transfer: Transferable[]): void;
  listen(handler: (message: Request) => void): void;
}

interface Live {
  session: DurableSession;
  /** the running generate() or resume() iteration, pulled one token per 'next' */
  it: AsyncGenerator<GeneratedToken, void, undefined> | null;
}

async function fetchModel(src: ModelSource): Promise<Uint8Array> {
  if ('bytes' in src) return src.bytes;
  let res: Response;
  try {
    res = await fetch(src.url);
  } catch (e) {
    throw new ModelError('io', `cannot fetch the model from ${src.url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new ModelError('io', `cannot fetch the model from ${src.url}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

export function serveEngine(endpoint: HostEndpoint): void {
  let model: Model | null = null;
  let store: SessionStore | null = null;
  const live = new Map<number, Live>();
  let nextHandle = 1;

  const state = (l: Live): SessionState => ({
    position: l.session.position,
    pending: l.session.pending(),
    sampling: l.session.sampling,
    stateBytes: l.session.stateBytes,
  });

  const ready = (): { model: Model; store: SessionStore } => {
    if (model === null || store === null) throw new StateError('the engine is not initialized (init must come first)');
    return { model, store };
  };

  const get = (handle: number): Live => {
    const l = live.get(handle);
    if (l === undefined) throw new StateError(`session handle ${handle} is not open in this engine (closed?)`);
    return l;
  };

  const opened = (s: DurableSession) => {
    const handle = nextHandle++;
    const l: Live = { session: s, it: null };
    live.set(handle, l);
    return { value: { handle, id: s.id }, state: state(l) };
  };

  async function run(r: Request): Promise<{ value: unknown; state?: SessionState; transfer?: Transferable[] }> {
    switch (r.op) {
      case 'init': {
        if (model !== null) throw new StateError('the engine is initialized already');
        const bytes = await fetchModel(r.model);
        const m = loadModel(bytes);
        void m.fingerprint; // computed once here, not by the first session's checkpoint
        store = await openWebStore(r.store);
        model = m;
        return { value: { backend: m.backend, config: m.config, store: store.url } };
      }
      case 'open': {
        const h = ready();
        return opened(await openSession(h.model, h.store, r.session, r.options));
      }
      case 'import': {
        const h = ready();
        return opened(await importSession(h.model, h.store, r.session, r.bytes, r.options));
      }
      case 'feed': {
        const l = get(r.handle);
        const logits = await l.session.feed(r.tokens, { lastOnly: r.lastOnly });
        return { value: logits, state: state(l), transfer: [logits.buffer as ArrayBuffer] };
      }
      case 'setOptions': {
        const l = get(r.handle);
        await l.session.setOptions(r.options);
        return { value: null, state: state(l) };
      }
      case 'generate':
      case 'resume': {
        const l = get(r.handle);
        if (l.it !== null) throw new StateError(`${r.op}() is not allowed while a generation is being read on session ${l.session.id}; finish or break out of it first`);
        l.it = r.op === 'generate'
          ? l.session.generate(r.prompt, { maxTokens: r.maxTokens as number, ...(r.stop === undefined ? {} : { stop: r.stop as string | string[] }) })
          : l.session.resume(r.from === undefined ? {} : { from: r.from });
        return { value: null, state: state(l) };
      }
      case 'next': {
        const l = get(r.handle);
        const it = l.it;
        if (it === null) throw new StateError(`no generation is running on session ${l.session.id}`);
        try {
          const n = await it.next();
          if (n.done) l.it = null;
          return { value: n.done ? null : n.value, state: state(l) };
        } catch (e) {
          l.it = null;
          throw e;
        }
      }
      case 'return': {
        const l = get(r.handle);
        const it = l.it;
        l.it = null;
        if (it !== null) await it.return(undefined);
        return { value: null, state: state(l) };
      }
      case 'snapshot': {
        const l = get(r.handle);
        const bytes = l.session.snapshot();
        return { value: bytes, state: state(l), transfer: [bytes.buffer as ArrayBuffer] };
      }
      case 'checkpoint': {
        const l = get(r.handle);
        await l.session.checkpoint();
        return { value: null, state: state(l) };
      }
      case 'close': {
        const l = live.get(r.handle);
        if (l === undefined) return { value: null };
        live.delete(r.handle);
        if (l.it !== null) await l.it.return(undefined).catch(() => undefined);
        await l.session.close();
        return { value: null, state: state(l) };
      }
      case 'list':
        return { value: await ready().store.list() };
      case 'delete': {
        const h = ready();
        for (const l of live.values()) if (l.session.id === r.session) throw new StateError(`session ${r.session} is open in this engine; close it before deleting it`);
        await h.store.delete(r.session);
        return { value: null };
      }
      case 'dispose': {
        const errors: unknown[] = [];
        for (const [handle, l] of live) {
          live.delete(handle);
          try {
            if (l.it !== null) await l.it.return(undefined);
            await l.session.close();
          } catch (e) {
            errors.push(e);
          }
        }
        await store?.close();
        store = null;
        if (errors.length > 0) throw errors[0];
        return { value: null };
      }
      default:
        throw new ConfigError(`unknown engine request ${describe((r as { op: unknown }).op)}`);
    }
  }

  endpoint.listen((r) => {
    run(r).then(
      ({ value, state, transfer }) => endpoint.post({ id: r.id, ok: true, value, ...(state === undefined ? {} : { state }) }, transfer ?? []),
      (e: unknown) => {
        const h = 'handle' in r ? live.get(r.handle) : undefined;
        endpoint.post({ id: r.id, ok: false, error: toWire(e), ...(h === undefined ? {} : { state: state(h) }) }, []);
      },
    );
  });
}
