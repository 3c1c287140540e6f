// The customer panel without reloads: its forms (name, addresses, notes, attributes, tags) post
// with fetch and the panel's new HTML (rendered by the server, every value escaped) replaces the
// old one in place. Without this script the same forms post and redirect.
(function () {
  "use strict";
  // The page's words, its CSRF token and a form post: static/i18n.js, loaded before every page script.
  var shared = window.servicehub, T = shared.T;

  function panelOf(node) { return node.closest ? node.closest("[data-customer-panel]") : null; }

  function say(panel, text, link) {
    var status = panel.querySelector(".panel-status");
    if (!status) return;
    status.textContent = text;
    status.className = "panel-status" + (link === undefined ? "" : " error");
    if (link) {
      status.appendChild(document.createTextNode(" "));
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      status.appendChild(a);
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("panel-form")) return;
    var panel = panelOf(form);
    if (!panel || !window.fetch) return;
    event.preventDefault();
    var open = Array.prototype.map.call(panel.querySelectorAll("details"), function (d) { return d.open; });
    var action = (form.querySelector('input[name="action"]') || {}).value || "";
    var buttons = form.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    // form.action would be the form's field named "action", not its address.
    fetch(form.getAttribute("action"), {
      method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
      headers: { "X-Panel": "1", "Accept": "text/html" }
    }).then(function (resp) {
      if (resp.ok) {
        return resp.text().then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("[data-customer-panel]");
          if (!fresh) throw new Error("unexpected answer");
          panel.replaceWith(fresh);
          Array.prototype.forEach.call(fresh.querySelectorAll("details"), function (d, i) { if (open[i]) d.open = true; });
          say(fresh, T("saved", "Saved."));
          // Keep the agent where they were: the same form's first field, ready for the next one.
          var again = fresh.querySelector('form.panel-form input[name="action"][value="' + action + '"]');
          var field = again && again.form.querySelector("input:not([type=hidden]), textarea");
          if (field) field.focus();
          document.dispatchEvent(new CustomEvent("customer-panel-changed", { detail: { customer: fresh.dataset.customerPanel } }));
        });
      }
      return resp.json().then(function (body) {
        var err = body.error || {};
        var detail = err.detail || {};
        say(panel, err.message || T("that-did-not-work", "That did not work."),
            detail.merge_review ? { href: detail.merge_review, text: T("review-merging-customer-id-into", "Review merging customer #%(id)s into this one", { id: detail.customer_id }) } : null);
      }, function () { say(panel, T("that-did-not-work-status", "That did not work (%(status)s).", { status: resp.status })); });
    }).catch(function () {
      say(panel, T("the-hub-could-not-be", "The hub could not be reached; nothing was changed."), null);
    }).then(function () {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
    });
  });
})();
