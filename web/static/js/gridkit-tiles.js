/* gridkit vector tiles on a Leaflet map (Leaflet.VectorGrid, vendored): base cells of the edition
   in force drawn from /tiles/ at every zoom from the layer's first one, so a 100,000-cell city
   draws; one work-cells overlay per department with its grid in force, coloured so that
   neighbouring work cells never share a colour (the tile's `colour` is a palette index).
   No inline script: the page's map script calls window.gridkitTiles.attach(map, options). */
(function () {
  "use strict";

  function script() {
    return document.querySelector("script[data-gridkit-tiles]");
  }

  // The palette of gridkit.colouring (the planner's map has the same): a tile's `colour` indexes it.
  var PALETTE = JSON.parse(script().getAttribute("data-palette"));

  function tileLayer(url, layerName, style, options) {
    var styles = {};
    styles[layerName] = style;
    return L.vectorGrid.protobuf(url, L.extend({
      rendererFactory: L.canvas.tile,   // canvas: thousands of cells per tile stay fast
      vectorTileLayerStyles: styles,
      interactive: false,
      maxNativeZoom: 22
    }, options));
  }

  function withQuery(url, params) {
    var query = Object.keys(params).filter(function (k) { return params[k] !== null && params[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
    return query ? url + (url.indexOf("?") < 0 ? "?" : "&") + query : url;
  }

  // Work cell codes are drawn from this zoom on (a view holds a few dozen work cells).
  var LABEL_ZOOM = 15;

  function labelsFor(map, layer, url) {
    var labels = L.layerGroup();
    var controller = null;
    function refresh() {
      if (controller) { controller.abort(); }
      labels.clearLayers();
      if (!map.hasLayer(layer) || map.getZoom() < LABEL_ZOOM) { return; }
      controller = new AbortController();
      var b = map.getBounds();
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); });
      fetch(withQuery(url, { bbox: bbox.join(",") }), { signal: controller.signal, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { labels: [] }; })
        .then(function (data) {
          data.labels.forEach(function (item) {
            var text = document.createElement("span");
            text.textContent = item.name || item.code;   // never innerHTML: names are data
            text.title = item.code;
            L.marker([item.lat, item.lon], {
              icon: L.divIcon({ className: "gk-cell-label gk-work-label", html: text, iconSize: null }),
              interactive: false, keyboard: false
            }).addTo(labels);
          });
        }).catch(function () { /* aborted by a newer view */ });
    }
    layer.on("add", function () { labels.addTo(map); refresh(); });
    layer.on("remove", function () { labels.clearLayers(); map.removeLayer(labels); });
    map.on("moveend", refresh);
    return labels;
  }

  function workCellStyle(properties) {
    var colour = PALETTE[(properties.colour || 0) % PALETTE.length];
    return { weight: 1.5, color: colour, opacity: 1, fill: true, fillColor: colour, fillOpacity: 0.35 };
  }

  /* Make the tile layers for `map`. options: {pane, workPane, edition}. Returns {baseCells (not yet
     added), minZoom, workCells {dept code: layer}, adminOutlines(level, style, pane) (a layer),
     ready (a Promise of /tiles/layers.json), addOverlays(control): adds one work-cells overlay per
     department to an L.control.layers}. */
  function attach(map, options) {
    var node = script();
    var layersUrl = node.getAttribute("data-gridkit-tiles");
    var baseTemplate = node.getAttribute("data-base-cells");
    var minZoom = parseInt(node.getAttribute("data-base-cells-min-zoom"), 10);
    var baseCells = tileLayer(withQuery(baseTemplate, { edition: options.edition }), "base-cells", {
      weight: 1, color: "#e07b00", opacity: 0.95, fill: true, fillColor: "#ffa600", fillOpacity: 0.12
    }, { pane: options.pane, minZoom: minZoom });
    // Work cells under the base cells' outlines, above the base map.
    var workPane = options.workPane || "gk-work-cells";
    if (!map.getPane(workPane)) { map.createPane(workPane).style.zIndex = 408; }
    var result = { baseCells: baseCells, minZoom: minZoom, workCells: {} };
    // Admin outlines of one level from the admin-units tiles, drawn from the base cells' first zoom:
    // the server encodes them like the cells, so they run exactly along cell edges.
    var adminTemplate = node.getAttribute("data-admin-units");
    result.adminOutlines = function (level, style, pane) {
      return tileLayer(adminTemplate, "admin-units", function (properties) {
        return properties.level === level ? L.extend({ fill: false }, style) : [];
      }, { pane: pane, minZoom: minZoom });
    };
    result.ready = fetch(layersUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : { layers: [], departments: [] }; })
      .then(function (info) {
        var workLayer = info.layers.filter(function (l) { return l.name === "work-cells"; })[0];
        info.departments.forEach(function (dept) {
          var layer = tileLayer(withQuery(workLayer.url, { dept: dept.code }), "work-cells", workCellStyle,
                                { pane: workPane, minZoom: workLayer.minZoom });
          layer.gridkitLabel = dept.label;
          layer.gridkitLabels = labelsFor(map, layer, withQuery(info.labels, { dept: dept.code }));
          result.workCells[dept.code] = layer;
        });
        return info;
      });
    result.addOverlays = function (control) {
      return result.ready.then(function () {
        Object.keys(result.workCells).forEach(function (code) {
          control.addOverlay(result.workCells[code], result.workCells[code].gridkitLabel);
        });
      });
    };
    return result;
  }

  window.gridkitTiles = { attach: attach, palette: PALETTE };
}());
