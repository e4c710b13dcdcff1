/*
 * Runs Material's bundle at the reader's first interaction instead of at load.
 *
 * The bundle gives search, the table of contents that follows the scroll
 * and the header's page title. On a mid-range phone it holds the main
 * thread for over half a second just after the text first appears, and a
 * reader who only reads needs none of it: until then the page is exactly the
 * page without JavaScript (class "no-js"), which stays fully usable. The first
 * touch, key, scroll or mouse move runs it, as if the page had just loaded;
 * arriving from a search result runs it at once.
 * A key that opens search in Material (/, s, f) and woke the scripts is
 * played again once they have mounted, so the first / opens search too.
 * The same first interaction registers the service worker (data-worker:
 * sw.js) that keeps the home and support pages for offline use: its few
 * downloads then never weigh on the page's first load either.
 * main.html renders this script with the bundle's address in data-bundle.
 */
(function () {
  "use strict";

  var bundle = document.currentScript.dataset.bundle;
  var worker = document.currentScript.dataset.worker;
  var wakers = ["pointerdown", "touchstart", "keydown", "focusin", "wheel", "scroll", "mousemove"];
  var searchKeys = ["/", "s", "f"];

  /* The search key that woke the scripts, if one did outside a text field. */
  function searchKey(event) {
    if (event.type !== "keydown" || event.ctrlKey || event.metaKey || event.altKey) {
      return null;
    }
    var typing = event.target instanceof Element && event.target.closest("input, textarea, select, [contenteditable]");
    return !typing && searchKeys.indexOf(event.key) >= 0 ? event.key : null;
  }

  function run(event) {
    var key = event ? searchKey(event) : null;
    wakers.forEach(function (name) {
      window.removeEventListener(name, run, true);
    });
    var script = document.createElement("script");
    script.src = bundle;
    script.onload = function () {
      /* Material mounts its components on DOMContentLoaded. Replay it when
         the real one is past; during parsing the real one is still to come. */
      if (document.readyState !== "loading") {
        document.dispatchEvent(new Event("DOMContentLoaded"));
      }
      if (key) {
        window.dispatchEvent(new KeyboardEvent("keydown", { key: key, bubbles: true }));
      }
    };
    document.body.appendChild(script);
    if (worker && "serviceWorker" in navigator) {
      navigator.serviceWorker.register(worker).catch(function () {
        // No offline copy (private mode, storage refused): the site works as before.
      });
    }
  }

  /* A reader who followed a search result has interacted already, and
     expects the words they searched for highlighted (?h=...) at once. */
  if (new URLSearchParams(location.search).has("h")) {
    run();
    return;
  }
  wakers.forEach(function (name) {
    window.addEventListener(name, run, { capture: true, passive: true });
  });
})();
