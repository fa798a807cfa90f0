// Child process of the snapshot test: restore a decoder from a snapshot file, feed it the seeded calls,
// print {"outputs": [hex...], "snapshot": hex of its next snapshot} as JSON on stdout.
// usage: node --import tsx test/codec/restore-child.ts <snapshot> <seed> <heads> <d> <dv> <size,size,...>
import { loadSnapshot, encodeSnapshot } from '../../src/codec/index.js';
import { makeCalls, runCalls, toHex } from './streams.js';

const [path, seed, heads, d, dv, sizes] = process.argv.slice(2);
if (path === undefined || sizes === undefined) throw new Error('usage: restore-child <snapshot> <seed> <heads> <d> <dv> <sizes>');
const dec = loadSnapshot(path);
const calls = makeCalls(Number(seed), Number(heads), Number(d), Number(dv), sizes.split(',').map(Number));
const outputs = toHex(runCalls(dec, calls));
process.stdout.write(JSON.stringify({ outputs, snapshot: Buffer.from(encodeSnapshot(dec)).toString('hex') }) + '\n');
