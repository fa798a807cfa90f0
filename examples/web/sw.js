// The demo's service worker: caches the page, its bundle, the engine's worker and the model file on
// install, then answers from the cache first, so the page works offline after its first load.
// `npm run web` fills in FILES (the built file names) and VERSION.
const VERSION = '__VERSION__';
const FILES = __FILES__;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k)))).then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  const url = new URL(event.request.url);
  // the page itself, whatever its query (?session=...)
  const key = url.origin === location.origin && (url.pathname.endsWith('/') || url.pathname.endsWith('/index.html')) ? new URL('./', location.href).href : event.request;
  event.respondWith(caches.match(key).then((hit) => hit ?? fetch(event.request)));
});
