// (e) The page script: bundled with esbuild (platform browser, minified) from the installed package and run
// in headless Chromium. Sets window.__tza to the results the check compares against Node's.
import { attention, referenceAttention, Decoder, ConfigError, initWasm, wasmSupported } from 'toeplitz-attention';
import { config, q, k, v, constantV, maxAbsDiff } from './inputs.mjs';

const result = {};
try {
  const z = attention(config, q(), k(), v());
  result.z = Array.from(z.data);
  result.vsReference = maxAbsDiff(z.data, referenceAttention(config, q(), k(), v()).data);
  const zc = attention(config, q(), k(), constantV(0.75));
  result.constantValues = maxAbsDiff(zc.data, new Float64Array(zc.data.length).fill(0.75));
  const dec = new Decoder(config);
  dec.chunk(q().hi(2, 9, 4), k().hi(2, 9, 4), v().hi(2, 9, 3));
  const restored = Decoder.restore(dec.snapshot());
  result.restoredPosition = restored.position;
  const a = dec.chunk(q().lo(0, 9, 0), k().lo(0, 9, 0), v().lo(0, 9, 0));
  const b = restored.chunk(q().lo(0, 9, 0), k().lo(0, 9, 0), v().lo(0, 9, 0));
  result.restoreDiff = maxAbsDiff(a.data, b.data);
  try {
    attention({ ...config, heads: 0 }, q(), k(), v());
  } catch (e) {
    result.errorName = e.name;
    result.errorIsConfigError = e instanceof ConfigError;
    result.errorClassName = e.constructor.name; // the minified class name, for the record
    result.errorMessage = String(e.message).slice(0, 120);
  }
  result.userAgent = navigator.userAgent;
  // the WASM SIMD backend: compiled asynchronously in a browser, then used like in Node
  result.wasmBeforeInit = wasmSupported();
  initWasm().then((ready) => {
    result.wasmReady = ready;
    if (ready) {
      const zw = attention(config, q(), k(), v(), { backend: 'wasm' });
      const zj = attention(config, q(), k(), v(), { backend: 'js' });
      result.wasmVsJs = maxAbsDiff(zw.data, zj.data);
      const dw = new Decoder(config, { backend: 'wasm' });
      const s1 = dw.chunk(q(), k(), v());
      result.wasmDecoderBackend = dw.backend;
      result.wasmDecoderVsJs = maxAbsDiff(s1.data, zj.data);
    }
    window.__tza = result;
  }, (e) => {
    result.failure = `initWasm: ${e && e.message}`;
    window.__tza = result;
  });
} catch (e) {
  result.failure = `${e && e.name}: ${e && e.message}\n${e && e.stack}`;
  window.__tza = result;
}
