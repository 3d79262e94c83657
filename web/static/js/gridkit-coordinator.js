/* gridkit coordinator workspace: my work cells in a list; choosing one fetches /api/work-cells/<code>
   and draws its outline, base cells and buildings, and fills in its counts and its people. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("gridkit-coordinator-config").textContent);
  var map = window[cfg.mapName];
  var S = cfg.strings;
  var state = { loads: 0, busy: false, cell: null, error: null };
  var COUNTS = ["base_cells", "buildings", "residents", "households", "legal_entities"];

  var fmt = window.gkText.fmt;

  var el = window.gkText.el;

  var layers = {
    base: L.geoJSON(null, { style: { color: "#667085", weight: 1, fillOpacity: 0.05 },
      onEachFeature: function (f, layer) {
        // A function returning a node: Leaflet would parse a string as HTML, and names are data.
        layer.bindTooltip(function () { return el("span", null, f.properties.code + " " + (f.properties.community_name || "")); });
      } }),
    outline: L.geoJSON(null, { style: { color: "#1570ef", weight: 3, fill: false }, interactive: false }),
    buildings: L.geoJSON(null, {
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 4, color: "#b42318", weight: 1, fillOpacity: 0.8 }); },
      onEachFeature: function (f, layer) {
        layer.bindTooltip(function () { return el("span", null, f.properties.code + (f.properties.address ? " " + f.properties.address : "")); });
      } })
  };
  layers.base.addTo(map); layers.outline.addTo(map); layers.buildings.addTo(map);
  var overlays = {};
  overlays[S["coordinator.layer.cell"]] = layers.outline;
  overlays[S["coordinator.layer.base_cells"]] = layers.base;
  overlays[S["coordinator.layer.buildings"]] = layers.buildings;
  // Collapsed: on a phone the layer list opens on tap and leaves the map free.
  L.control.layers(null, overlays, { collapsed: true }).addTo(map);

  // Legend, bottom left: what the outline, the thin cells and the dots are (the same styles as above).
  var legend = L.control({ position: "bottomleft" });
  legend.onAdd = function () {
    var box = el("div", "gk-map-info gk-coordinator-legend");
    box.appendChild(el("div", "gk-legend-title", S["map.legend.title"]));
    [["work-cell", "coordinator.layer.cell"], ["coord-base", "coordinator.layer.base_cells"],
     ["building", "coordinator.layer.buildings"]].forEach(function (item) {
      var row = el("div");
      row.appendChild(el("span", "gk-swatch " + item[0]));
      row.appendChild(el("span", null, S[item[1]]));
      box.appendChild(row);
    });
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  legend.addTo(map);

  function table(rows, columns) {
    var wrap = el("div");
    if (!rows.length) { wrap.appendChild(el("p", "note", S["coordinator.none"])); return wrap; }
    var t = el("table", "people");
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", null, S[c[1]])); });
    t.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    rows.forEach(function (r) {
      var tr = el("tr");
      columns.forEach(function (c) { tr.appendChild(el("td", null, c[2] ? c[2](r) : r[c[0]])); });
      body.appendChild(tr);
    });
    t.appendChild(body);
    wrap.appendChild(t);
    return wrap;
  }

  function population(r) {
    return S["coordinator.population." + r.population_type] || r.population_type;
  }

  function render(data) {
    var box = document.getElementById("gk-cell");
    box.hidden = false;
    document.getElementById("gk-cell-title").textContent = (data.name || data.code) + " · " + data.dept_name;
    var counts = document.getElementById("gk-cell-counts");
    counts.textContent = "";
    COUNTS.forEach(function (key) {
      var d = el("div", "count");
      d.appendChild(el("dt", null, S["coordinator.counts." + key]));
      var dd = el("dd", null, String(data.counts[key]));
      dd.setAttribute("data-count", key);
      d.appendChild(dd);
      counts.appendChild(d);
    });
    var residents = document.getElementById("gk-residents");
    residents.textContent = "";
    residents.appendChild(table(data.residents || [], [
      ["name", "coordinator.col.name"], ["id_number", "coordinator.col.id_number"], ["phone", "coordinator.col.phone"],
      ["household", "coordinator.col.household"], ["address", "coordinator.col.address", function (r) {
        return (r.address || "") + " · " + population(r); }]]));
    if ((data.residents || []).length >= data.limit) {
      residents.appendChild(el("p", "note", fmt(S["coordinator.more"], { count: data.limit })));
    }
    var entities = document.getElementById("gk-entities");
    entities.textContent = "";
    entities.appendChild(table(data.legal_entities || [], [
      ["name", "coordinator.col.name"], ["credit_code", "coordinator.col.credit_code"], ["address", "coordinator.col.address"]]));
    layers.base.clearLayers().addData(data.base_cells);
    layers.outline.clearLayers();
    if (data.outline) { layers.outline.addData(data.outline); }
    layers.buildings.clearLayers().addData(data.buildings);
    var bounds = layers.base.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds, { maxZoom: 18 }); }
  }

  function open(code) {
    state.busy = true;
    document.querySelectorAll(".cell-button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-cell") === code ? "true" : "false");
    });
    return fetch(cfg.api.cell.replace("{code}", encodeURIComponent(code)),
                 { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.message || response.statusText); }
          return body;
        });
      })
      .then(function (data) { state.cell = data.code; state.error = null; render(data); })
      .catch(function (error) {
        state.error = error.message;
        var box = document.getElementById("gk-cell");
        box.hidden = false;
        document.getElementById("gk-cell-title").textContent = fmt(S["coordinator.error"], { message: error.message });
      })
      .then(function () { state.busy = false; state.loads += 1; });
  }

  // The open cell is in the URL (?cell=): the back button returns to the cell seen before, and a
  // reload or a shared link opens the same cell.
  function cellUrl(code) {
    var params = new URLSearchParams(window.location.search);
    params.set("cell", code);
    return window.location.pathname + "?" + params.toString();
  }

  function cellInUrl() {
    var code = new URLSearchParams(window.location.search).get("cell");
    return cfg.cells.some(function (c) { return c.code === code; }) ? code : null;
  }

  document.querySelectorAll(".cell-button").forEach(function (button) {
    button.addEventListener("click", function () {
      var code = button.getAttribute("data-cell");
      if (code !== state.cell) { window.history.pushState({ cell: code }, "", cellUrl(code)); }
      open(code);
    });
  });
  window.addEventListener("popstate", function (event) {
    var code = (event.state && event.state.cell) || cellInUrl() || (cfg.cells.length && cfg.cells[0].code);
    if (code) { open(code); }
  });
  if (cfg.cells.length) {
    var first = cellInUrl() || cfg.cells[0].code;
    window.history.replaceState({ cell: first }, "", cellUrl(first));
    open(first);
  }

  window.gridkitCoordinator = { map: map, state: state, open: open, layers: layers };
}());
