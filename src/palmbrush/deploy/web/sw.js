// The site offline: on install, every file site.json lists but the WebGPU build ("lazy", cached
// when first used) goes into a cache named after site.json's hash, so a new build replaces the
// old cache. Responses get COOP/COEP headers, so the page is cross-origin isolated (WASM
// threads) even on a static host that cannot set headers (from its second load on).
"use strict";

const PREFIX = "palmbrush-";

async function siteCache() {
  const text = await (await fetch("./site.json", { cache: "no-store" })).text();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const name = PREFIX + Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return { name, site: JSON.parse(text), text };
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const { name, site, text } = await siteCache();
    const lazy = new Set(site.lazy || []);
    const cache = await caches.open(name);
    const files = ["./", ...Object.keys(site.files).filter((path) => !lazy.has(path)).map((p) => `./${p}`)];
    await cache.addAll(files);
    await cache.put("./site.json", new Response(text, { headers: { "Content-Type": "application/json" } }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keys = (await caches.keys()).filter((k) => k.startsWith(PREFIX));
    const newest = await currentCache(keys);
    await Promise.all(keys.filter((k) => k !== newest).map((k) => caches.delete(k)));
    await self.clients.claim();
  })());
});

async function currentCache(keys) {
  // the cache holding the site.json this worker installed (the newest one it wrote)
  for (const key of keys.reverse()) {
    if (await (await caches.open(key)).match("./site.json")) return key;
  }
  return keys[0];
}

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
  if (request.method !== "GET" || new URL(request.url).origin !== location.origin) return;
  event.respondWith((async () => {
    const cached = await caches.match(request, { ignoreSearch: true });
    if (cached) return isolated(cached);
    const response = await fetch(request);
    if (response.ok) {  // the WebGPU build, on first use: kept for offline use too
      const keys = (await caches.keys()).filter((k) => k.startsWith(PREFIX));
      if (keys.length) await (await caches.open(await currentCache(keys))).put(request, response.clone());
    }
    return isolated(response);
  })());
});
