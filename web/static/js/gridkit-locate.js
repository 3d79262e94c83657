/* gridkit "who is responsible here" and search, on any map page: a click on the map asks
   /api/whois for the point (base cell, community, per department work cell and coordinators);
   a search box asks /api/search and zooms to the hit chosen, highlighted. */
(function () {
  "use strict";

  var node = document.querySelector('script[type="application/json"][data-map-config]');
  if (!node) { return; }
  var cfg = JSON.parse(node.textContent);
  var map = window[cfg.mapName];
  var L_ = cfg.locate;
  var S = L_.strings;
  var highlight = null;
  var state = { whois: null, hits: null, busy: false };

  var fmt = window.gkText.fmt;

  var el = window.gkText.el;

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) { throw new Error(body.message || response.statusText); }
          return body;
        });
      });
  }

  function query(url, params) {
    return url + "?" + Object.keys(params).filter(function (k) { return params[k] !== null && params[k] !== ""; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }

  function whoisContent(data) {
    var box = el("div", "gk-whois");
    if (!data.base_cell) {
      box.appendChild(el("p", null, S["locate.outside"]));
      return box;
    }
    box.appendChild(el("strong", null, fmt(S["locate.base_cell"], { code: data.base_cell })));
    box.appendChild(el("div", null, fmt(S["locate.community"], { name: data.community_name || "", code: data.community || "" })));
    var list = el("ul", "gk-whois-depts");
    data.departments.forEach(function (d) {
      var item = el("li");
      item.appendChild(el("b", null, fmt(S["locate.dept"], { dept: d.dept_name })));
      if (!d.work_cell) {
        item.appendChild(el("span", null, S[d.unplaced ? "locate.unplaced" : "locate.no_cell"]));
      } else {
        item.appendChild(el("span", "gk-whois-cell", d.work_cell + (d.work_cell_name ? " " + d.work_cell_name : "")));
        var people = d.coordinators.map(function (c) { return c.name + (c.phone ? " " + c.phone : ""); });
        item.appendChild(el("div", "gk-whois-people", people.length ? people.join(S["locate.separator"]) : S["locate.no_coordinator"]));
      }
      list.appendChild(item);
    });
    box.appendChild(list);
    return box;
  }

  function whois(latlng) {
    var popup = L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(el("div", null, S["locate.loading"])).openOn(map);
    state.busy = true;
    var lon = Math.round(latlng.lng * 1e6) / 1e6, lat = Math.round(latlng.lat * 1e6) / 1e6;
    return getJSON(query(L_.whois, { lon: lon, lat: lat, at: L_.at || null })).then(function (data) {
      state.whois = data;
      popup.setContent(whoisContent(data));
    }).catch(function (error) {
      state.whois = { error: error.message };
      popup.setContent(el("div", "gk-error", error.message));
    }).then(function () { state.busy = false; });
  }

  map.on("click", function (event) {
    if (window.gridkitLocateDisabled) { return; }
    whois(event.latlng);
  });

  function show(hit) {
    if (highlight) { map.removeLayer(highlight); }
    var b = hit.bbox;
    if (b[0] === b[2] && b[1] === b[3]) {
      highlight = L.circleMarker([hit.lat, hit.lon], { radius: 9, color: "#f79009", weight: 3, fillOpacity: 0.2 }).addTo(map);
      map.setView([hit.lat, hit.lon], Math.max(map.getZoom(), 17));
    } else {
      highlight = L.rectangle([[b[1], b[0]], [b[3], b[2]]], { color: "#f79009", weight: 3, fill: false }).addTo(map);
      map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: 18 });
    }
    if (highlight.getElement) { var e = highlight.getElement(); if (e) { e.setAttribute("data-highlight", hit.kind); } }
    if (hit.kind === "point") { whois(L.latLng(hit.lat, hit.lon)); }
  }

  var Search = L.Control.extend({
    options: { position: "topright" },
    onAdd: function () {
      var wrap = el("div", "gk-search leaflet-bar");
      var form = el("form");
      form.setAttribute("role", "search");
      var input = el("input");
      input.type = "search"; input.id = "gk-search-input"; input.name = "q";
      input.placeholder = S["locate.search_placeholder"];
      input.setAttribute("aria-label", S["locate.search_label"]);
      input.maxLength = 100;
      var results = el("ul", "gk-search-results");
      results.id = "gk-search-results";
      form.appendChild(input);
      wrap.appendChild(form);
      wrap.appendChild(results);
      L.DomEvent.disableClickPropagation(wrap);
      L.DomEvent.disableScrollPropagation(wrap);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var q = input.value.trim();
        results.textContent = "";
        if (!q) { return; }
        state.busy = true;
        getJSON(query(L_.search, { q: q })).then(function (data) {
          state.hits = data.hits;
          if (!data.hits.length) { results.appendChild(el("li", "gk-search-none", S["locate.no_hits"])); }
          data.hits.forEach(function (hit, i) {
            var item = el("li");
            var button = el("button", "gk-search-hit");
            button.type = "button";
            button.setAttribute("data-kind", hit.kind);
            button.appendChild(el("span", "gk-kind", S["locate.kind." + hit.kind] || hit.kind));
            button.appendChild(el("span", null, " " + hit.label));
            button.addEventListener("click", function () { show(hit); });
            item.appendChild(button);
            results.appendChild(item);
            if (i === 0 && data.hits.length === 1) { show(hit); }
          });
        }).catch(function (error) {
          results.appendChild(el("li", "gk-error", error.message));
        }).then(function () { state.busy = false; });
      });
      return wrap;
    }
  });
  new Search().addTo(map);

  window.gridkitLocate = { state: state, whois: whois, show: show };
}());
