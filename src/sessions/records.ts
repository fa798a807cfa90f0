// The bytes a durable session keeps in its store: journal records (inputs only) and checkpoints. Every
// record is framed and checksummed here, so a store stays a dumb keeper of bytes; decoding checks
// everything (magic, lengths, CRC-32, the session id and sequence number inside) and names the session
// and the record in its SessionError('damaged').
//
// Journal record (little-endian):
//   0   4  magic "TZJ1"
//   4   4  CRC-32 (zlib's) of bytes [8, end)
//   8   4  H: length of the JSON header
//   12  H  JSON header { id, seq, kind, ... } (see JournalInput)
//   12+H   payload: the record's tokens (feed tokens, generate prompt), one byte each
// Checkpoint:
//   0   4  magic "TZC1"
//   4   4  CRC-32 of bytes [8, 12 + H + G): header and generation tokens (the model session snapshot
//          that follows carries its own CRC-32 over its payload, checked by model.restore)
//   8   4  H: length of the JSON header
//   12  H  JSON header { id, through, position, utf8, gen, arithmetic? } (see CheckpointHeader)
//   12+H G  the current generation's token ids so far (G = gen.count), one byte each
//   ...    the model session snapshot (session.snapshot() bytes) to the end
import { crc32 } from '../codec/index.js';
import { SessionError } from '../core/errors.js';

const JOURNAL_MAGIC = 0x314a5a54; // "TZJ1" read as a little-endian uint32
const CHECKPOINT_MAGIC = 0x31435a54; // "TZC1"
/** headers are small; anything larger is damage, refused before decoding */
const MAX_HEADER = 1 << 20;

/** The inputs a journal records (the only things that must be durable before they are acknowledged). */
export type JournalInput =
  | { kind: 'create'; fingerprint: string; seed: number; temperature: number; topK: number; topP: number; validUtf8: boolean }
  | { kind: 'feed'; tokens: Uint8Array }
  | { kind: 'options'; temperature: number; topK: number; topP: number }
  | { kind: 'generate'; prompt: Uint8Array; maxTokens: number; stop: string[] }
  /** the client ended generation `gen` (its journal seq) after `count` tokens (break, abort) */
  | { kind: 'end'; gen: number; count: number };

/** A generation as a checkpoint keeps it. */
export interface GenerationHeader {
  /** journal seq of its generate record */
  seq: number;
  /** position before its first generated token (after its prompt) */
  start: number;
  maxTokens: number;
  stop: string[];
  /** pending UTF-8 bytes before its first generated token (texts of old tokens are derived again) */
  utf8Start: number[];
  /** tokens generated so far (their ids follow the header) */
  count: number;
  /** it ended (its limit, a stop string, or an end record) */
  done: boolean;
}

export interface CheckpointHeader {
  id: string;
  /** the last journal seq whose input the snapshot includes */
  through: number;
  /** the session's position */
  position: number;
  /** the model session's pending UTF-8 bytes (an unfinished character of the output so far) */
  utf8: number[];
  /** the latest generation, ongoing or ended (null before the first) */
  gen: GenerationHeader | null;
  /** the JS arithmetic it was made with (arithmeticFingerprint()); absent in older checkpoints */
  arithmetic?: string;
}

export interface Checkpoint {
  header: CheckpointHeader;
  /** [gen.count] the generation's token ids */
  tokens: Uint8Array;
  /** model session snapshot bytes */
  snapshot: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function frame(magic: number, header: object, parts: Uint8Array[], crcParts: number): Uint8Array {
  const h = encoder.encode(JSON.stringify(header));
  const total = 12 + h.length + parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, true);
  view.setUint32(8, h.length, true);
  out.set(h, 12);
  let at = 12 + h.length;
  let crcEnd = at;
  parts.forEach((p, i) => {
    out.set(p, at);
    at += p.length;
    if (i < crcParts) crcEnd = at;
  });
  view.setUint32(4, crc32(out.subarray(8, crcEnd)), true);
  return out;
}

export function encodeJournal(id: string, seq: number, input: JournalInput): Uint8Array {
  switch (input.kind) {
    case 'feed':
      return frame(JOURNAL_MAGIC, { id, seq, kind: 'feed' }, [input.tokens], 1);
    case 'generate':
      return frame(JOURNAL_MAGIC, { id, seq, kind: 'generate', maxTokens: input.maxTokens, stop: input.stop }, [input.prompt], 1);
    default:
      return frame(JOURNAL_MAGIC, { id, seq, ...input }, [], 0);
  }
}

export function encodeCheckpoint(header: CheckpointHeader, tokens: Uint8Array, snapshot: Uint8Array): Uint8Array {
  return frame(CHECKPOINT_MAGIC, header, [tokens, snapshot], 1);
}

/** Checks shared by both kinds: framing, CRC-32 over [8, crcEnd(H)), the JSON header. */
function unframe(bytes: Uint8Array, magic: number, what: string, id: string, record: string): { header: Record<string, unknown>; body: Uint8Array; view: DataView } {
  const bad = (m: string): never => {
    throw new SessionError('damaged', `session ${id}: ${record}: ${m}`, id, record);
  };
  if (bytes.length < 12) bad(`expected a ${what} of at least 12 bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== magic) bad(`not a ${what} (magic ${view.getUint32(0, true).toString(16)}, expected ${magic.toString(16)})`);
  const H = view.getUint32(8, true);
  if (H > MAX_HEADER || 12 + H > bytes.length) bad(`its header length ${H} runs past the ${bytes.length} bytes held (truncated?)`);
  let header: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(decoder.decode(bytes.subarray(12, 12 + H)));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    header = parsed as Record<string, unknown>;
  } catch (e) {
    return bad(`its header is not valid JSON (${(e as Error).message}); the record is corrupted`);
  }
  return { header, body: bytes.subarray(12 + H), view };
}

function checkCrc(bytes: Uint8Array, view: DataView, end: number, id: string, record: string): void {
  const want = view.getUint32(4, true);
  const got = crc32(bytes.subarray(8, end));
  if (want !== got) throw new SessionError('damaged', `session ${id}: ${record}: CRC-32 mismatch (stored ${want.toString(16)}, computed ${got.toString(16)}): the record is corrupted or truncated`, id, record);
}

const isInt = (x: unknown, min = 0): x is number => typeof x === 'number' && Number.isInteger(x) && x >= min && x <= Number.MAX_SAFE_INTEGER;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isStops = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string' && s.length > 0);

/** Decode journal record `seq` of session `id`: every field checked; damage names the record. */
export function decodeJournal(bytes: Uint8Array, id: string, seq: number): JournalInput {
  const record = `journal record ${seq}`;
  const bad = (m: string): never => {
    throw new SessionError('damaged', `session ${id}: ${record}: ${m}`, id, record);
  };
  const { header: h, body, view } = unframe(bytes, JOURNAL_MAGIC, 'journal record', id, record);
  checkCrc(bytes, view, bytes.length, id, record);
  if (h.id !== id) bad(`it belongs to session ${JSON.stringify(h.id)}`);
  if (h.seq !== seq) bad(`it says it is record ${JSON.stringify(h.seq)}`);
  const tokens = body.slice();
  switch (h.kind) {
    case 'create':
      // validUtf8: absent in records written before it was a session option (they sampled with the default, true)
      if (typeof h.fingerprint !== 'string' || !isNum(h.seed) || !isNum(h.temperature) || !isInt(h.topK) || !isNum(h.topP) || (h.validUtf8 !== undefined && typeof h.validUtf8 !== 'boolean') || body.length !== 0) bad('malformed create record');
      return { kind: 'create', fingerprint: h.fingerprint as string, seed: h.seed as number, temperature: h.temperature as number, topK: h.topK as number, topP: h.topP as number, validUtf8: h.validUtf8 !== false };
    case 'feed':
      return { kind: 'feed', tokens };
    case 'options':
      if (!isNum(h.temperature) || !isInt(h.topK) || !isNum(h.topP) || body.length !== 0) bad('malformed options record');
      return { kind: 'options', temperature: h.temperature as number, topK: h.topK as number, topP: h.topP as number };
    case 'generate':
      if (!isInt(h.maxTokens) || !isStops(h.stop)) bad('malformed generate record (maxTokens, stop)');
      return { kind: 'generate', prompt: tokens, maxTokens: h.maxTokens as number, stop: h.stop as string[] };
    case 'end':
      if (!isInt(h.gen, 1) || !isInt(h.count) || body.length !== 0) bad('malformed end record');
      return { kind: 'end', gen: h.gen as number, count: h.count as number };
    default:
      return bad(`unknown record kind ${JSON.stringify(h.kind)}`);
  }
}

/** Decode the checkpoint of session `id` (the snapshot inside is checked when the model restores it). */
export function decodeCheckpoint(bytes: Uint8Array, id: string, through: number): Checkpoint {
  const record = 'checkpoint';
  const bad = (m: string): never => {
    throw new SessionError('damaged', `session ${id}: ${record}: ${m}`, id, record);
  };
  const { header: h, body, view } = unframe(bytes, CHECKPOINT_MAGIC, 'checkpoint', id, record);
  const g = h.gen as Record<string, unknown> | null;
  const count = g !== null && typeof g === 'object' && isInt(g.count) ? g.count : 0;
  if (count > body.length) bad(`its ${count} generation tokens run past the ${body.length} bytes held (truncated?)`);
  checkCrc(bytes, view, bytes.length - body.length + count, id, record);
  if (h.id !== id) bad(`it belongs to session ${JSON.stringify(h.id)}`);
  if (h.through !== through) bad(`it says it includes the journal through record ${JSON.stringify(h.through)}, the store says ${through}`);
  if (!isInt(h.position)) bad(`position must be an integer >= 0, got ${JSON.stringify(h.position)}`);
  let gen: GenerationHeader | null = null;
  if (g !== null) {
    if (typeof g !== 'object' || !isInt(g.seq, 1) || !isInt(g.start) || !isInt(g.maxTokens) || !isStops(g.stop) || !Array.isArray(g.utf8Start) || g.utf8Start.length > 3 || !g.utf8Start.every((b) => isInt(b) && (b as number) < 256) || typeof g.done !== 'boolean') bad('malformed generation header');
    const gg = g as unknown as GenerationHeader;
    if (gg.count > gg.maxTokens || gg.start + gg.count !== h.position) bad(`generation of ${gg.count} tokens (limit ${gg.maxTokens}) from position ${gg.start} does not end at the checkpoint's position ${h.position as number}`);
    gen = { seq: gg.seq, start: gg.start, maxTokens: gg.maxTokens, stop: gg.stop, utf8Start: gg.utf8Start, count: gg.count, done: gg.done };
  }
  const utf8 = h.utf8;
  if (!Array.isArray(utf8) || utf8.length > 3 || !utf8.every((b) => isInt(b) && (b as number) < 256)) bad(`utf8 must be up to 3 byte values, got ${JSON.stringify(utf8)}`);
  if (h.arithmetic !== undefined && (typeof h.arithmetic !== 'string' || !/^[0-9a-f]{16}$/.test(h.arithmetic))) bad(`arithmetic must be 16 hex digits, got ${JSON.stringify(h.arithmetic)}`);
  const header: CheckpointHeader = { id, through, position: h.position as number, utf8: utf8 as number[], gen };
  if (h.arithmetic !== undefined) header.arithmetic = h.arithmetic as string;
  if (body.length === count) bad('no session snapshot after the generation tokens (truncated)');
  return { header, tokens: body.slice(0, count), snapshot: body.subarray(count) };
}
