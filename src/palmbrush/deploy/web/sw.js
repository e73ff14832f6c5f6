// The site offline. On install, every file site.json lists but the WebGPU build ("lazy": cached
// when first used) goes into this build's cache, fetched past the HTTP cache so two builds
// never mix. BUILD is written in by `palmbrush deploy`, so each build's worker differs and the
// browser installs it; activating it drops this site's older caches. Responses get COOP/COEP
// headers, so the page is cross-origin isolated (WASM threads) even on a static host that
// cannot set headers (from its second load on).
"use strict";

const BUILD = "__BUILD__";
const SCOPE = new URL(self.registration.scope).pathname;
const PREFIX = `palmbrush ${SCOPE} `;  // one site per scope: other sites' caches are left alone
const CACHE = PREFIX + BUILD;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const site = await (await fetch("./site.json", { cache: "reload" })).json();
    if (site.build !== BUILD) throw new Error("site.json is from another build");
    const lazy = new Set(site.lazy || []);
    const files = ["./", "./site.json",
      ...Object.keys(site.files).filter((path) => !lazy.has(path)).map((path) => `./${path}`)];
    const cache = await caches.open(CACHE);
    try {
      await cache.addAll(files.map((file) => new Request(file, { cache: "reload" })));
    } catch (err) {
      await caches.delete(CACHE);  // no half-filled cache left behind
      throw err;
    }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const old = (await caches.keys()).filter((key) => key.startsWith(PREFIX) && key !== CACHE);
    await Promise.all(old.map((key) => caches.delete(key)));
    await self.clients.claim();
  })());
});

function isolated(response) {
  if (!response || response.type === "opaque") return response;
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  headers.set("Cross-Origin-Resource-Policy", "same-origin");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return isolated(cached);
    const response = await fetch(request);
    const path = url.pathname.startsWith(SCOPE) ? url.pathname.slice(SCOPE.length) : null;
    if (response.ok && path && path.startsWith("ort/")) {  // the WebGPU build, on first use
      event.waitUntil(cache.put(request, response.clone()).catch(() => {}));
    }
    return isolated(response);
  })());
});
