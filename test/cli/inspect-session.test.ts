// `inspect` reads session files too (generate --save): position, model fingerprint, sampler options, pending
// UTF-8 bytes, sizes; checked against --model (default: the shipped model) as restore checks them.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, randomWeights } from '../../src/model/index.js';
import { loadModelFile, saveSession } from '../../src/model/file.js';
import { crc32 } from '../../src/codec/index.js';
import { SESSION_HEADER_BYTES, SESSION_FORMAT_VERSION, decodeSession } from '../../src/model/snapshot.js';
import { tinyConfig } from '../model/tiny.js';
import { cli } from './runCli.js';

const dir = mkdtempSync(join(tmpdir(), 'tza-inspect-session-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cfg = tinyConfig();
const modelPath = join(dir, 'tiny.safetensors');
writeFileSync(modelPath, encodeModel(cfg, randomWeights(cfg, 3)));
const otherPath = join(dir, 'other.safetensors');
writeFileSync(otherPath, encodeModel(cfg, randomWeights(cfg, 4)));


describe('inspect <session file>', () => {
  it('prints position, fingerprint, sampler options, pending bytes and sizes; refuses damage and another model', async () => {
    const model = loadModelFile(modelPath);
    const s = model.session({ seed: 5, temperature: 0.7, topK: 9, topP: 0.9 });
    for await (const _ of s.generate('Ahoy', { maxTokens: 12 }));
    const path = join(dir, 'a.session');
    saveSession(path, s);
    const ok = await cli(['inspect', path, '--model', modelPath]);
    expect(ok.status, ok.stderr).toBe(0);
    const info = JSON.parse(ok.stdout) as Record<string, unknown>;
    const hex = Array.from(model.fingerprint, (x) => x.toString(16).padStart(2, '0')).join('');
    expect(info).toMatchObject({
      kind: 'toeplitz-lm session',
      formatVersion: SESSION_FORMAT_VERSION,
      bytes: readFileSync(path).length,
      position: 16,
      model: { fingerprint: hex, checkedAgainst: modelPath, matches: true },
      sampler: { seed: 5, temperature: 0.7, topK: 9, topP: 0.9, validUtf8: true, draws: 24 },
      lastLogits: 256,
      checksum: { valid: true },
    });
    expect((info.layers as unknown[]).length).toBe(cfg.layers);
    expect(info.pendingUtf8).toEqual(Array.from(decodeSession(readFileSync(path), 256, cfg.layers).pending)); // (mid-character: the next test)

    // another model: the fields are printed, then a one-line refusal, exit 1
    const other = await cli(['inspect', path, '--model', otherPath]);
    expect(other.status).toBe(1);
    expect(JSON.parse(other.stdout)).toMatchObject({ model: { matches: false } });
    expect(other.stderr).toMatch(/^toeplitz-attention: session .*a\.session is refused: wrong-model: session .* belongs to another model .*; give its model with --model <file>\n$/);

    // a flipped payload byte: the checksum
    const flipped = readFileSync(path);
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0xff;
    writeFileSync(join(dir, 'flipped.session'), flipped);
    const bad = await cli(['inspect', join(dir, 'flipped.session'), '--model', modelPath]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^toeplitz-attention: session .*flipped\.session is refused: snapshot: checksum mismatch/);

    // a crafted position with a correct checksum: what restore refuses, inspect refuses
    const crafted = readFileSync(path);
    new DataView(crafted.buffer, crafted.byteOffset).setFloat64(SESSION_HEADER_BYTES + 32, 99, true);
    new DataView(crafted.buffer, crafted.byteOffset).setUint32(16, crc32(crafted.subarray(SESSION_HEADER_BYTES)), true);
    writeFileSync(join(dir, 'crafted.session'), crafted);
    const refused = await cli(['inspect', join(dir, 'crafted.session'), '--model', modelPath]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/is refused: .*position/);
  });

  it('shows the pending bytes of a session saved inside a character', async () => {
    const model = loadModelFile(modelPath);
    const s = model.session({ seed: 1 });
    await s.generate([0x61, 0xe2], { maxTokens: 0 }).next(); // a prompt ending inside a 3-byte character
    const path = join(dir, 'pending.session');
    saveSession(path, s);
    const r = await cli(['inspect', path, '--model', modelPath]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ position: 2, pendingUtf8: [0xe2] });
  });
});
