// Errors across the worker boundary: the host sends name, message, stack and the typed fields; the
// engine rebuilds an instance of the same class (instanceof works, `name`, `code` and `message` equal).
import { ConfigError, ResourceError, ShapeError, SnapshotError, StateError, ToeplitzAttentionError, type ResourceKind, type SnapshotErrorCode, ModelError, type ModelErrorCode, SessionError, type SessionErrorCode } from '../core/errors.js';
import type { WireError } from './protocol.js';

const FIELDS = ['code', 'session', 'record', 'resource', 'requestedBytes', 'limitBytes'] as const;

export function toWire(e: unknown): WireError {
  if (e instanceof Error) {
    const fields: WireError['fields'] = {};
    for (const k of FIELDS) {
      const v = (e as unknown as Record<string, unknown>)[k];
      if (typeof v === 'string' || typeof v === 'number' || v === null) fields[k] = v;
    }
    return { name: e.name, message: e.message, fields, ...(e.stack === undefined ? {} : { stack: e.stack }) };
  }
  return { name: 'Error', message: String(e), fields: {} };
}

export function fromWire(w: WireError): Error {
  const f = w.fields;
  let err: Error;
  switch (w.name) {
    case 'ConfigError': err = new ConfigError(w.message); break;
    case 'ShapeError': err = new ShapeError(w.message); break;
    case 'StateError': err = new StateError(w.message); break;
    case 'SnapshotError': err = new SnapshotError(f.code as SnapshotErrorCode, ''); break;
    case 'ResourceError': err = new ResourceError(f.resource as ResourceKind, f.requestedBytes as number, (f.limitBytes ?? null) as number | null, w.message); break;
    case 'ModelError': err = new ModelError(f.code as ModelErrorCode, ''); break;
    case 'SessionError': err = new SessionError(f.code as SessionErrorCode, '', f.session as string | undefined, f.record as string | undefined); break;
    case 'ToeplitzAttentionError': err = new ToeplitzAttentionError(w.message); break;
    default:
      err = new Error(w.message);
      err.name = w.name;
  }
  // the constructors prefix `code: `; the message is the worker's, exactly
  err.message = w.message;
  if (w.stack !== undefined) err.stack = `${err.name}: ${err.message}\n    (in the engine's worker)\n${w.stack.split('\n').slice(1).join('\n')}`;
  return err;
}
