/* gridkit planner list: "new draft" buttons (POST to the API with the CSRF token, then open the
   draft) and local times for the <time> elements. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("gridkit-planner-list-config").textContent);
  var S = cfg.strings;
  var notice = document.getElementById("gk-notice");

  var fmt = window.gkText.fmt;

  function show(text, kind) {
    notice.hidden = false;
    notice.className = "notice " + (kind || "info");
    notice.textContent = text;
  }

  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (node) {
    var when = new Date(node.getAttribute("datetime"));
    if (!isNaN(when)) { node.textContent = when.toLocaleString(cfg.lang, { dateStyle: "medium", timeStyle: "short", timeZone: cfg.timeZone }); }
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-new-draft]"), function (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      show(S["planner.saving"]);
      fetch(button.getAttribute("data-new-draft"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": cfg.csrf },
        body: "{}"
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) { throw new Error(body.message || response.statusText); }
          show(fmt(S["planner.draft.started"], { number: body.number }), "success");
          window.location.assign(body.url);
        });
      }).catch(function (error) {
        button.disabled = false;
        show(fmt(S["planner.error"], { message: error.message }), "error");
      });
    });
  });
}());
