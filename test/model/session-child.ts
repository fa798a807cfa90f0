// Child process of the session test: load a model file, restore a session snapshot file, generate N more
// tokens, print {"tokens": [...], "logits": hex of the last logits, "snapshot": hex} as JSON on stdout.
// usage: node --import tsx test/model/session-child.ts <model.safetensors> <session.bin> <N>
import { readFileSync } from 'node:fs';
import { loadModelFile } from '../../src/model/file.js';

const [modelPath, sessionPath, count] = process.argv.slice(2);
if (modelPath === undefined || sessionPath === undefined || count === undefined) throw new Error('usage: session-child <model> <session> <N>');
const model = loadModelFile(modelPath);
const session = model.restore(readFileSync(sessionPath));
const tokens: number[] = [];
for await (const g of session.generate('', { maxTokens: Number(count) })) tokens.push(g.token);
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
process.stdout.write(JSON.stringify({ tokens, logits: hex(new Uint8Array(session.lastLogits()!.buffer)), snapshot: hex(session.snapshot()) }) + '\n');
