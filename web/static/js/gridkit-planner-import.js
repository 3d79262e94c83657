/* The import of a department's drawn work cells into the draft the editor shows (web/planner_import.py).

   Choosing a file uploads it once to list its fields (offered to both field inputs, which also take a typed
   name); the form then uploads it with the fields, the share and the revision the editor last loaded. A done
   import shows its counts, its notes and the report's link, and reloads the editor; a refusal lists every
   problem (feature number, code, sentence) and changes nothing; a 409 reloads the draft someone changed.
   Runs after gridkit-planner.js, whose window.gridkit holds the revision and reloads the map. */
(function () {
  "use strict";

  var form = document.getElementById("gk-import");
  if (!form) { return; }
  var cfg = JSON.parse(document.getElementById("gridkit-planner-config").textContent);
  var S = cfg.strings;
  var result = document.getElementById("gk-import-result");
  var status = document.getElementById("gk-import-fields");
  var fileInput = document.getElementById("gk-import-file");
  var submit = document.getElementById("gk-import-submit");

  var fmt = window.gkText.fmt;

  var el = window.gkText.el;

  function post(url, data) {
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": cfg.csrf }
    }).then(function (response) {
      return response.json().catch(function () { return { message: response.statusText }; }).then(function (body) {
        return { ok: response.ok, status: response.status, body: body };
      });
    }, function (error) {
      // The server closed the connection (a file over the size limit may be refused before it is read).
      return { ok: false, status: 0, body: { message: String(error.message || error) } };
    });
  }

  function show(kind, text) {
    result.hidden = false;
    result.className = "import-result " + kind;
    result.setAttribute("data-state", kind);
    result.textContent = "";
    result.appendChild(el("p", "import-text", text));
  }

  function entryLine(p) {
    var where = p.index === null || p.index === undefined ? S["planner.import.file_problem"]
      : fmt(S["planner.import.feature"], { index: p.index });
    var li = el("li", "import-problem");
    li.setAttribute("data-index", p.index === null || p.index === undefined ? "" : p.index);
    li.setAttribute("data-code", p.code || "");
    li.appendChild(el("strong", "feature", where));
    if (p.code) { li.appendChild(el("span", "code", " " + fmt(S["planner.import.code"], { code: p.code }))); }
    li.appendChild(el("span", "message", " " + p.message));
    return li;
  }

  function list(entries, className) {
    var ul = el("ul", className);
    entries.forEach(function (p) { ul.appendChild(entryLine(p)); });
    return ul;
  }

  function reportLink(url) {
    var a = el("a", "report-link", S["planner.import.report"]);
    a.href = url;
    a.setAttribute("download", "");
    a.id = "gk-import-report";
    return a;
  }

  function notes(body) {
    if (!body.notes || !body.notes.length) { return; }
    result.appendChild(el("p", "import-detail", fmt(S["planner.import.notes"], { count: body.notes.length })));
    result.appendChild(list(body.notes, "import-notes"));
  }

  var COUNTS = [["work_cells", "work_cells"], ["base_cells_assigned", "assigned"], ["split", "split"],
                ["unassigned", "unassigned"], ["work_cells_removed", "removed"]];

  function done(body) {
    show("success", body.message);
    var dl = el("dl", "counts");
    COUNTS.forEach(function (pair) {
      var div = el("div", "count");
      div.appendChild(el("dt", null, S["planner.import.count." + pair[1]]));
      var dd = el("dd", null, String(body[pair[0]]));
      dd.setAttribute("data-count", pair[0]);
      div.appendChild(dd);
      dl.appendChild(div);
    });
    result.appendChild(dl);
    result.appendChild(reportLink(body.report));
    notes(body);
  }

  function refused(body) {
    show("error", body.message);
    if (body.reason) { result.appendChild(el("p", "import-detail", body.reason)); }
    result.appendChild(list(body.problems, "import-problems"));
    Object.keys(body.unlisted || {}).forEach(function (kind) {
      result.appendChild(el("p", "import-detail", fmt(S["planner.import.unlisted"], { count: body.unlisted[kind], kind: kind })));
    });
    if (body.report) { result.appendChild(reportLink(body.report)); }
    notes(body);
  }

  // The file with the reading options of "More options" (layer, encoding, coordinate system).
  function withOptions(file) {
    var data = new FormData();
    data.append("file", file);
    [["layer", "gk-import-layer"], ["encoding", "gk-import-encoding"], ["src_crs", "gk-import-src-crs"]].forEach(function (pair) {
      data.append(pair[0], document.getElementById(pair[1]).value);
    });
    return data;
  }

  function readFields() {
    var file = fileInput.files[0];
    var options = document.getElementById("gk-import-field-list");
    options.textContent = "";
    status.textContent = "";
    status.removeAttribute("data-fields");
    status.removeAttribute("data-error");
    if (!file) { return; }
    status.textContent = S["planner.import.reading"];
    var data = withOptions(file);
    post(cfg.api.importFields, data).then(function (answer) {
      if (!answer.ok) {
        status.textContent = fmt(S["planner.error"], { message: answer.body.message || answer.status });
        status.setAttribute("data-error", answer.body.code || answer.status);
        return;
      }
      var b = answer.body;
      b.fields.forEach(function (name) { var o = el("option"); o.value = name; options.appendChild(o); });
      status.textContent = fmt(S["planner.import.fields"], { file: b.file, features: b.features, layer: b.layer, fields: b.fields.join(", ") });
      status.setAttribute("data-fields", b.fields.join(","));
    });
  }

  fileInput.addEventListener("change", readFields);
  document.getElementById("gk-import-layer").addEventListener("change", readFields);
  document.getElementById("gk-import-encoding").addEventListener("change", readFields);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = fileInput.files[0];
    if (!file) { show("error", S["planner.import.no_file"]); return; }
    var share = Number(document.getElementById("gk-import-share").value) / 100;
    var data = withOptions(file);
    data.append("code_field", document.getElementById("gk-import-code").value);
    data.append("name_field", document.getElementById("gk-import-name").value);
    data.append("share", String(share));
    data.append("revision", String(window.gridkit.state.revision));
    submit.disabled = true;
    show("info", fmt(S["planner.import.importing"], { file: file.name }));
    post(cfg.api["import"], data).then(function (answer) {
      submit.disabled = false;
      var body = answer.body;
      if (answer.ok) {
        window.gridkit.state.revision = body.revision;
        done(body);
        return window.gridkit.reload();
      }
      if (answer.status === 409) {
        show("error", S["planner.conflict"]);
        result.appendChild(el("p", "import-detail", body.message));
        return window.gridkit.reload();
      }
      if (body.problems) { refused(body); return null; }
      show("error", fmt(S["planner.error"], { message: body.message || answer.status }));
      return null;
    });
  });
}());
