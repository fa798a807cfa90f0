import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openStore } from '../../src/sessions/index.js';
import { storeContract, storeTtlContract } from './storeContract.js';

const root = mkdtempSync(join(tmpdir(), 'tzs-file-'));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

storeContract('file:', async () => openStore(`file:${join(root, `s${n++}`)}`), { reopen: async (first) => openStore(first.url) });
storeTtlContract('file:', async (ttlMs) => openStore(`file:${join(root, `t${n++}`)}`, { ttlMs }));
