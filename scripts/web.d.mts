// Types of scripts/web.mjs (the demo's build and static server), for the tests that reuse them.
import type { Metafile } from 'esbuild';
import type { Server } from 'node:http';

export function buildDemo(out?: string, options?: { minify?: boolean }): Promise<{ out: string; files: string[]; metafile: Metafile }>;
export function serveDir(dir: string, options?: { host?: string; port?: number }): Promise<{ server: Server; url: string }>;
