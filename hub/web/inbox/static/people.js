// People in the page: the @mention autocomplete of any textarea with data-mention (the note
// composer), and the notifications bell (unread count and a dropdown, live through /inbox/events).
// Without this script "@Name" still works when typed, and the bell is a link to the list.
(function () {
  "use strict";
  // The page's words, its CSRF token and a form post: static/i18n.js, loaded before every page script.
  var shared = window.servicehub, T = shared.T;
  var body = document.body;

  // --- @mention autocomplete -----------------------------------------------------------------
  // The "@" being typed: after the start or a space, up to the caret, letters of a name.
  var TYPING = /(^|[\s(\[])@([^\s@]{0,40})$/;

  function autocomplete(area) {
    var list = document.createElement("ul");
    list.className = "mention-list";
    list.setAttribute("role", "listbox");
    list.id = (area.id || "composer") + "-people";
    list.hidden = true;
    area.parentNode.insertBefore(list, area.nextSibling);
    area.setAttribute("aria-autocomplete", "list");
    area.setAttribute("aria-controls", list.id);
    var items = [], active = -1, asked = 0, start = -1;

    function close() { list.hidden = true; items = []; active = -1; list.textContent = ""; area.removeAttribute("aria-activedescendant"); }

    function mark(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (li, j) { li.setAttribute("aria-selected", j === i ? "true" : "false"); });
      if (i >= 0) area.setAttribute("aria-activedescendant", list.children[i].id);
    }

    function choose(i) {
      var p = items[i];
      if (!p || start < 0) return;
      var caret = area.selectionStart;
      var before = area.value.slice(0, start) + "@" + p.insert + " ";
      area.value = before + area.value.slice(caret);
      area.setSelectionRange(before.length, before.length);
      close();
      area.focus();
    }

    function show(people) {
      items = people;
      list.textContent = "";
      people.forEach(function (p, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.textContent = p.name;
        var small = document.createElement("span");
        small.className = "muted";
        small.textContent = " " + p.email;
        li.appendChild(small);
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
        list.appendChild(li);
      });
      list.hidden = people.length === 0;
      mark(people.length ? 0 : -1);
    }

    area.addEventListener("input", function () {
      var caret = area.selectionStart;
      var m = TYPING.exec(area.value.slice(0, caret));
      if (!m) { close(); return; }
      start = caret - m[2].length - 1;
      var mine = ++asked;
      fetch("/inbox/people?q=" + encodeURIComponent(m[2]), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { people: [] }; })
        .then(function (data) { if (mine === asked) show(data.people || []); })
        .catch(close);
    });
    area.addEventListener("keydown", function (e) {
      if (list.hidden) return;
      if (e.key === "ArrowDown") { e.preventDefault(); e.stopPropagation(); mark((active + 1) % items.length); }
      else if (e.key === "ArrowUp") { e.preventDefault(); e.stopPropagation(); mark((active - 1 + items.length) % items.length); }
      else if (e.key === "Enter" || e.key === "Tab") { if (active >= 0) { e.preventDefault(); e.stopPropagation(); choose(active); } }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
    });
    area.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  function hookComposers(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("textarea[data-mention]"), function (area) {
      if (area.dataset.mentionReady) return;
      area.dataset.mentionReady = "1";
      autocomplete(area);
    });
  }
  hookComposers(document);
  // A composer that arrives later (rendered in place by another script) gets it too.
  if (window.MutationObserver) {
    new MutationObserver(function () { hookComposers(document); }).observe(body, { childList: true, subtree: true });
  }

  // --- the notifications bell -----------------------------------------------------------------
  var bell = document.querySelector("[data-notifications]");
  if (!bell || !window.fetch) return;
  var me = body.dataset.agent;
  var count = bell.querySelector(".bell-count");
  var menu = document.createElement("div");
  menu.className = "bell-menu";
  menu.id = "bell-menu";
  menu.hidden = true;
  bell.parentNode.insertBefore(menu, bell.nextSibling);
  bell.setAttribute("role", "button");
  bell.setAttribute("aria-haspopup", "true");
  bell.setAttribute("aria-expanded", "false");
  bell.setAttribute("aria-controls", menu.id);

  function markRead(ids) {
    var form = new URLSearchParams();
    ids.forEach(function (id) { form.append("id", id); });
    return shared.post("/inbox/notifications/read", form).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) { if (data) render(data); });
  }

  function render(data) {
    count.textContent = String(data.unread);
    count.hidden = !data.unread;
    bell.setAttribute("aria-label", T("notifications-num-unread", "Notifications, %(num)s unread", { num: data.unread }));
    menu.textContent = "";
    var list = document.createElement("ul");
    (data.items || []).forEach(function (n) {
      var li = document.createElement("li");
      li.className = n.read ? "read" : "unread";
      var a = document.createElement("a");
      a.href = n.conversation_id ? "/inbox/c/" + n.conversation_id : "/inbox/notifications/all";
      a.textContent = n.text;
      a.addEventListener("click", function (e) {
        if (n.read) return;
        e.preventDefault();
        markRead([n.id]).then(function () { window.location.href = a.href; });
      });
      li.appendChild(a);
      list.appendChild(li);
    });
    if (!list.children.length) {
      var empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = T("nothing-for-you-yet", "Nothing for you yet.");
      menu.appendChild(empty);
    } else {
      menu.appendChild(list);
    }
    var all = document.createElement("button");
    all.type = "button";
    all.className = "mark-all";
    all.textContent = T("mark-all-read", "Mark all read");
    all.disabled = !data.unread;
    all.addEventListener("click", function () { markRead([]); });
    menu.appendChild(all);
  }

  function refresh() {
    return fetch("/inbox/notifications", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; }).then(function (data) { if (data) render(data); })
      .catch(function () {});
  }

  bell.addEventListener("click", function (e) {
    e.preventDefault();
    menu.hidden = !menu.hidden;
    bell.setAttribute("aria-expanded", menu.hidden ? "false" : "true");
    if (!menu.hidden) refresh();
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !menu.hidden) { menu.hidden = true; bell.setAttribute("aria-expanded", "false"); bell.focus(); }
  });
  document.addEventListener("click", function (e) {
    if (!menu.hidden && !menu.contains(e.target) && !bell.contains(e.target)) { menu.hidden = true; bell.setAttribute("aria-expanded", "false"); }
  });

  refresh();
  if (window.EventSource) {
    var source = new EventSource("/inbox/events");
    source.addEventListener("notification", function (e) {
      try { if (String(JSON.parse(e.data).agent_id) === me) refresh(); } catch (err) { /* not ours to read */ }
    });
    source.addEventListener("hello", refresh);  // on (re)connecting: what came while the stream was down
    source.addEventListener("resync", refresh);
    window.addEventListener("pagehide", function () { source.close(); });
  }
})();
