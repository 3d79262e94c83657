/* Text for the page's scripts, loaded by every page before them (base.html):
   - gkText.fmt(template, values): a catalogue sentence with its {name} places filled in (a place without a
     value is left as it is);
   - gkText.el(tag, className, text): a new element holding `text` as text, never as HTML: names, codes and
     addresses are data. */
(function () {
  "use strict";

  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  window.gkText = { fmt: fmt, el: el };
})();
