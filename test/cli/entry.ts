// Runs the CLI from the TypeScript sources (through tsx), so the CLI tests need no build.
// The installed, compiled CLI (bin/ -> dist/) is exercised by scripts/consumer-check.mjs.
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
