// What every page script of the inbox needs, loaded once before them (base.html): the page's words
// in its language, the page's CSRF token, and a form post with both. Each script reads them from
// window.servicehub instead of keeping its own copy.
(function () {
  "use strict";
  // base.html renders the words as JSON (#i18n, _i18n.html) by a short name; the English a script
  // passes is the source and what an English page shows (the block is only there for other languages).
  var words = (function () {
    var el = document.getElementById("i18n");
    try { return (el && JSON.parse(el.textContent)) || {}; } catch (e) { return {}; }
  })();
  var meta = document.querySelector('meta[name="csrf-token"]');

  // T("reply-sent", "Reply sent.") or T("not-sent-problem", "Not sent: %(problem)s", {problem: text}):
  // a placeholder without a value stays as written.
  function T(name, english, values) {
    return (words[name] || english).replace(/%\((\w+)\)s/g, function (m, k) { return values && k in values ? String(values[k]) : m; });
  }

  // A form post the way the pages' forms make it, with the session's cookie and the CSRF token;
  // `accept` says what the answer should be (JSON for a script, HTML for a fragment).
  function post(url, body, accept) {
    return fetch(url, {
      method: "POST", body: body instanceof URLSearchParams ? body : new URLSearchParams(body), credentials: "same-origin",
      headers: { "X-CSRF-Token": meta ? meta.content : "", "Accept": accept || "application/json" }
    });
  }

  window.servicehub = { T: T, csrf: meta ? meta.content : "", post: post };
})();
