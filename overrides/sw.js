/*
 * The offline copy of the pages a person in distress needs: the home and the
 * "Ask for a listening ear" page of every language, with the stylesheets,
 * images and scripts they load, so that the crisis numbers open without a
 * connection after one visit. overrides/hooks/offline.py writes the list
 * (KEPT, addresses relative to this file) and the release's VERSION (a hash of
 * those files) into the copy of this file the build publishes.
 *
 * What it never does: store anything else (no form's contents, no answer of
 * /forms/, nothing but the files listed), or touch a request other than a GET
 * of a listed file. A listed file is still asked of the network first, so a
 * reader online gets the site as it is now; the copy answers only when the
 * network cannot. A new release has a new VERSION: the next online visit
 * installs it, and its activation deletes every older copy.
 */
"use strict";

const VERSION = "development";
const KEPT = [];
const PREFIX = "cch-offline-";
const CACHE = PREFIX + VERSION;
const PATHS = new Set(KEPT.map((address) => new URL(address, self.location).pathname));

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(KEPT.map((address) => new Request(address, { cache: "no-cache" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith(PREFIX) && name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

/* A folder's address is its index page, as the server answers it. */
function kept(url) {
  const path = url.pathname.endsWith("/") ? url.pathname + "index.html" : url.pathname;
  return url.origin === self.location.origin && PATHS.has(path) ? path : null;
}

self.addEventListener("fetch", (event) => {
  const path = event.request.method === "GET" ? kept(new URL(event.request.url)) : null;
  if (!path) {
    return; // the browser's own handling, as without this worker
  }
  event.respondWith(
    fetch(event.request).catch(() =>
      caches.open(CACHE).then((cache) => cache.match(path)).then((response) => response || Response.error()),
    ),
  );
});
