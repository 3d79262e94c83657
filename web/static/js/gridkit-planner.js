/* gridkit work grid editor, on the Leaflet map that folium created.

   Modes (cfg.mode): "edit" a draft, "view" a published or retired version, "diff" two versions
   (the newer one drawn, moved base cells highlighted). Base cells come as GeoJSON from the
   planner API, coloured by work cell. In edit mode cells are selected by click, by box (the Box
   tool, or Shift+drag with any tool: Leaflet's box zoom is off) or by a drawn polygon (the share
   of each cell's area inside is computed by the server), then moved to a work cell. Every change
   is a POST with the CSRF token and the draft revision last loaded; a 409 reloads the draft. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("gridkit-planner-config").textContent);
  var map = window[cfg.mapName];
  var S = cfg.strings;
  var editing = cfg.mode === "edit";
  var NEW = "__new__";
  var DRAG_MIN_PX = 4;

  var state = {
    mode: cfg.mode,
    revision: cfg.version.revision,
    tool: "click",
    selected: {},        // base cell code -> true
    highlighted: {},     // base cell code -> true (a problem or a work cell picked in the legend)
    moved: {},           // diff mode: base cell code -> {from, to}
    highlightColour: "#d92d20",
    overview: null,
    problems: null,
    busy: false, pending: 0, saving: false, loads: 0, saves: 0, count: 0,
    notice: "", noticeKind: ""
  };
  if (cfg.diff) {
    cfg.diff.moved.forEach(function (m) { state.moved[m.base_cell] = m; });
  }
  var byCode = {};       // base cell code -> Leaflet layer

  // -- small helpers ---------------------------------------------------------------------------

  var fmt = window.gkText.fmt;

  var el = window.gkText.el;

  function $(id) { return document.getElementById(id); }

  function request(method, url, payload, signal) {
    var headers = { Accept: "application/json" };
    var options = { method: method, headers: headers, credentials: "same-origin", signal: signal };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = cfg.csrf;
      options.body = JSON.stringify(payload || {});
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var error = new Error(body.message || response.statusText);
          error.status = response.status;
          error.body = body;
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

  function localTime(iso) {
    if (!iso) { return ""; }
    var when = new Date(iso);
    return isNaN(when) ? iso : when.toLocaleString(cfg.lang, { dateStyle: "medium", timeStyle: "short" });
  }

  // Every request of the page goes through track(): state.busy is true while any is in flight.
  function track(promise) {
    state.pending += 1;
    state.busy = true;
    function done() {
      state.pending -= 1;
      state.busy = state.pending > 0;
    }
    return promise.then(function (value) { done(); return value; },
                        function (error) { done(); throw error; });
  }

  function keys(set) { return Object.keys(set).filter(function (k) { return set[k]; }); }

  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (node) {
    node.textContent = localTime(node.getAttribute("datetime"));
  });

  // -- colours ---------------------------------------------------------------------------------

  // The palette of gridkit.colouring (the tiles' too). The server gives every work cell a palette
  // index such that touching work cells differ: `colours` {work cell code: index} of the cells'
  // GeoJSON and of the overview (the legend), `colour` of each work cell's GeoJSON feature.
  var PALETTE = cfg.palette;
  var colours = {};   // work cell code -> palette index, of the cells drawn

  function paletteColour(index) {
    return PALETTE[(index || 0) % PALETTE.length];
  }

  var HATCH_UNASSIGNED = "url(#gk-hatch-unassigned)";
  var HATCH_EXCLUDED = "url(#gk-hatch-excluded)";

  function cellStyle(p) {
    var style;
    if (!p.in_jurisdiction && !p.work_cell) {
      style = { color: "#98a2b3", weight: 0.8, opacity: 0.8, dashArray: "2 3", fillColor: "#e4e7ec", fillOpacity: 0.35 };
    } else if (p.excluded) {
      style = { color: "#475467", weight: 1, opacity: 1, dashArray: "4 3", fillColor: HATCH_EXCLUDED, fillOpacity: 1 };
    } else if (!p.work_cell) {
      style = { color: "#667085", weight: 1, opacity: 1, dashArray: null, fillColor: HATCH_UNASSIGNED, fillOpacity: 1 };
    } else {
      style = { color: "#ffffff", weight: 1, opacity: 0.9, dashArray: null, fillColor: paletteColour(colours[p.work_cell]), fillOpacity: 0.62 };
    }
    // Outlines of moved, highlighted and selected cells are drawn by refreshMarks(), above the
    // work cell outlines; the cell itself only gets a stronger fill.
    if (state.moved[p.code] || state.selected[p.code]) {
      style.fillOpacity = Math.min(1, style.fillOpacity + 0.2);
    }
    return style;
  }

  function selectable(p) { return editing && (p.in_jurisdiction || p.work_cell); }

  // -- layers ----------------------------------------------------------------------------------

  function pane(name, zIndex) {
    map.createPane(name).style.zIndex = zIndex;
    return name;
  }

  map.boxZoom.disable();   // Shift+drag selects cells instead

  var cells = L.geoJSON(null, {
    pane: pane("gk-cells", 410),
    className: "gk-work-base-cell",
    style: function (feature) { return cellStyle(feature.properties); },
    onEachFeature: function (feature, layer) {
      byCode[feature.properties.code] = layer;
      layer.bindTooltip(cellTooltip, { sticky: true, className: "gk-tooltip" });
      layer.on("add", function () { markElement(layer); });
      layer.on("click", function (event) {
        // Left to the map: a polygon corner, or "who is responsible here" (gridkit-locate.js) when
        // viewing a version or with the whois tool.
        if (!editing || state.tool === "polygon" || state.tool === "whois") { return; }
        L.DomEvent.stopPropagation(event);
        if (Date.now() - lastBoxEnd < 300) { return; }  // the click that ends a box drag
        if (!selectable(feature.properties)) { return; }
        toggle(feature.properties.code);
      });
      layer.on("mouseover", function () { if (!state.selected[feature.properties.code]) { layer.setStyle({ weight: 2.5 }); } });
      layer.on("mouseout", function () { restyle(layer); });
    }
  }).addTo(map);
  // Work cell outlines and community boundaries on top of the cells; they take no mouse events.
  var workCells = L.geoJSON(null, {
    pane: pane("gk-work-cells", 415), interactive: false, className: "gk-work-cell-outline",
    style: { color: "#1d2939", weight: cfg.mode === "diff" ? 1.4 : 2.2, opacity: 0.85, fill: false }
  }).addTo(map);
  var communities = L.geoJSON(null, {
    pane: pane("gk-communities", 418), interactive: false,
    style: { color: "#1d4f91", weight: 1.5, opacity: 0.9, dashArray: "8 5", fill: false }
  }).addTo(map);
  var labels = L.layerGroup().addTo(map);
  var drawing = L.layerGroup().addTo(map);   // the polygon being drawn
  var drawn = L.layerGroup().addTo(map);     // the last finished polygon, until the selection is cleared

  function markElement(layer) {
    var path = layer.getElement && layer.getElement();
    if (!path) { return; }
    var p = layer.feature.properties;
    path.setAttribute("data-code", p.code);
    path.setAttribute("data-work-cell", p.work_cell || "");
    path.setAttribute("data-selected", state.selected[p.code] ? "true" : "false");
    path.setAttribute("data-excluded", p.excluded ? "true" : "false");
    if (state.moved[p.code]) { path.setAttribute("data-moved", "true"); } else { path.removeAttribute("data-moved"); }
    if (state.highlighted[p.code]) { path.setAttribute("data-highlighted", "true"); } else { path.removeAttribute("data-highlighted"); }
  }

  function restyle(layer) {
    layer.setStyle(cellStyle(layer.feature.properties));
    markElement(layer);
  }

  function restyleAll() {
    cells.eachLayer(restyle);
    refreshMarks();
  }

  // Moved (diff), highlighted (a problem or a legend row) and selected cells get outlines in a
  // pane above the work cell outlines, so that a cell on a work cell border still shows them.
  var marks = L.layerGroup().addTo(map);
  pane("gk-marks", 416);

  function refreshMarks() {
    marks.clearLayers();
    function draw(codes, style) {
      codes.forEach(function (code) {
        var layer = byCode[code];
        if (layer) {
          L.polygon(layer.getLatLngs(), L.extend({ pane: "gk-marks", interactive: false, fill: false,
                                                   className: "gk-mark" }, style)).addTo(marks);
        }
      });
    }
    draw(keys(state.moved), { color: "#c11574", weight: 4 });
    draw(keys(state.highlighted), { color: state.highlightColour, weight: 3.5 });
    draw(keys(state.selected), { color: "#101828", weight: 3, dashArray: "6 3" });
  }

  function cellTooltip(layer) {
    var p = layer.feature.properties;
    var tip = el("div");
    tip.appendChild(el("strong", "gk-cell-code", p.code));
    tip.appendChild(el("br"));
    tip.appendChild(el("span", "gk-tip-label", S["planner.tooltip.community"]));
    tip.appendChild(el("span", null, p.community_name));
    tip.appendChild(el("br"));
    if (p.work_cell) {
      tip.appendChild(el("span", "gk-tip-label", S["planner.tooltip.work_cell"]));
      tip.appendChild(el("span", "gk-cell-code", p.work_cell + (p.work_cell_name ? " " + p.work_cell_name : "")));
    } else if (p.excluded) {
      tip.appendChild(el("span", null, fmt(S["planner.tooltip.excluded"], { reason: p.exclusion_reason || "" })));
    } else if (!p.in_jurisdiction) {
      tip.appendChild(el("span", null, S["planner.tooltip.outside"]));
    } else {
      tip.appendChild(el("span", null, S["planner.tooltip.unassigned"]));
    }
    var moved = state.moved[p.code];
    if (moved) {
      tip.appendChild(el("br"));
      tip.appendChild(el("span", "gk-tip-moved", fmt(S["planner.tooltip.moved"], {
        from: moved.from || "-", to: moved.to || "-" })));
    }
    return tip;
  }

  // Status box, bottom left.
  var statusNode = el("div", "gk-status");
  var info = L.control({ position: "bottomleft" });
  info.onAdd = function () {
    var box = el("div", "gk-map-info");
    box.appendChild(statusNode);
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  info.addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  function setStatus(text, isError) {
    statusNode.textContent = text;
    statusNode.className = "gk-status" + (isError ? " error" : "");
  }

  // -- notices ---------------------------------------------------------------------------------

  var noticeNode = $("gk-notice");

  function notice(text, kind, detail, list) {
    state.notice = text;
    state.noticeKind = kind || "info";
    noticeNode.hidden = false;
    noticeNode.className = "notice " + state.noticeKind;
    noticeNode.textContent = "";
    noticeNode.appendChild(el("p", "notice-text", text));
    if (list && list.length) {
      var ul = el("ul", "notice-list");
      list.forEach(function (line) { ul.appendChild(el("li", null, line)); });
      noticeNode.appendChild(ul);
    }
    if (detail) { noticeNode.appendChild(el("p", "notice-detail", detail)); }
    var close = el("button", "notice-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", S["planner.notice.close"]);
    close.addEventListener("click", function () { noticeNode.hidden = true; });
    noticeNode.appendChild(close);
  }

  // -- loading ---------------------------------------------------------------------------------

  var inFlight = null;

  function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

  function loadCells() {
    if (inFlight) { inFlight.abort(); }
    var params = {};
    if (!cfg.fullLoad) {
      if (map.getZoom() < cfg.minCellZoom) {
        cells.clearLayers();
        byCode = {};
        state.count = 0;
        state.loads += 1;
        setStatus(fmt(S["planner.status.zoom_in"], { zoom: cfg.minCellZoom }));
        return Promise.resolve();
      }
      var b = map.getBounds();
      params.bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
                     clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)]
        .map(function (v) { return v.toFixed(6); }).join(",");
    }
    var controller = new AbortController();
    inFlight = controller;
    setStatus(S["planner.status.loading"]);
    return track(request("GET", withQuery(cfg.api.cells, params), null, controller.signal)).then(function (data) {
      if (controller !== inFlight) { return; }
      cells.clearLayers();
      byCode = {};
      colours = data.colours || {};
      cells.addData(data);
      refreshMarks();
      state.count = data.features.length;
      if (data.version && state.mode === "edit") { state.revision = data.version.revision; }
      setStatus(fmt(S["planner.status.count"], { count: state.count.toLocaleString() }));
    }).catch(function (error) {
      if (error.name === "AbortError" || controller !== inFlight) { return; }
      setStatus(fmt(S["planner.status.error"], { message: error.message }), true);
    }).then(function () {
      if (controller !== inFlight) { return; }
      inFlight = null;
      state.loads += 1;
    });
  }

  if (!cfg.fullLoad) { map.on("moveend", loadCells); }

  function workCellLabel(p) {
    // The name if it has one, else community and sequence digits (the last five of the code).
    return p.name || (p.code.slice(-5, -2) + "-" + p.code.slice(-2));
  }

  function updateLabels() {
    labels.clearLayers();
    if (map.getZoom() < cfg.labelZoom - 1) { return; }
    workCells.eachLayer(function (layer) {
      var p = layer.feature.properties;
      if (!p.label) { return; }
      L.marker([p.label.coordinates[1], p.label.coordinates[0]], {
        icon: L.divIcon({ className: "gk-work-label", html: el("span", null, workCellLabel(p)), iconSize: null }),
        interactive: false, keyboard: false
      }).addTo(labels);
    });
  }

  map.on("zoomend", updateLabels);

  function loadWorkCells() {
    var params = {};
    if (!cfg.fullLoad) {
      if (map.getZoom() < cfg.minCellZoom) { workCells.clearLayers(); labels.clearLayers(); return Promise.resolve(); }
      var b = map.getBounds();
      params.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    }
    return track(request("GET", withQuery(cfg.api.workCells, params))).then(function (data) {
      workCells.clearLayers();
      workCells.addData(data);
      updateLabels();
    }).catch(function (error) {
      setStatus(fmt(S["planner.status.error"], { message: error.message }), true);
    });
  }

  if (!cfg.fullLoad) { map.on("moveend", loadWorkCells); }

  track(request("GET", cfg.api.communities)).then(function (data) { communities.addData(data); })
    .catch(function () { /* outlines are context only: the editor works without them */ });

  function loadOverview() {
    return track(request("GET", cfg.api.overview)).then(function (data) {
      state.overview = data;
      if (editing && data.version.status !== "draft") {
        // Published (or otherwise closed) meanwhile: the page must show it read-only.
        window.location.reload();
        return;
      }
      if (editing) {
        state.revision = data.version.revision;
        var revisionNode = $("gk-revision");
        if (revisionNode) { revisionNode.textContent = fmt(S["planner.revision"], { revision: state.revision }); }
        var last = $("gk-last-change");
        if (last && (data.version.updated_by || data.version.created_by)) {
          last.textContent = (data.version.updated_by || data.version.created_by) + " · " +
            localTime(data.version.updated_at || data.version.created_at);
        }
      }
      renderLegend();
      renderTargets();
    }).catch(function (error) {
      notice(fmt(S["planner.error"], { message: error.message }), "error");
    });
  }

  function reloadAll() {
    var jobs = [loadOverview(), loadCells(), loadWorkCells()];
    if (editing) { jobs.push(loadProblems()); }
    jobs.push(loadHistory());
    return Promise.all(jobs).then(function () { restyleAll(); updateSelection(); });
  }

  // -- legend: work cells ----------------------------------------------------------------------

  function legendRow(swatch, label, count, extraClass) {
    var li = el("li", "work-cell" + (extraClass ? " " + extraClass : ""));
    var sw = el("span", "swatch");
    if (swatch.indexOf("url(") === 0) {
      sw.classList.add(swatch === HATCH_EXCLUDED ? "hatch-excluded" : "hatch-unassigned");
    } else {
      sw.style.background = swatch;
    }
    li.appendChild(sw);
    li.appendChild(label);
    li.appendChild(el("span", "cell-count", count));
    return li;
  }

  function renderLegend() {
    var list = $("gk-work-cells");
    var data = state.overview;
    list.textContent = "";
    $("gk-work-cell-count").textContent = "(" + data.work_cells.length + ")";
    data.work_cells.forEach(function (w) {
      var label = el("span", "work-cell-label");
      label.appendChild(el("span", "code", w.code));
      if (w.name) { label.appendChild(el("span", "work-cell-name", w.name)); }
      var row = legendRow(paletteColour(state.overview.colours[w.code]), label, fmt(S["planner.legend.cells"], { count: w.base_cells }));
      row.setAttribute("data-work-cell", w.code);
      row.setAttribute("data-count", w.base_cells);
      row.setAttribute("role", "button");
      row.setAttribute("tabindex", "0");
      row.title = fmt(S["planner.legend.coordinators"], { count: w.coordinators });
      row.addEventListener("click", function () { highlightWorkCells([w.code], true, "#1570ef"); });
      row.addEventListener("keydown", function (event) { if (event.key === "Enter") { highlightWorkCells([w.code], true, "#1570ef"); } });
      list.appendChild(row);
    });
    if (!data.work_cells.length) { list.appendChild(el("li", "muted", S["planner.legend.none"])); }
    var unassigned = legendRow(HATCH_UNASSIGNED, el("span", "work-cell-label", S["planner.legend.unassigned"]),
                               fmt(S["planner.legend.cells"], { count: data.counts.unassigned }), "special");
    unassigned.setAttribute("data-special", "unassigned");
    unassigned.setAttribute("data-count", data.counts.unassigned);
    list.appendChild(unassigned);
    if (data.counts.excluded) {
      var excluded = legendRow(HATCH_EXCLUDED, el("span", "work-cell-label", S["planner.legend.excluded"]),
                               fmt(S["planner.legend.cells"], { count: data.counts.excluded }), "special");
      excluded.setAttribute("data-special", "excluded");
      excluded.setAttribute("data-count", data.counts.excluded);
      list.appendChild(excluded);
    }
  }

  function highlightCodes(codes, zoom, colour) {
    state.highlightColour = colour || "#d92d20";
    state.highlighted = {};
    codes.forEach(function (code) { state.highlighted[code] = true; });
    restyleAll();
    if (zoom) { zoomTo(codes); }
  }

  function highlightWorkCells(workCodes, zoom, colour) {
    var wanted = {};
    workCodes.forEach(function (c) { wanted[c] = true; });
    var codes = [];
    cells.eachLayer(function (layer) {
      if (wanted[layer.feature.properties.work_cell]) { codes.push(layer.feature.properties.code); }
    });
    Array.prototype.forEach.call(document.querySelectorAll("#gk-work-cells [data-work-cell]"), function (row) {
      row.classList.toggle("active", !!wanted[row.getAttribute("data-work-cell")]);
    });
    highlightCodes(codes, zoom, colour);
  }

  function zoomTo(codes) {
    var bounds = null;
    codes.forEach(function (code) {
      var layer = byCode[code];
      if (layer) { bounds = bounds ? bounds.extend(layer.getBounds()) : L.latLngBounds(layer.getBounds().getSouthWest(), layer.getBounds().getNorthEast()); }
    });
    if (bounds) { map.fitBounds(bounds.pad(0.5), { maxZoom: 17, animate: false }); }
  }

  // -- selection -------------------------------------------------------------------------------

  function toggle(code) {
    if (state.selected[code]) { delete state.selected[code]; } else { state.selected[code] = true; }
    if (byCode[code]) { restyle(byCode[code]); }
    refreshMarks();
    updateSelection();
  }

  function select(codes, replace) {
    if (replace) {
      var before = keys(state.selected);
      state.selected = {};
      before.forEach(function (code) { if (byCode[code]) { restyle(byCode[code]); } });
    }
    codes.forEach(function (code) {
      state.selected[code] = true;
      if (byCode[code]) { restyle(byCode[code]); }
    });
    refreshMarks();
    updateSelection();
  }

  function clearSelection() { select([], true); drawn.clearLayers(); }

  function updateSelection() {
    if (!editing) { return; }
    var n = keys(state.selected).length;
    var countNode = $("gk-selection-count");
    countNode.textContent = n ? fmt(S["planner.select.count"], { count: n }) : S["planner.select.none"];
    countNode.setAttribute("data-count", n);
    $("gk-clear").disabled = !n;
    $("gk-move").disabled = !n || state.saving;
    $("gk-exclude").disabled = !n || state.saving;
    if ($("gk-target").value === NEW) { suggestCode(); }
  }

  // -- box select: the Box tool, or Shift+drag with any tool ------------------------------------

  var box = null;
  var lastBoxEnd = 0;
  var container = map.getContainer();

  function insideControl(target) {
    return target && target.closest && target.closest(".leaflet-control");
  }

  // Capture phase on the container: runs before Leaflet's own listeners, so a box drag never pans.
  container.addEventListener("mousedown", function (event) {
    if (!editing || event.button !== 0 || insideControl(event.target)) { return; }
    if (!(state.tool === "box" || (event.shiftKey && state.tool !== "polygon"))) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    var start = map.mouseEventToContainerPoint(event);
    box = { start: start, end: start, rect: null };

    function move(e) {
      box.end = map.mouseEventToContainerPoint(e);
      var bounds = L.latLngBounds(map.containerPointToLatLng(box.start), map.containerPointToLatLng(box.end));
      if (!box.rect) {
        box.rect = L.rectangle(bounds, { color: "#1570ef", weight: 1.5, dashArray: "5 4", fillColor: "#53b1fd",
                                         fillOpacity: 0.15, interactive: false, className: "gk-select-box" }).addTo(map);
      } else {
        box.rect.setBounds(bounds);
      }
    }

    function up(e) {
      document.removeEventListener("mousemove", move, true);
      document.removeEventListener("mouseup", up, true);
      box.end = map.mouseEventToContainerPoint(e);
      if (box.rect) { map.removeLayer(box.rect); }
      var dragged = box.start.distanceTo(box.end) >= DRAG_MIN_PX;
      if (dragged) {
        lastBoxEnd = Date.now();
        var bounds = L.latLngBounds(map.containerPointToLatLng(box.start), map.containerPointToLatLng(box.end));
        var codes = [];
        cells.eachLayer(function (layer) {
          // A cell is in the box when its centre is: a box edge grazing a neighbour does not take it.
          if (selectable(layer.feature.properties) && bounds.contains(layer.getBounds().getCenter())) {
            codes.push(layer.feature.properties.code);
          }
        });
        select(codes, false);
      }
      box = null;
    }

    document.addEventListener("mousemove", move, true);
    document.addEventListener("mouseup", up, true);
  }, true);

  // -- polygon tool: click the corners, double-click (or Finish) to close ----------------------

  var polygon = { points: [], line: null, rubber: null };

  function resetPolygon() {
    polygon.points = [];
    drawing.clearLayers();
    polygon.line = L.polyline([], { color: "#1570ef", weight: 2, interactive: false }).addTo(drawing);
    polygon.rubber = L.polyline([], { color: "#1570ef", weight: 1.5, dashArray: "4 4", interactive: false }).addTo(drawing);
    var finish = $("gk-polygon-finish");
    if (finish) { finish.disabled = true; }
  }

  function addVertex(latlng) {
    polygon.points.push(latlng);
    polygon.line.setLatLngs(polygon.points);
    L.circleMarker(latlng, { radius: 4, color: "#1570ef", weight: 2, fillColor: "#fff", fillOpacity: 1,
                             interactive: false }).addTo(drawing);
    $("gk-polygon-finish").disabled = distinctPoints().length < 3;
  }

  function distinctPoints() {
    // A double-click also gives two clicks at the same spot: drop corners closer than a few pixels.
    var out = [];
    polygon.points.forEach(function (latlng) {
      var here = map.latLngToContainerPoint(latlng);
      if (!out.length || map.latLngToContainerPoint(out[out.length - 1]).distanceTo(here) >= DRAG_MIN_PX) {
        out.push(latlng);
      }
    });
    if (out.length > 1 && map.latLngToContainerPoint(out[0]).distanceTo(map.latLngToContainerPoint(out[out.length - 1])) < DRAG_MIN_PX) {
      out.pop();
    }
    return out;
  }

  function finishPolygon() {
    var points = distinctPoints();
    if (points.length < 3) {
      notice(S["planner.select.polygon_short"], "error");
      return;
    }
    var ring = points.map(function (p) { return [p.lng, p.lat]; });
    ring.push(ring[0]);
    resetPolygon();   // ready for the next one
    drawn.clearLayers();
    L.polygon(points, { color: "#1570ef", weight: 2, dashArray: "6 4", fillColor: "#53b1fd", fillOpacity: 0.12,
                        interactive: false, className: "gk-drawn-polygon" }).addTo(drawn);
    var share = Number($("gk-share").value) / 100;
    track(request("POST", cfg.api.polygon, { polygon: { type: "Polygon", coordinates: [ring] }, share: share }))
      .then(function (body) {
        select(body.cells, true);
        notice(body.cells.length ? fmt(S["planner.select.polygon_result"], { count: body.cells.length, share: Math.round(share * 100) })
                                 : S["planner.select.polygon_empty"], body.cells.length ? "info" : "error");
      }).catch(handleError);
  }

  map.on("click", function (event) {
    if (editing && state.tool === "polygon") { addVertex(event.latlng); }
  });
  map.on("mousemove", function (event) {
    if (editing && state.tool === "polygon" && polygon.points.length) {
      polygon.rubber.setLatLngs([polygon.points[polygon.points.length - 1], event.latlng]);
    }
  });
  map.on("dblclick", function () {
    if (editing && state.tool === "polygon" && polygon.points.length) { finishPolygon(); }
  });
  document.addEventListener("keydown", function (event) {
    if (!editing || state.tool !== "polygon") { return; }
    if (event.key === "Escape") { resetPolygon(); }
    if (event.key === "Enter" && polygon.points.length) { finishPolygon(); }
  });

  function setTool(tool) {
    state.tool = tool;
    // A click answers "who is responsible here" when viewing, and in the editor with the whois tool.
    window.gridkitLocateDisabled = editing && tool !== "whois";
    Array.prototype.forEach.call(document.querySelectorAll("[data-tool]"), function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-tool") === tool ? "true" : "false");
    });
    $("gk-tool-hint").textContent = S["planner.tool.hint." + tool];
    $("gk-polygon-options").hidden = tool !== "polygon";
    container.classList.toggle("gk-tool-polygon", tool === "polygon");
    container.classList.toggle("gk-tool-box", tool === "box");
    if (tool === "polygon") {
      map.doubleClickZoom.disable();
      resetPolygon();
    } else {
      map.doubleClickZoom.enable();
      polygon.points = [];
      drawing.clearLayers();
    }
    if (tool === "box") { map.dragging.disable(); } else { map.dragging.enable(); }
  }

  // -- moving cells to a work cell -------------------------------------------------------------

  function renderTargets() {
    if (!editing) { return; }
    var target = $("gk-target");
    var previous = target.value;
    target.textContent = "";
    var prompt = el("option", null, S["planner.move.choose"]);
    prompt.value = "";
    target.appendChild(prompt);
    state.overview.work_cells.forEach(function (w) {
      var option = el("option", null, w.code + (w.name ? " " + w.name : "") + " (" + w.base_cells + ")");
      option.value = w.code;
      target.appendChild(option);
    });
    var fresh = el("option", null, S["planner.move.new"]);
    fresh.value = NEW;
    target.appendChild(fresh);
    target.value = Array.prototype.some.call(target.options, function (o) { return o.value === previous; }) ? previous : "";
    $("gk-new-cell").hidden = target.value !== NEW;
  }

  function suggestCode() {
    // Department code + community of the first selected cell + the first free 2-digit sequence.
    var input = $("gk-new-code");
    if (input.value && input.getAttribute("data-suggested") !== input.value) { return; }
    var first = keys(state.selected).sort()[0];
    var layer = first && byCode[first];
    if (!layer) { return; }
    var prefix = cfg.dept.code + layer.feature.properties.community_code;
    var taken = {};
    state.overview.work_cells.forEach(function (w) { taken[w.code] = true; });
    for (var seq = 1; seq < 100; seq += 1) {
      var code = prefix + (seq < 10 ? "0" : "") + seq;
      if (!taken[code]) {
        input.value = code;
        input.setAttribute("data-suggested", code);
        return;
      }
    }
  }

  function targetCode() {
    var target = $("gk-target").value;
    if (target === NEW) { return $("gk-new-code").value.trim(); }
    return target;
  }

  function moveSelected() {
    var codes = keys(state.selected).sort();
    var code = targetCode();
    if (!codes.length) { notice(S["planner.move.nothing"], "error"); return; }
    if (!code) { notice(S["planner.move.choose"], "error"); $("gk-target").focus(); return; }
    if (!/^[0-9]{20}$/.test(code)) { notice(fmt(S["planner.move.code_format"], { code: code }), "error"); return; }
    var payload = { revision: state.revision, work_cell: code, cells: codes };
    if ($("gk-target").value === NEW && $("gk-new-name").value.trim()) { payload.name = $("gk-new-name").value.trim(); }
    save(cfg.api.move, payload).then(function (body) {
      if (!body) { return; }
      state.selected = {};
      drawn.clearLayers();
      $("gk-new-code").value = "";
      $("gk-new-name").value = "";
      $("gk-target").value = body.work_cell;
      notice(fmt(S["planner.move.done"], { count: body.cells.length, code: body.work_cell }), "success");
      return reloadAll().then(function () { renderTargets(); $("gk-target").value = body.work_cell; });
    });
  }

  function excludeSelected() {
    var codes = keys(state.selected).sort();
    var reason = $("gk-exclude-reason").value.trim();
    if (!reason) { notice(S["planner.exclude.reason_needed"], "error"); $("gk-exclude-reason").focus(); return; }
    save(cfg.api.exclude, { revision: state.revision, cells: codes, reason: reason }).then(function (body) {
      if (!body) { return; }
      state.selected = {};
      notice(fmt(S["planner.exclude.done"], { count: body.excluded }), "success");
      return reloadAll();
    });
  }

  // Every change: POST with the revision; on 409 show who changed the draft and reload it.
  function save(url, payload) {
    state.saving = true;
    updateSelection();
    notice(S["planner.saving"], "info");
    return track(request("POST", url, payload)).then(function (body) {
      state.saves += 1;
      if (body.revision !== undefined) { state.revision = body.revision; }
      return body;
    }).catch(function (error) {
      handleError(error);
      return null;
    }).then(function (body) {
      state.saving = false;
      updateSelection();
      return body;
    });
  }

  function handleError(error) {
    var body = error.body || {};
    if (error.status === 409 && body.code === "work.published_since_draft") {
      // Not a change to this draft: another version was published since it was started. Nothing to reload.
      notice(S["planner.publish.outdated"], "error", error.message);
      return Promise.resolve();
    }
    if (error.status === 409) {
      var serverMessage = error.message;
      notice(S["planner.conflict"], "error", serverMessage);
      return reloadAll().then(function () {
        var v = state.overview && state.overview.version;
        var who = (v && v.updated_by) || S["planner.conflict.someone"];
        notice(fmt(S["planner.conflict.reloaded"], { who: who, when: localTime(v && v.updated_at), revision: v ? v.revision : "?" }),
               "error", serverMessage);
      });
    }
    if (body.problems && body.problems.length) {
      var lines = body.problems.map(function (p) {
        return typeof p === "string" ? p : problemLine(p);
      });
      notice(fmt(S["planner.publish.refused"], { count: body.problems.length }), "error", error.message, lines);
      if (typeof body.problems[0] === "object") { renderProblems({ problems: body.problems }); }
      return Promise.resolve();
    }
    notice(fmt(S["planner.error"], { message: error.message }), "error");
    return Promise.resolve();
  }

  // -- validation ------------------------------------------------------------------------------

  function problemLine(p) {
    return (S["planner.problem." + p.type] || p.type) + fmt(S["planner.problems.codes"], { count: p.codes.length });
  }

  function loadProblems() {
    var status = $("gk-problems-status");
    status.textContent = S["planner.problems.checking"];
    status.className = "gk-problems-status";
    return track(request("GET", cfg.api.problems)).then(renderProblems).catch(function (error) {
      if (error.status === 409) { return; }   // no longer a draft: loadOverview reloads the page
      status.textContent = fmt(S["planner.error"], { message: error.message });
      status.className = "gk-problems-status bad";
    });
  }

  function renderProblems(data) {
    state.problems = data.problems;
    var status = $("gk-problems-status");
    var list = $("gk-problem-list");
    list.textContent = "";
    var errors = data.problems.filter(function (p) { return p.severity === "error"; }).length;
    var warnings = data.problems.length - errors;
    status.textContent = data.problems.length ? fmt(S["planner.problems.summary"], { errors: errors, warnings: warnings })
                                              : S["planner.problems.none"];
    status.className = "gk-problems-status " + (errors ? "bad" : warnings ? "warn" : "good");
    status.setAttribute("data-errors", errors);
    status.setAttribute("data-warnings", warnings);
    data.problems.forEach(function (p) {
      var item = el("li", "problem-item " + p.severity);
      item.setAttribute("data-type", p.type);
      item.setAttribute("data-severity", p.severity);
      item.setAttribute("role", "button");
      item.setAttribute("tabindex", "0");
      item.title = p.message;
      item.appendChild(el("span", "severity", S["planner.problems." + (p.severity === "error" ? "error" : "warning")]));
      item.appendChild(el("span", "problem-type", S["planner.problem." + p.type] || p.type));
      var shown = p.codes.slice(0, 3).join(", ");
      if (p.codes.length > 3) { shown += " " + fmt(S["planner.problems.more"], { count: p.codes.length - 3 }); }
      item.appendChild(el("span", "problem-codes", shown));
      function go() {
        Array.prototype.forEach.call(list.children, function (other) { other.classList.remove("active"); });
        item.classList.add("active");
        // Work cell codes have 20 digits; anything else named here is a base cell.
        var workCodes = p.codes.filter(function (c) { return c.length === 20; });
        var colour = p.severity === "error" ? "#d92d20" : "#dc6803";
        if (workCodes.length) { highlightWorkCells(workCodes, true, colour); } else { highlightCodes(p.codes, true, colour); }
      }
      item.addEventListener("click", go);
      item.addEventListener("keydown", function (event) { if (event.key === "Enter") { go(); } });
      list.appendChild(item);
    });
  }

  // -- publish, new draft, history, rollback ---------------------------------------------------

  function publish() {
    window.gkConfirm(fmt(S["planner.publish.confirm"], { number: cfg.version.number })).then(function (confirmed) {
      if (!confirmed) { return; }
      save(cfg.api.publish, { revision: state.revision }).then(function (body) {
        if (!body) { return; }
        notice(fmt(S["planner.publish.done"], { number: body.number }), "success");
        window.location.assign(body.url);
      });
    });
  }

  function newDraft() {
    var button = $("gk-new-draft");
    button.disabled = true;
    request("POST", cfg.api.newDraft, {}).then(function (body) {
      notice(fmt(S["planner.draft.started"], { number: body.number }), "success");
      window.location.assign(body.url);
    }).catch(function (error) {
      button.disabled = false;
      handleError(error);
    });
  }

  function loadHistory() {
    var list = $("gk-history");
    return track(request("GET", cfg.api.history)).then(function (data) {
      list.textContent = "";
      var numberOf = {};
      data.versions.forEach(function (v) { numberOf[v.id] = v.number; });
      var current = data.versions.filter(function (v) { return v.status === "published" && !v.valid_to; })[0];
      data.versions.slice().reverse().forEach(function (v) {
        var item = el("li", "history-item status-" + v.status);
        item.setAttribute("data-number", v.number);
        item.setAttribute("data-status", v.status);
        var head = el("div", "history-head");
        head.appendChild(el("strong", null, fmt(S["planner.history.version"], { number: v.number })));
        head.appendChild(el("span", "badge status-" + v.status, S["edition.status." + v.status]));
        if (current && current.id === v.id) { head.appendChild(el("span", "badge current", S["planner.history.current"])); }
        if (v.id === cfg.version.id) { head.appendChild(el("span", "badge this", S["planner.history.this"])); }
        item.appendChild(head);
        var meta = fmt(S["planner.history.cells"], { count: v.work_cells }) + " · ";
        if (v.published_at) {
          meta += fmt(S["planner.history.published"], { when: localTime(v.published_at) });
        } else {
          meta += fmt(S["planner.history.created"], { who: v.created_by || "-", when: localTime(v.created_at) });
        }
        item.appendChild(el("div", "history-meta", meta));
        if (v.note) { item.appendChild(el("div", "history-note", v.note)); }
        var actions = el("div", "history-actions");
        if (v.id !== cfg.version.id) {
          var open = el("a", null, S["planner.history.open"]);
          open.href = fmt(cfg.urls.version, { id: v.id });
          actions.appendChild(open);
        }
        // "Previous": the version this one was copied from, else the one numbered before it.
        var previous = v.based_on && numberOf[v.based_on] ? numberOf[v.based_on] : v.number - 1;
        if (previous >= 1 && data.versions.some(function (o) { return o.number === previous; })) {
          var diff = el("a", "history-diff", S["planner.history.diff"]);
          diff.href = fmt(cfg.urls.diff, { dept: cfg.dept.code, old: previous, "new": v.number });
          actions.appendChild(diff);
        }
        if (v.status !== "draft" && !(current && current.id === v.id)) {
          var back = el("button", "link-button history-rollback", S["planner.history.rollback"]);
          back.type = "button";
          back.addEventListener("click", function () { rollback(v.number, back); });
          actions.appendChild(back);
        }
        if (actions.childNodes.length) { item.appendChild(actions); }
        list.appendChild(item);
      });
      if (!data.versions.length) { list.appendChild(el("li", "muted", S["planner.history.empty"])); }
    }).catch(function (error) {
      list.textContent = "";
      list.appendChild(el("li", "error", fmt(S["planner.error"], { message: error.message })));
    });
  }

  function rollback(number, button) {
    window.gkConfirm(fmt(S["planner.history.rollback_confirm"], { number: number })).then(function (confirmed) {
      if (!confirmed) { return; }
      button.disabled = true;
      request("POST", cfg.api.rollback, { to: number }).then(function (body) {
        window.location.assign(body.url);
      }).catch(function (error) {
        button.disabled = false;
        handleError(error);
      });
    });
  }

  // -- diff mode: the moved list zooms to its cell ----------------------------------------------

  var movedList = $("gk-moved-list");
  if (movedList) {
    Array.prototype.forEach.call(movedList.children, function (item) {
      function go() {
        Array.prototype.forEach.call(movedList.children, function (other) { other.classList.remove("active"); });
        item.classList.add("active");
        var code = item.getAttribute("data-code");
        highlightCodes([code], true);
      }
      item.addEventListener("click", go);
      item.addEventListener("keydown", function (event) { if (event.key === "Enter") { go(); } });
    });
  }

  // -- wiring ----------------------------------------------------------------------------------

  if (editing) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-tool]"), function (button) {
      button.addEventListener("click", function () { setTool(button.getAttribute("data-tool")); });
    });
    $("gk-polygon-finish").addEventListener("click", finishPolygon);
    $("gk-polygon-cancel").addEventListener("click", function () { resetPolygon(); });
    $("gk-clear").addEventListener("click", clearSelection);
    $("gk-target").addEventListener("change", function () {
      $("gk-new-cell").hidden = $("gk-target").value !== NEW;
      if ($("gk-target").value === NEW) { suggestCode(); $("gk-new-code").focus(); }
    });
    $("gk-move").addEventListener("click", moveSelected);
    $("gk-exclude").addEventListener("click", excludeSelected);
    $("gk-validate").addEventListener("click", loadProblems);
    $("gk-publish").addEventListener("click", publish);
    setTool("click");
  }
  var newDraftButton = $("gk-new-draft");
  if (newDraftButton) { newDraftButton.addEventListener("click", newDraft); }

  reloadAll().then(function () {
    if (cfg.diff && cfg.diff.moved.length) { restyleAll(); }
  });

  // For tests and the browser console.
  window.gridkit = {
    map: map, cells: cells, state: state, byCode: function (code) { return byCode[code]; },
    paletteColour: paletteColour, reload: reloadAll, select: select, setTool: setTool
  };
}());
