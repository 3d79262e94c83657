/* gridkit base grid page: the validation problems of one edition, fetched as GeoJSON, drawn in red
   over the base cells of gridkit-map.js and listed in the side panel (click one to zoom to it). */
(function () {
  "use strict";

  var gk = window.gridkit;
  var cfg = JSON.parse(document.getElementById("gridkit-map-config").textContent);
  var page = JSON.parse(document.getElementById("gridkit-basegrid-config").textContent);
  var S = cfg.strings;
  var map = gk.map, el = gk.el, fmt = gk.fmt;
  var statusNode = document.getElementById("gk-problems-status");
  var listNode = document.getElementById("gk-problem-list");
  var CODES_SHOWN = 3;
  var state = { loaded: false, count: 0, active: null, error: null };
  var byId = {};

  // The picker shows another edition as soon as one is chosen.
  var picker = document.getElementById("gk-edition");
  if (picker) {
    picker.addEventListener("change", function () { picker.form.submit(); });
  }

  var problemStyle = { color: "#d92d20", weight: 2.5, opacity: 1, fillColor: "#f04438", fillOpacity: 0.4 };
  var activeStyle = { color: "#7a0916", weight: 4, opacity: 1, fillColor: "#f04438", fillOpacity: 0.6 };
  var markerStyle = { radius: 6, color: "#ffffff", weight: 2, fillColor: "#d92d20", fillOpacity: 1 };

  // Problem areas can be a few square metres: each also gets a marker that stays visible when zoomed out.
  var problems = L.geoJSON(null, {
    pane: gk.pane("gk-problems", 430),
    style: function () { return problemStyle; },
    pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, markerStyle); },
    onEachFeature: function (feature, layer) {
      byId[feature.id] = byId[feature.id] || {};
      byId[feature.id].shape = layer;
      layer.bindTooltip(function () { return tooltip(feature); }, { sticky: true, className: "gk-tooltip" });
      layer.on("add", function () { mark(layer, feature); });
      layer.on("click", function () { activate(feature.id, false); });
    }
  });
  var markers = L.layerGroup();

  function mark(layer, feature) {
    var path = layer.getElement && layer.getElement();
    if (path) {
      path.classList.add("gk-problem");
      path.setAttribute("data-problem", feature.id);
      path.setAttribute("data-type", feature.properties.type);
    }
  }

  function typeLabel(type) { return S["basegrid.problem." + type] || type; }

  function tooltip(feature) {
    var p = feature.properties;
    var tip = el("div");
    tip.appendChild(el("strong", null, typeLabel(p.type)));
    tip.appendChild(el("br"));
    tip.appendChild(el("span", "gk-cell-code", p.codes.join(", ")));
    if (p.area_m2 !== null && p.area_m2 !== undefined) {
      tip.appendChild(el("br"));
      tip.appendChild(el("span", "gk-tip-label", fmt(S["basegrid.problems.area"], { area: p.area_m2.toLocaleString() })));
    }
    return tip;
  }

  function boundsOf(feature) {
    var b = feature.properties.bbox;
    return b ? L.latLngBounds([b[1], b[0]], [b[3], b[2]]) : null;
  }

  function activate(id, zoom) {
    var entry = byId[id];
    if (!entry) { return; }
    if (state.active !== null && byId[state.active]) {
      var before = byId[state.active];
      if (before.shape && before.shape.setStyle && !(before.shape instanceof L.CircleMarker)) { before.shape.setStyle(problemStyle); }
      before.item.classList.remove("active");
      before.item.setAttribute("aria-pressed", "false");
    }
    state.active = id;
    entry.item.classList.add("active");
    entry.item.setAttribute("aria-pressed", "true");
    if (entry.shape && entry.shape.setStyle && !(entry.shape instanceof L.CircleMarker)) {
      entry.shape.setStyle(activeStyle);
      entry.shape.bringToFront();
    }
    if (zoom && entry.bounds) {
      // A problem of a few metres still gets a readable view: at least a cell and its neighbours.
      map.fitBounds(entry.bounds.pad(0.6), { maxZoom: 19, animate: false });
    }
    entry.item.scrollIntoView({ block: "nearest" });
  }

  function listItem(feature) {
    var p = feature.properties;
    var item = el("li", "problem-item");
    item.setAttribute("data-problem", feature.id);
    item.setAttribute("data-type", p.type);
    item.setAttribute("role", "button");
    item.setAttribute("tabindex", "0");
    item.setAttribute("aria-pressed", "false");
    item.title = p.message;
    item.appendChild(el("span", "problem-type", typeLabel(p.type)));
    var codes = p.codes.slice(0, CODES_SHOWN).join(", ");
    if (p.codes.length > CODES_SHOWN) { codes += " " + fmt(S["basegrid.problems.more"], { count: p.codes.length - CODES_SHOWN }); }
    item.appendChild(el("span", "problem-codes", codes));
    if (p.area_m2 !== null && p.area_m2 !== undefined) {
      item.appendChild(el("span", "problem-area", fmt(S["basegrid.problems.area"], { area: p.area_m2.toLocaleString() })));
    }
    if (!p.bbox) {
      item.appendChild(el("span", "problem-area", S["basegrid.problems.no_location"]));
      item.classList.add("no-location");
    }
    function go() { activate(feature.id, true); }
    item.addEventListener("click", go);
    item.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); go(); }
    });
    return item;
  }

  // The legend box of the city map gets one more row.
  var legend = document.querySelector(".gk-map-info .gk-status");
  if (legend) {
    var row = el("div");
    row.appendChild(el("span", "gk-swatch problem"));
    row.appendChild(el("span", null, S["basegrid.legend.problem"]));
    legend.parentNode.insertBefore(row, legend);
  }

  gk.getJSON(gk.withQuery(cfg.api.problems, { edition: page.edition })).then(function (data) {
    data.features.forEach(function (feature) {
      byId[feature.id] = { bounds: boundsOf(feature) };
      if (feature.geometry) { problems.addData(feature); }
      var bounds = byId[feature.id].bounds;
      if (bounds) {
        var marker = L.circleMarker(bounds.getCenter(), Object.assign({ pane: "gk-problems" }, markerStyle));
        marker.bindTooltip(function () { return tooltip(feature); }, { className: "gk-tooltip" });
        marker.on("click", function () { activate(feature.id, true); });
        marker.on("add", function () {
          var node = marker.getElement();
          if (node) { node.classList.add("gk-problem-marker"); node.setAttribute("data-problem", feature.id); }
        });
        markers.addLayer(marker);
      }
      var item = listItem(feature);
      byId[feature.id].item = item;
      listNode.appendChild(item);
    });
    state.count = data.features.length;
    statusNode.textContent = state.count ? fmt(S["basegrid.problems.count"], { count: state.count.toLocaleString() })
                                         : S["basegrid.problems.none"];
    statusNode.className = "gk-problems-status " + (state.count ? "bad" : "good");
  }).catch(function (error) {
    state.error = error.message;
    statusNode.textContent = fmt(S["basegrid.problems.error"], { message: error.message });
    statusNode.className = "gk-problems-status bad";
  }).then(function () {
    state.loaded = true;
  });

  var problemLayers = L.layerGroup([problems, markers]).addTo(map);
  if (gk.control) { gk.control.addOverlay(problemLayers, S["basegrid.layer.problems"]); }

  gk.problems = { layer: problems, markers: markers, state: state, activate: activate };
}());
