/* Form controls in the page's language, not the browser's (every page loads this).
   - Every form is served `novalidate`: without JavaScript the browser's bubbles, which speak the
     browser's language, never show, and the server's checks answer in the page's. With it, the
     browser's checks are turned back on here, their messages the catalogue's (below).
   - The browser's own checks (required, minlength, pattern, min/max) show their message bubble in
     the browser's language: on `invalid` the message is replaced by the catalogue's.
   - A date field (data-date, YYYY-MM-DD text) is refused unless it is a real day; 2026/12/1 and the
     like are written as 2026-12-01 when the field is left.
   - A file input (data-file-input, hidden behind the page's own button) shows the chosen file's name.
   - gkConfirm(message) asks in a <dialog> whose buttons are the catalogue's (window.confirm's "OK" and
     "Cancel" are the browser's); it returns a promise of true (confirmed) or false. */
(function () {
  "use strict";
  var node = document.getElementById("gk-form-strings");
  if (!node) { return; }
  var S = JSON.parse(node.textContent);
  document.querySelectorAll("form[novalidate]").forEach(function (form) { form.noValidate = false; });
  var DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

  var fmt = window.gkText.fmt;

  function isDay(text) {
    var m = DAY.exec(text);
    if (!m) { return false; }
    var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
  }

  // A day written another common way (2026/12/1, 2026.12.01, 2026年12月1日, 20261201) is written as
  // YYYY-MM-DD when the field is left, so a phone's keyboard without "-" can still give one.
  var LOOSE_DAY = /^(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?|(\d{2})(\d{2}))$/;

  function tidyDate(el) {
    var m = LOOSE_DAY.exec(el.value.trim());
    if (!m) { return; }
    var month = m[2] || m[4], day = m[3] || m[5];
    el.value = m[1] + "-" + ("0" + month).slice(-2) + "-" + ("0" + day).slice(-2);
  }

  function dateProblem(el) {
    var value = el.value.trim();
    return value && !isDay(value) ? S["form.date.invalid"] : "";
  }

  // The catalogue's message for what the browser found wrong with `el` ("" when nothing is).
  function problem(el) {
    var v = el.validity;
    if (v.valueMissing) {
      if (el.hasAttribute("data-required-message")) { return el.getAttribute("data-required-message"); }
      if (el.type === "file") { return S["form.required_file"]; }
      return S[el.tagName === "SELECT" ? "form.required_choice" : "form.required"];
    }
    if (el.hasAttribute("data-date")) { return dateProblem(el) || (v.patternMismatch ? S["form.date.invalid"] : ""); }
    if (v.tooShort) { return fmt(S["form.too_short"], { min: el.minLength, length: el.value.length }); }
    if (v.tooLong) { return fmt(S["form.too_long"], { max: el.maxLength, length: el.value.length }); }
    if (v.rangeUnderflow) { return fmt(S["form.range_under"], { min: el.min }); }
    if (v.rangeOverflow) { return fmt(S["form.range_over"], { max: el.max }); }
    if (v.patternMismatch) { return el.getAttribute("data-pattern-message") || S["form.pattern"]; }
    if (v.typeMismatch || v.badInput || v.stepMismatch) { return S["form.bad_value"]; }
    return "";
  }

  // `invalid` does not bubble: listen in the capture phase for every control of the page.
  document.addEventListener("invalid", function (event) {
    var el = event.target;
    if (!el.setCustomValidity) { return; }
    el.setCustomValidity("");
    el.setCustomValidity(problem(el));
  }, true);

  function recheck(event) {
    var el = event.target;
    if (!el.setCustomValidity) { return; }
    if (event.type === "change" && el.hasAttribute("data-date")) { tidyDate(el); }
    el.setCustomValidity(el.hasAttribute("data-date") ? dateProblem(el) : "");
    if (el.hasAttribute("data-file-input")) {
      var label = el.parentNode.querySelector("[data-file-name]");
      var files = el.files || [];
      label.textContent = files.length === 0 ? S["form.file.none"]
        : files.length === 1 ? files[0].name : fmt(S["form.file.chosen"], { count: files.length });
    }
  }
  document.addEventListener("input", recheck, true);
  document.addEventListener("change", recheck, true);
  document.querySelectorAll("[data-date]").forEach(function (el) { el.setCustomValidity(dateProblem(el)); });

  window.gkConfirm = function (message) {
    return new Promise(function (resolve) {
      var dialog = document.createElement("dialog");
      dialog.className = "gk-confirm";
      var form = document.createElement("form");
      form.method = "dialog";
      var text = document.createElement("p");
      text.textContent = message;
      var buttons = document.createElement("div");
      buttons.className = "gk-confirm-buttons";
      [["cancel", "button secondary"], ["ok", "button"]].forEach(function (pair) {
        var button = document.createElement("button");
        button.value = pair[0];
        button.className = pair[1];
        button.textContent = S["form.confirm." + pair[0]];
        buttons.appendChild(button);
      });
      form.appendChild(text);
      form.appendChild(buttons);
      dialog.appendChild(form);
      dialog.addEventListener("close", function () {
        var confirmed = dialog.returnValue === "ok";
        dialog.remove();
        resolve(confirmed);
      });
      document.body.appendChild(dialog);
      dialog.showModal();
      buttons.lastChild.focus();
    });
  };
}());
