/* Leaflet's own control texts (zoom buttons, layer list, attribution prefix) in the page's language. */
(function () {
  "use strict";

  var node = document.querySelector('script[type="application/json"][data-map-config]');
  if (!node) { return; }
  var cfg = JSON.parse(node.textContent);
  var map = window[cfg.mapName];
  var S = cfg.leafletStrings || {};
  if (map && map.attributionControl) {
    // The brand stays; its English tooltip goes.
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  }

  function label(selector, text) {
    document.querySelectorAll(selector).forEach(function (e) {
      e.setAttribute("title", text);
      e.setAttribute("aria-label", text);
    });
  }

  function apply() {
    label(".leaflet-control-zoom-in", S["map.control.zoom_in"]);
    label(".leaflet-control-zoom-out", S["map.control.zoom_out"]);
    label(".leaflet-control-layers-toggle", S["map.control.layers"]);
  }

  apply();
  // Controls added later by a page's script get the same texts.
  new MutationObserver(apply).observe(document.body, { childList: true, subtree: true });
}());
