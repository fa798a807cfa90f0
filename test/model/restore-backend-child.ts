// Child process of the backend test, run with node --jitless (no WebAssembly): load a model, try to restore
// a WASM-made session exactly, then with { backend: 'model' }; print what happened as JSON.
// usage: node --jitless --import tsx test/model/restore-backend-child.ts <model.safetensors> <session.bin>
import { ModelError } from '../../src/model/index.js';
import { loadModelFile, loadSession } from '../../src/model/file.js';

const [modelPath, sessionPath] = process.argv.slice(2);
if (modelPath === undefined || sessionPath === undefined) throw new Error('usage: restore-backend-child <model> <session>');
const model = loadModelFile(modelPath);
let exact = 'restored';
try {
  loadSession(sessionPath, model);
} catch (e) {
  exact = e instanceof ModelError ? `ModelError ${e.code}: ${e.message}` : `${(e as Error).name}: ${(e as Error).message}`;
}
const moved = loadSession(sessionPath, model, { backend: 'model' });
process.stdout.write(JSON.stringify({ backend: model.backend, exact, model: moved.position }) + '\n');
