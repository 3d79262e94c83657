/* gridkit city map: draws admin outlines and base cells, fetched as GeoJSON from /api/ (with vector
   tiles on the page: cells and, from the cells' first zoom, outlines from /tiles/), on the
   Leaflet map that folium created. Base cells are refetched for the view after every move. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("gridkit-map-config").textContent);
  var map = window[cfg.mapName];
  var S = cfg.strings;
  var state = { busy: false, loads: 0, count: 0, bbox: null, message: "" };

  var fmt = window.gkText.fmt;

  var el = window.gkText.el;

  function getJSON(url, signal) {
    return fetch(url, { signal: signal, headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var error = new Error(body.message || response.statusText);
            error.status = response.status;
            throw error;
          }
          return body;
        });
      });
  }

  function withQuery(url, params) {
    var query = Object.keys(params).filter(function (k) { return params[k] !== null && params[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
    return query ? url + "?" + query : url;
  }

  function pane(name, zIndex) {
    map.createPane(name).style.zIndex = zIndex;
    return name;
  }

  var OUTLINE_STYLES = {
    community: { color: "#1d4f91", weight: 1.5, opacity: 0.9, fill: false },
    street: { color: "#7a3e9d", weight: 2, dashArray: "6 4", fill: false },
    district: { color: "#a61b1b", weight: 3, fill: false }
  };

  // Panes, bottom to top: community hover areas, base cells, then outlines that take no events,
  // so that a base cell, where one is drawn, gets the hover and community lines stay visible.
  var layers = {
    communityHover: L.geoJSON(null, {
      pane: pane("gk-community-hover", 405),
      style: { stroke: false, fill: true, fillOpacity: 0 },
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(function () {
          var p = feature.properties;
          var tip = el("div");
          tip.appendChild(el("strong", null, p.name));
          tip.appendChild(el("br"));
          tip.appendChild(el("span", "gk-tip-label", p.code));
          return tip;
        }, { sticky: true, className: "gk-tooltip" });
      }
    }),
    cells: L.geoJSON(null, {
      pane: pane("gk-cells", 410),
      className: "gk-base-cell",
      style: cellStyle,
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(cellTooltip, { sticky: true, className: "gk-tooltip" });
        layer.on("add", function () {
          var path = layer.getElement();
          if (path) { path.setAttribute("data-code", feature.properties.code); }
        });
        layer.on("mouseover", function () { layer.setStyle({ weight: 3, color: "#b35900", fillOpacity: 0.35 }); });
        layer.on("mouseout", function () { layer.setStyle(cellStyle()); });
      }
    }),
    community: L.geoJSON(null, {
      pane: pane("gk-communities", 412), interactive: false,
      style: OUTLINE_STYLES.community
    }),
    street: L.geoJSON(null, {
      pane: pane("gk-streets", 415), interactive: false,
      style: OUTLINE_STYLES.street
    }),
    district: L.geoJSON(null, {
      pane: pane("gk-districts", 420), interactive: false,
      style: OUTLINE_STYLES.district
    }),
    labels: L.layerGroup()
  };

  function cellStyle() {
    return { color: "#e07b00", weight: 1, opacity: 0.95, fillColor: "#ffa600", fillOpacity: 0.12 };
  }

  function cellTooltip(layer) {
    var p = layer.feature.properties;
    var tip = el("div");
    tip.appendChild(el("strong", "gk-cell-code", p.code));
    tip.appendChild(el("br"));
    tip.appendChild(el("span", "gk-tip-label", S["map.tooltip.community"]));
    tip.appendChild(el("span", "gk-cell-community", p.community_name));
    tip.appendChild(el("br"));
    tip.appendChild(el("span", "gk-tip-label", S["map.tooltip.area"]));
    tip.appendChild(el("span", null, Math.round(p.area_m2).toLocaleString()));
    return tip;
  }

  var communities = L.layerGroup([layers.community, layers.communityHover]);
  [communities, layers.cells, layers.street, layers.district, layers.labels].forEach(function (layer) {
    layer.addTo(map);
  });

  // Legend and status in one box, bottom left.
  var statusNode = el("div", "gk-status");
  var info = L.control({ position: "bottomleft" });
  info.onAdd = function () {
    var box = el("div", "gk-map-info");
    box.appendChild(el("div", "gk-legend-title", S["map.legend.title"]));
    [["district", "map.layer.districts"], ["street", "map.layer.streets"],
     ["community", "map.layer.communities"], ["cell", "map.layer.base_cells"]].forEach(function (item) {
      var row = el("div");
      row.appendChild(el("span", "gk-swatch " + item[0]));
      row.appendChild(el("span", null, S[item[1]]));
      box.appendChild(row);
    });
    box.appendChild(statusNode);
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  info.addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  function setStatus(text, isError) {
    state.message = text;
    statusNode.textContent = text;
    statusNode.className = "gk-status" + (isError ? " error" : "");
  }

  var overlays = {};
  var basemap = cfg.tileLayerName ? window[cfg.tileLayerName] : null;
  if (basemap) { overlays[S["map.layer.osm"]] = basemap; }
  // With vector tiles (gridkit-tiles.js), cells are drawn from tiles at every zoom and the
  // GeoJSON cells (tooltips, labels) are fetched only from the label zoom on.
  var tiles = window.gridkitTiles ? window.gridkitTiles.attach(map, { pane: "gk-cells", edition: cfg.edition }) : null;
  // Admin outlines: the simplified GeoJSON at overview zooms; from the zoom where cells are drawn
  // from tiles, the admin-units tiles instead, which the server encodes exactly like the cells so
  // that outlines lie on cell edges (the GeoJSON is simplified by tens of metres).
  var outlines = { district: layers.district, street: layers.street, community: communities };
  function swapOutlines() {
    var tiled = tiles && map.getZoom() >= tiles.minZoom;
    ["district", "street", "community"].forEach(function (level) {
      var holder = level === "community" ? communities : outlines[level];
      if (tiled) { holder.removeLayer(layers[level]); } else if (!holder.hasLayer(layers[level])) { holder.addLayer(layers[level]); }
    });
  }
  if (tiles) {
    ["district", "street"].forEach(function (level) {
      var tiled = tiles.adminOutlines(level, OUTLINE_STYLES[level], layers[level].options.pane);
      map.removeLayer(layers[level]);
      outlines[level] = L.layerGroup([layers[level], tiled]).addTo(map);
    });
    communities.addLayer(tiles.adminOutlines("community", OUTLINE_STYLES.community, layers.community.options.pane));
    map.on("zoomend", swapOutlines);
    swapOutlines();
  }
  overlays[S["map.layer.districts"]] = outlines.district;
  overlays[S["map.layer.streets"]] = outlines.street;
  overlays[S["map.layer.communities"]] = outlines.community;
  var cellZoom = tiles ? cfg.labelZoom : cfg.minCellZoom;
  if (tiles) { tiles.baseCells.addTo(map); }
  overlays[S["map.layer.base_cells"]] = tiles ? L.layerGroup([tiles.baseCells, layers.cells]).addTo(map) : layers.cells;
  var control = L.control.layers(null, overlays, { collapsed: true, position: "topright" }).addTo(map);
  if (tiles) { tiles.addOverlays(control); }

  // Admin outlines: one request per level, loaded once.
  ["district", "street", "community"].forEach(function (level) {
    getJSON(withQuery(cfg.api.adminUnits, { level: level })).then(function (data) {
      layers[level].addData(data);
      if (level === "community") { layers.communityHover.addData(data); }
    }).catch(function (error) {
      setStatus(fmt(S["map.status.error"], { message: error.message }), true);
    });
  });

  function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

  function updateLabels() {
    layers.labels.clearLayers();
    var zoom = map.getZoom();
    if (zoom < cfg.labelZoom) { return; }
    var full = zoom >= cfg.fullLabelZoom;
    layers.cells.eachLayer(function (layer) {
      var p = layer.feature.properties;
      var text = full ? p.code : p.code.slice(p.community_code.length);
      L.marker(layer.getBounds().getCenter(), {
        icon: L.divIcon({ className: "gk-cell-label", html: el("span", null, text), iconSize: null }),
        interactive: false, keyboard: false
      }).addTo(layers.labels);
    });
  }

  var inFlight = null;

  function refreshCells() {
    if (inFlight) { inFlight.abort(); }
    inFlight = null;
    var zoom = map.getZoom();
    if (zoom < cellZoom) {
      layers.cells.clearLayers();
      layers.labels.clearLayers();
      state.count = 0;
      state.bbox = null;
      state.busy = false;
      state.loads += 1;
      setStatus(cfg.hasData ? (tiles && zoom >= tiles.minZoom ? "" : fmt(S["map.status.zoom_in"], { zoom: tiles ? tiles.minZoom : cfg.minCellZoom }))
                            : S["map.status.no_data"]);
      return;
    }
    var b = map.getBounds();
    var bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
                clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)]
      .map(function (v) { return v.toFixed(6); }).join(",");
    var controller = new AbortController();
    inFlight = controller;
    state.busy = true;
    state.bbox = bbox;
    setStatus(S["map.status.loading"]);
    getJSON(withQuery(cfg.api.baseCells, { bbox: bbox, edition: cfg.edition }), controller.signal).then(function (data) {
      if (controller !== inFlight) { return; }
      layers.cells.clearLayers();
      layers.cells.addData(data);
      updateLabels();
      state.count = data.features.length;
      setStatus(cfg.hasData || state.count ? fmt(S["map.status.count"], { count: state.count.toLocaleString() })
                                           : S["map.status.no_data"]);
    }).catch(function (error) {
      if (error.name === "AbortError" || controller !== inFlight) { return; }
      layers.cells.clearLayers();
      layers.labels.clearLayers();
      state.count = 0;
      if (error.status === 400) {
        setStatus(S["map.status.too_many"], true);
      } else {
        setStatus(fmt(S["map.status.error"], { message: error.message }), true);
      }
    }).then(function () {
      if (controller !== inFlight) { return; }
      inFlight = null;
      state.busy = false;
      state.loads += 1;
    });
  }

  map.on("moveend", refreshCells);
  refreshCells();

  // For tests and the browser console.
  window.gridkit = { map: map, layers: layers, state: state, refreshCells: refreshCells, tiles: tiles,
                     pane: pane, el: el, fmt: fmt, getJSON: getJSON, withQuery: withQuery, control: control };
}());
