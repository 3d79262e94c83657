/* gridkit base grid page: the edition's cells coloured by a target (within it, too big, too small), with
   the counts, so a planner judges a generated draft before publishing it. Cells and their building
   counts (by the building rule) come from /api/basegrid/target-cells; a draft generated to a target is
   drawn at once with that target, any edition with the target the planner gives. */
(function () {
  "use strict";

  var gk = window.gridkit;
  var page = JSON.parse(document.getElementById("gridkit-basegrid-target-config").textContent);
  var S = page.strings;
  var map = gk.map, el = gk.el, fmt = gk.fmt;
  var form = document.getElementById("gk-target-form");
  var measureNode = document.getElementById("gk-target-measure");
  var rangeNode = document.getElementById("gk-target-range");
  var statusNode = document.getElementById("gk-target-status");
  var countsNode = document.getElementById("gk-target-counts");
  var STATUSES = ["ok", "above", "below"];
  var COLOURS = { ok: "#12b76a", above: "#d92d20", below: "#f79009" };
  var state = { busy: false, loads: 0, count: 0, counts: null, error: null, target: null, inView: false };
  var controller = null;

  var layer = L.geoJSON(null, {
    pane: gk.pane("gk-target", 420),
    style: function (feature) {
      var colour = COLOURS[feature.properties.status];
      return { color: colour, weight: 1.5, opacity: 0.9, fillColor: colour, fillOpacity: 0.35 };
    },
    onEachFeature: function (feature, shape) {
      var p = feature.properties;
      shape.bindTooltip(function () {
        var tip = el("div");
        tip.appendChild(el("strong", "gk-cell-code", p.code));
        tip.appendChild(el("br"));
        tip.appendChild(el("span", null, S["basegrid.target.status." + p.status]));
        tip.appendChild(el("br"));
        tip.appendChild(el("span", "gk-tip-label", fmt(S["basegrid.target.tooltip.buildings"], { buildings: p.buildings })
          + " · " + fmt(S["basegrid.target.tooltip.area"], { area: Math.round(p.area_m2).toLocaleString() })));
        return tip;
      }, { sticky: true, className: "gk-tooltip" });
      shape.on("add", function () {
        var path = shape.getElement && shape.getElement();
        if (path) {
          path.classList.add("gk-target-cell");
          path.setAttribute("data-code", p.code);
          path.setAttribute("data-status", p.status);
        }
      });
    }
  }).addTo(map);
  if (gk.control) { gk.control.addOverlay(layer, S["basegrid.target.layer"]); }

  countsNode.style.listStyle = "none";
  countsNode.style.padding = "0";

  function showCounts(counts) {
    countsNode.textContent = "";
    STATUSES.forEach(function (status) {
      var item = el("li", "target-count");
      item.setAttribute("data-status", status);
      item.setAttribute("data-count", String(counts[status]));
      var swatch = el("span", "gk-swatch");
      swatch.style.display = "inline-block";
      swatch.style.width = "1.2rem";
      swatch.style.height = ".7rem";
      swatch.style.marginRight = ".4rem";
      swatch.style.verticalAlign = "middle";
      swatch.style.border = "1px solid " + COLOURS[status];
      swatch.style.background = COLOURS[status];
      item.appendChild(swatch);
      item.appendChild(el("span", null, S["basegrid.target.status." + status] + " "));
      item.appendChild(el("strong", null, counts[status].toLocaleString()));
      countsNode.appendChild(item);
    });
  }

  function load() {
    if (!state.target) { return; }
    var params = { edition: page.edition };
    params[state.target.measure === "area" ? "target-area-m2" : "target-buildings"] = state.target.range;
    // An edition too large for one answer is judged in the view, again after every move.
    state.inView = page.cells > page.limit;
    if (state.inView) {
      var b = map.getBounds();
      params.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    }
    if (controller) { controller.abort(); }
    var mine = controller = new AbortController();
    state.busy = true;
    statusNode.textContent = S["basegrid.target.loading"];
    statusNode.className = "gk-problems-status";
    gk.getJSON(gk.withQuery(page.url, params), mine.signal).then(function (data) {
      var counts = { ok: 0, above: 0, below: 0 };
      data.features.forEach(function (feature) { counts[feature.properties.status] += 1; });
      layer.clearLayers();
      layer.addData(data);
      state.count = data.features.length;
      state.counts = counts;
      state.error = null;
      showCounts(counts);
      statusNode.textContent = fmt(S[state.inView ? "basegrid.target.view_counts" : "basegrid.target.counts"],
        { count: state.count.toLocaleString(), ok: counts.ok, above: counts.above, below: counts.below });
      statusNode.className = "gk-problems-status " + (counts.ok === state.count ? "good" : "warn");
    }).catch(function (error) {
      if (mine.signal.aborted) { return; }
      layer.clearLayers();
      countsNode.textContent = "";
      state.error = error.message;
      statusNode.textContent = fmt(S["basegrid.target.error"], { message: error.message });
      statusNode.className = "gk-problems-status bad";
    }).then(function () {
      if (mine === controller) { state.busy = false; state.loads += 1; }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    state.target = { measure: measureNode.value, range: rangeNode.value.trim() };
    load();
  });
  map.on("moveend", function () { if (state.inView) { load(); } });
  if (page.target) {
    state.target = { measure: page.target.measure, range: rangeNode.value.trim() };
    load();
  }

  gk.target = { layer: layer, state: state, load: load };
}());
