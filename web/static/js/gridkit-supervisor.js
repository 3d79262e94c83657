/* gridkit supervisor map: incident density in square bins aggregated by PostGIS (never raw
   points), refetched for the view after every move, and counts per community / base cell. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("gridkit-supervisor-config").textContent);
  var map = window[cfg.mapName];
  var S = cfg.strings;
  var status = document.getElementById("sup-status");
  var bins = L.layerGroup().addTo(map);
  var areas = L.geoJSON(null, { style: areaStyle, onEachFeature: areaTip });
  var pending = null;

  var fmt = window.gkText.fmt;

  function query(extra) {
    var params = Object.assign({}, cfg.filters, extra);
    return Object.keys(params).filter(function (k) { return params[k]; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }

  // Light yellow to dark red by the bin's share of the busiest bin.
  var STOPS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];

  function colour(share) {
    return STOPS[Math.min(STOPS.length - 1, Math.floor(share * STOPS.length))];
  }

  // The legend: one row per colour with the counts it stands for (colour(count / max) above).
  var legend = L.control({ position: "bottomleft" });
  legend.onAdd = function () {
    var box = L.DomUtil.create("div", "gk-bin-legend");
    box.id = "sup-legend";
    return box;
  };
  legend.addTo(map);

  function showLegend(max) {
    var box = document.getElementById("sup-legend");
    box.textContent = "";
    var title = document.createElement("div");
    title.className = "gk-bin-legend-title";
    title.textContent = S[max ? "sup.map.legend.title" : "sup.map.legend.none"];
    box.appendChild(title);
    STOPS.forEach(function (stop, i) {
      var low = Math.max(1, Math.ceil(i * max / STOPS.length));
      var high = i === STOPS.length - 1 ? max : Math.ceil((i + 1) * max / STOPS.length) - 1;
      if (!max || low > high) { return; }
      var row = document.createElement("div");
      row.className = "gk-bin-legend-row";
      var swatch = document.createElement("span");
      swatch.className = "gk-bin-swatch";
      swatch.style.background = stop;
      row.appendChild(swatch);
      row.appendChild(document.createTextNode(low === high ? String(low) : low + "–" + high));
      box.appendChild(row);
    });
  }

  function areaStyle(feature) {
    var share = areas.max ? feature.properties.count / areas.max : 0;
    return { color: "#555", weight: 1, fillColor: colour(share), fillOpacity: 0.55 };
  }

  function areaTip(feature, layer) {
    var p = feature.properties;
    layer.bindTooltip(function () {
      var tip = document.createElement("div");
      tip.textContent = (p.name || p.code) + " · " + fmt(S["sup.map.cases"], { count: p.count });
      return tip;
    });
  }

  function getJSON(url, signal) {
    return fetch(url, { signal: signal, credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.message || r.statusText); }
          return body;
        });
      });
  }

  function refresh() {
    if (pending) { pending.abort(); }
    pending = new AbortController();
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",");
    var params = query({ bbox: bbox, zoom: map.getZoom() });
    status.textContent = S["sup.map.loading"];
    var heat = getJSON(cfg.api.heatmap + "?" + params, pending.signal).then(function (data) {
      bins.clearLayers();
      data.bins.forEach(function (bin) {
        var x = bin[0] * data.size, y = bin[1] * data.size;
        L.rectangle([[y, x], [y + data.size, x + data.size]], {
          stroke: false, fillColor: colour(data.max ? bin[2] / data.max : 0), fillOpacity: 0.7, interactive: false
        }).addTo(bins);
      });
      showLegend(data.max || 0);
      status.textContent = fmt(S["sup.map.count"], { total: data.total, bins: data.bins.length });
      map.getContainer().setAttribute("data-bins", String(data.bins.length));
    });
    var choro = getJSON(cfg.api.choropleth + "?" + params, pending.signal).then(function (data) {
      areas.clearLayers();
      areas.max = data.max;
      areas.addData(data);
    });
    Promise.all([heat, choro]).catch(function (error) {
      if (error.name !== "AbortError") { status.textContent = fmt(S["sup.map.error"], { message: error.message }); }
    });
  }

  var overlays = {};
  overlays[S["sup.map.heatmap"]] = bins;
  overlays[S["sup.map.choropleth"]] = areas;
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  map.on("moveend", refresh);
  refresh();
})();
