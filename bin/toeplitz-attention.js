#!/usr/bin/env node
// The installed CLI: runs the compiled JavaScript in dist/ (no TypeScript loader at run time).
// In a clone of the repository, `npm run build` produces dist/ first.
let main;
try {
  ({ main } = await import('../dist/cli/main.js'));
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    console.error('toeplitz-attention: dist/cli/main.js is missing: run `npm run build` first');
    process.exit(1);
  }
  throw e;
}
process.exitCode = await main(process.argv.slice(2));
