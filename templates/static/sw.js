// decompte's service worker: without network, the declaration form and
// what it needs (its script, its styles) come from the phone's copy, kept
// by offline.js and here. Everything else goes to the network as usual.
"use strict";
var PAGE_CACHE = "decompte-formulaire-v1";
var ASSETS_CACHE = "decompte-fichiers-v1";
var ASSETS = [
  "/app/offline.js",
  "/app/style.css",
  "/app/dsfr/dsfr.min.css",
  // The icons of the boxes that list what waits for the network and warn
  // before a logout.
  "/app/dsfr/icons/system/fr--info-fill.svg",
  "/app/dsfr/icons/system/fr--warning-fill.svg",
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(ASSETS_CACHE).then(function (cache) {
      return cache.addAll(ASSETS);
    }).then(function () {
      return self.skipWaiting();
    })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (ASSETS.indexOf(url.pathname) >= 0) {
    // The network first, so a new version is taken; the copy without network.
    event.respondWith(
      fetch(request).then(function (response) {
        var copy = response.clone();
        caches.open(ASSETS_CACHE).then(function (cache) {
          cache.put(request, copy);
        });
        return response;
      }).catch(function () {
        return caches.match(request);
      })
    );
    return;
  }
  if (request.mode === "navigate" && url.pathname === "/saisie") {
    event.respondWith(
      fetch(request).catch(function () {
        return caches.open(PAGE_CACHE).then(function (cache) {
          return cache.match(request).then(function (page) {
            return page || cache.match("/saisie");
          });
        }).then(function (page) {
          return page || Response.error();
        });
      })
    );
  }
});
