// toeplitz-attention/serve: the streaming generation server over durable sessions (DESIGN section 11).
// Node only (node:http, worker_threads).
export { createServer, SHIPPED_MODEL, type ServeOptions, type ToeplitzServer } from './server.js';
export { HttpError, type ErrorBody } from './errors.js';
export type { Usage } from './protocol.js';
