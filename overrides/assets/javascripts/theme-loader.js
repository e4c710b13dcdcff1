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
 * main.html renders this script with the bundle's address in data-bundle.
 */
(function () {
  "use strict";

  var bundle = document.currentScript.dataset.bundle;
  var wakers = ["pointerdown", "touchstart", "keydown", "focusin", "wheel", "scroll", "mousemove"];

  function run() {
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
    };
    document.body.appendChild(script);
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
