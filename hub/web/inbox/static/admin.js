// The knowledge-base editor's live preview: the text is rendered and sanitised by the server
// (POST /inbox/admin/kb/preview), so what the preview shows is what the article will show.
(function () {
  "use strict";
  // The page's words, its CSRF token and a form post: static/i18n.js, loaded before every page script.
  var shared = window.servicehub, T = shared.T;
  var form = document.querySelector("[data-kb-editor]");
  if (!form) return;
  var body = form.querySelector("#kb-body"), format = form.querySelector("#kb-format"), preview = document.getElementById("kb-preview");
  var timer = null, asked = 0;
  function refresh() {
    var mine = ++asked;
    var data = new URLSearchParams();
    data.set("body", body.value);
    data.set("format", format.value);
    shared.post("/inbox/admin/kb/preview", data, "text/html")
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) {
        if (html === null || mine !== asked) return; // an older answer arriving late is dropped
        preview.innerHTML = html; // sanitised on the server (nh3)
      })
      .catch(function () {});
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }
  body.addEventListener("input", later);
  format.addEventListener("change", refresh);
  var button = form.querySelector(".kb-preview-button");
  if (button) button.hidden = true; // the preview follows the typing
  form.addEventListener("submit", function (event) {
    var action = event.submitter && event.submitter.value;
    if (action === "delete" && !window.confirm(T("delete-this-article-it-is", "Delete this article? It is no longer suggested, and its feedback goes too."))) {
      event.preventDefault();
    }
  });
})();
