// The analyst page: report preview (table + chart rendered by the server) and a choropleth map.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("gk-analyst-config").textContent);
  var S = config.strings;
  var PALETTE = ["#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"];

  function query(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) { if (value !== "") params.append(key, value); });
    return params.toString();
  }

  function fail(target, response, body) {
    target.textContent = S["analyst.failed"] + " " + ((body && body.message) || response.status);
  }

  // Report: the default grouping follows the chosen report. Work cells belong to a department: grouped
  // by work cell, the department must be chosen (asked at the field, before the server refuses it).
  var reportName = document.getElementById("gk-report-name");
  var reportBy = document.getElementById("gk-report-by");
  var reportDept = document.getElementById("gk-report-dept");
  function deptNeeded() {
    reportDept.required = reportBy.value === "work-cell";
    reportDept.setCustomValidity("");
  }
  reportName.addEventListener("change", function () {
    reportBy.value = reportName.selectedOptions[0].dataset.by;
    deptNeeded();
  });
  reportBy.addEventListener("change", deptNeeded);
  deptNeeded();
  document.getElementById("gk-report-preview").addEventListener("click", function () {
    var out = document.getElementById("gk-report-out");
    // A button outside the form's submit: its checks (a date that is no day) run only when asked.
    if (!document.getElementById("gk-report").reportValidity()) { return; }
    out.textContent = S["analyst.loading"];
    fetch(config.preview + "?" + query(document.getElementById("gk-report")), {credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { fail(out, response, body); return; }
          var html = "<h3>" + escapeHtml(body.title) + "</h3><table class=\"head\">";
          body.header.forEach(function (pair) {
            html += "<tr><th>" + escapeHtml(pair[0]) + "</th><td>" + escapeHtml(pair[1]) + "</td></tr>";
          });
          html += "</table>";
          body.sections.forEach(function (section) {
            html += "<h4>" + escapeHtml(section.title) + "</h4>";
            html += section.rows ? section.chart + section.table : "<p>" + escapeHtml(S["analyst.no_rows"]) + "</p>";
          });
          out.innerHTML = html;   // tables and SVG are escaped on the server
        });
      });
  });

  // Export: the file downloads and the page stays. The server answers a form carrying a download token with a
  // cookie named by it (web/analyst.py, _export_notes), set once the file is written: what the reader must know of
  // the file (counts of 1–2 residents left empty), in the page's language, shown under the form.
  var exportForm = document.getElementById("gk-export");
  var exportOut = document.getElementById("gk-export-out");
  var exportTimer = null;
  function readCookie(name) {
    var found = null;
    document.cookie.split("; ").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (pair.slice(0, at) === name) { found = pair.slice(at + 1); }
    });
    return found;
  }
  exportForm.addEventListener("submit", function () {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    var token = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    var name = config.exportCookie + token;
    exportForm.elements.download_token.value = token;
    exportOut.textContent = S["analyst.export.writing"];
    if (exportTimer !== null) { clearInterval(exportTimer); }
    var waited = 0;
    exportTimer = setInterval(function () {
      var said = readCookie(name);
      waited += 500;
      if (said === null) {
        if (waited > 30 * 60 * 1000) { clearInterval(exportTimer); exportOut.textContent = ""; }
        return;
      }
      clearInterval(exportTimer);
      exportTimer = null;
      document.cookie = name + "=; Max-Age=0; Path=" + config.exportCookiePath + "; SameSite=Strict";
      exportOut.textContent = "";
      var lines = [S["analyst.export.started"]].concat(decodeURIComponent(said).split("\n").filter(Boolean));
      lines.forEach(function (line) {
        var p = document.createElement("p");
        p.textContent = line;
        exportOut.appendChild(p);
      });
    }, 500);
  });

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }

  // Choropleth: no basemap (works offline); units coloured in six classes between min and max.
  var mapDiv = document.getElementById("gk-map");
  var map = L.map(mapDiv, {zoomSnap: 0.25}).setView([22.54, 114.06], 12);
  // Leaflet's own English tooltips, in the page's language; the brand stays, its English title goes.
  map.attributionControl.setPrefix("Leaflet");
  [["zoom-in", "map.control.zoom_in"], ["zoom-out", "map.control.zoom_out"]].forEach(function (pair) {
    var button = mapDiv.querySelector(".leaflet-control-" + pair[0]);
    button.setAttribute("title", S[pair[1]]);
    button.setAttribute("aria-label", S[pair[1]]);
  });
  var layer = null;

  function colour(value, min, max) {
    if (max <= min) { return PALETTE[PALETTE.length - 1]; }
    var i = Math.min(PALETTE.length - 1, Math.floor((value - min) / (max - min) * PALETTE.length));
    return PALETTE[i];
  }

  function showMap(event) {
    if (event) { event.preventDefault(); }
    var legend = document.getElementById("gk-legend");
    legend.textContent = S["analyst.loading"];
    fetch(mapDiv.dataset.url + "?" + query(document.getElementById("gk-choropleth")), {credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { fail(legend, response, data); return; }
          if (layer) { map.removeLayer(layer); }
          layer = L.geoJSON(data, {
            style: function (f) {
              // A count hidden by the small-count rule (null, 1 to data.hidden_up_to residents): no fill.
              if (f.properties.value === null) { return {color: "#555", weight: 1, fillOpacity: 0}; }
              return {color: "#555", weight: 1, fillOpacity: 0.8, fillColor: colour(f.properties.value, data.min, data.max)};
            },
            onEachFeature: function (f, l) {
              l.bindTooltip(function () {   // a node, not a string: Leaflet would parse a string as HTML
                var tip = document.createElement("span");
                tip.textContent = (f.properties.name || "") + " " + f.properties.code + ": " +
                  (f.properties.value === null ? "<" + (data.hidden_up_to + 1) : f.properties.value);
                return tip;
              });
            }
          }).addTo(map);
          if (data.features.length) { map.fitBounds(layer.getBounds()); }
          mapDiv.dataset.features = String(data.features.length);
          legend.innerHTML = escapeHtml(S["analyst.legend"]) + " " + data.min + " – " + data.max +
            PALETTE.map(function (c) { return "<span class=\"swatch\" style=\"background:" + c + "\"></span>"; }).join("");
        });
      });
  }
  document.getElementById("gk-choropleth").addEventListener("submit", showMap);
  showMap();
})();
