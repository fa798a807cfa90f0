// Child process of the model file test: try each read in turn, print what happened as JSON lines. Run
// in a child so a read that blocks (a FIFO) or never ends (/dev/zero) is killed by the parent's timeout
// instead of hanging the test runner.
// usage: node --import tsx test/model/read-child.ts <model.safetensors> <what:path>...   (what: model | session | text)
// (text: the CLI's eval --text)
import { ModelError } from '../../src/model/index.js';
import { loadModelFile, loadSession } from '../../src/model/file.js';
import { evalCommand } from '../../src/cli/model.js';

const [modelPath, ...reads] = process.argv.slice(2);
if (modelPath === undefined) throw new Error('usage: read-child <model> <what:path>...');
const model = loadModelFile(modelPath, { backend: 'js' });
for (const r of reads) {
  const at = r.indexOf(':');
  const what = r.slice(0, at);
  const path = r.slice(at + 1);
  const t0 = performance.now();
  let result: string;
  try {
    if (what === 'model') loadModelFile(path);
    else if (what === 'session') loadSession(path, model);
    else evalCommand({ model: modelPath, text: path, chunk: 64 }, { stdout: () => {}, stderr: () => {}, progress: false });
    result = 'read';
  } catch (e) {
    result = e instanceof ModelError ? `ModelError ${e.message}` : `${(e as Error).name}: ${(e as Error).message}`;
  }
  process.stdout.write(JSON.stringify({ what, path, result, ms: performance.now() - t0 }) + '\n');
}
