// Starting a worker_threads module from the compiled package or from the TypeScript sources (Node only).
// Used by the attention pool, the server's session hosts and the web engine's Node launcher.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The module `name` next to `base` (an import.meta.url): name.js in the compiled package, name.ts in the sources. */
export function workerModuleUrl(name: string, base: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

/**
 * For a .ts worker module: an expression that registers tsx inside the worker, then imports `url`. Node 20 does
 * not carry tsx over to a worker through execArgv (`--import tsx` in a worker leaves .ts unknown, and vitest's
 * transform is no Node flag at all); tsx's register() from `tsx/esm/api`, called inside the worker, works for
 * both. null for a .js module, or where tsx is not installed (the module is then started as is, for runtimes
 * that strip types themselves).
 */
export function tsxImport(url: URL): string | null {
  if (!url.pathname.endsWith('.ts')) return null;
  try {
    const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
    const api = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default;
    const apiUrl = pathToFileURL(join(dirname(manifest), api)).href;
    return `import(${JSON.stringify(apiUrl)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  } catch {
    return null;
  }
}
