// The inbox list's own tools: bulk changes to the checked rows, snooze presets in the agent's own
// time zone, the conversation's tag editor. Every form here works without this script (post and
// redirect); with it, forms post with fetch and the page is updated in place.
(function () {
  "use strict";
  // The page's words, its CSRF token and a form post: static/i18n.js, loaded before every page script.
  var shared = window.servicehub, T = shared.T;
  if (window.serviceHubList) return;  // a page may include it with the list and with the tag editor
  window.serviceHubList = true;

  function send(form, extra) {
    var data = new URLSearchParams(new FormData(form));
    (extra || []).forEach(function (pair) { data.append(pair[0], pair[1]); });
    return shared.post(form.getAttribute("action"), data).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { ok: r.ok, body: body }; });
    });
  }

  function problem(result) {
    return (result.body && result.body.error && result.body.error.message) || T("that-did-not-work-try", "That did not work; try again.");
  }

  // A preset's end in the agent's own time zone (the server's presets count in UTC).
  function presetTime(name) {
    var d = new Date();
    if (name === "later_today") return new Date(d.getTime() + 3 * 3600 * 1000);
    var t = new Date(d.getFullYear(), d.getMonth(), d.getDate(), 9, 0, 0);
    if (name === "tomorrow") { t.setDate(t.getDate() + 1); return t; }
    if (name === "next_week") { t.setDate(t.getDate() + (8 - (t.getDay() || 7))); return t; }
    return null;
  }

  function fillUntil(form) {
    var until = form.querySelector('input[name="until"]');
    if (!until) return;
    var custom = form.querySelector('input[name="local_until"]');
    var when = custom && custom.value ? new Date(custom.value) : null;
    if (!when) {
      var preset = form.querySelector('[name="preset"]');
      when = preset ? presetTime(preset.value) : null;
    }
    until.value = when && !isNaN(when.getTime()) ? when.toISOString() : "";
  }

  // --- the list: checked rows and the bulk bar -----------------------------------------------
  var rows = document.getElementById("rows");
  var bulk = document.getElementById("bulk");
  if (rows && bulk) {
    var picked = new Set();
    var count = document.getElementById("bulk-count");
    var all = document.getElementById("pick-all");
    var action = document.getElementById("bulk-action");
    var idle = count.textContent;

    var boxes = function () { return rows.querySelectorAll('input[name="ids"]'); };
    var showCount = function (text) {
      count.textContent = text || (picked.size ? T("num-selected", "%(num)s selected", { num: picked.size }) : idle);
      bulk.classList.toggle("active", picked.size > 0);
    };
    // The list is fetched again on live news: the rows checked stay checked.
    var restore = function () {
      boxes().forEach(function (box) { box.checked = picked.has(box.value); });
      if (all) all.checked = false;
    };
    new MutationObserver(restore).observe(rows, { childList: true });
    rows.addEventListener("change", function (ev) {
      var box = ev.target;
      if (box.name !== "ids") return;
      if (box.checked) picked.add(box.value); else picked.delete(box.value);
      showCount();
    });
    if (all) all.addEventListener("change", function () {
      boxes().forEach(function (box) {
        box.checked = all.checked;
        if (all.checked) picked.add(box.value); else picked.delete(box.value);
      });
      showCount();
    });
    var showArgs = function () {
      bulk.querySelectorAll(".bulk-arg").forEach(function (el) {
        el.hidden = !el.classList.contains("bulk-" + (action.value === "untag" ? "tag" : action.value));
      });
    };
    action.addEventListener("change", showArgs);
    showArgs();

    // Another view or filter of the list (in place, inbox.js): what was checked in the last one is let go.
    document.addEventListener("workspace:list", function () {
      picked.clear();
      restore();
      showCount();
    });

    var refresh = function () {
      var query = document.body.dataset.listQuery || "";
      return fetch("/inbox/rows" + (query ? "?" + query : ""), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) rows.innerHTML = html; });
    };

    bulk.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!picked.size) { showCount(T("select-at-least-one-conversation", "Select at least one conversation first.")); return; }
      if (action.value === "snooze") fillUntil(bulk);
      // The rows' own boxes belong to this form too (form="bulk"); send the kept set instead.
      var data = [];
      picked.forEach(function (id) { data.push(["ids", id]); });
      var form = new FormData(bulk);
      form.delete("ids");
      var body = new URLSearchParams(form);
      data.forEach(function (pair) { body.append(pair[0], pair[1]); });
      shared.post(bulk.getAttribute("action"), body)
        .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
        .then(function (result) {
          if (!result.ok) { showCount(problem(result)); return; }
          var failed = result.body.results.filter(function (x) { return !x.ok; });
          picked.clear();
          var text = failed.length ? T("done-changed-failed-not-problem", "%(done)s changed; %(failed)s not: %(problem)s", { done: result.body.done, failed: failed.length, problem: failed[0].error.message })
                               : T("done-changed", "%(done)s changed.", { done: result.body.done });
          return refresh().then(function () { showCount(text); });
        })
        .catch(function () { showCount(T("the-change-could-not-be", "The change could not be sent; check the connection and try again.")); });
    });
  }

  // --- a conversation's tags and snooze --------------------------------------------------------
  function editor() { return document.getElementById("tag-editor"); }
  function reloadEditor(id) {
    return fetch("/inbox/c/" + id + "/tags", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        var box = editor();
        if (html === null || !box) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#tag-editor");
        if (fresh) box.replaceWith(fresh);
      });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var box = editor();
    if (!box || !box.contains(form)) return;
    ev.preventDefault();
    var id = box.dataset.conversation;
    if (form.classList.contains("snooze-form")) fillUntil(form);
    send(form).then(function (result) {
      if (!result.ok) { window.alert(problem(result)); return; }
      if (form.classList.contains("snooze-form")) {
        var shown = document.getElementById("shown-status");
        if (shown) { shown.textContent = T("snoozed", "snoozed"); shown.className = "status status-snoozed"; }
        document.dispatchEvent(new CustomEvent("conversation:snoozed", { detail: result.body }));
      }
      return reloadEditor(id).then(function () {
        var input = document.getElementById("tag-new");
        if (input && form.classList.contains("tag-add")) input.focus();
      });
    });
  });
})();
