/* Inside an embedded form: tell the page around the frame how tall the form is. The form
   itself works without this script. */
(function () {
  "use strict";
  if (window.parent === window) return;
  function report() {
    window.parent.postMessage({ type: "servicehub-form-height", height: document.documentElement.scrollHeight }, "*");
  }
  window.addEventListener("load", report);
  window.addEventListener("resize", report);
  if (window.ResizeObserver) new ResizeObserver(report).observe(document.documentElement);
})();
