// The inbox's one script: the workspace (the list beside the open conversation, which opens
// without a page load), live updates (server-sent events), the collision notice, the composer
// posting in place (canned responses with /, suggestions inserted whole), keyboard shortcuts,
// local times, and the side panel saving each field on its own. Every page works without it:
// forms post and redirect.
(function () {
  "use strict";
  // The page's words, its CSRF token and a form post: static/i18n.js, loaded before every page script.
  var shared = window.servicehub, T = shared.T;
  var body = document.body;
  var csrf = shared.csrf, post = shared.post;

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // A live region whose server-rendered fragment (every value escaped by the template) is fetched
  // again on news. A new fragment never replaces the old one between a press and the click it
  // makes: the browser drops a click whose press and release landed on different elements, and
  // the agent's click on a conversation, a link or a button would do nothing. It waits for the
  // release and goes in after the click.
  function liveRegion(element, url, onShow) {
    var pressed = false, waiting = null, shown = null;
    function show(html) {
      if (html === shown) return;  // unchanged: keep the elements (and the keyboard focus in them)
      if (pressed) { waiting = html; return; }
      shown = html;
      element.innerHTML = html;
      if (onShow) onShow(element);
    }
    function released() {
      if (!pressed) return;
      // The click follows the release in the same task: a timeout runs after it.
      setTimeout(function () {
        pressed = false;
        if (waiting !== null) { var html = waiting; waiting = null; show(html); }
      }, 0);
    }
    element.addEventListener("pointerdown", function () { pressed = true; });
    document.addEventListener("pointerup", released);  // the press may end outside the region
    document.addEventListener("pointercancel", released);
    var refresh = debounce(function () {
      var asked = url();
      fetch(asked, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
        // An answer for what the region no longer shows (the list changed to another view meanwhile) is dropped.
        if (r.ok) return r.text().then(function (html) { if (asked === url()) show(html); });
      });
    }, 250);
    refresh.element = element;
    refresh.show = show;  // HTML fetched along with something else (the list pane) goes in the same way
    return refresh;
  }

  function stream(url, handlers) {
    if (!window.EventSource) return null;
    var es = new EventSource(url);
    Object.keys(handlers).forEach(function (name) {
      es.addEventListener(name, function (ev) {
        var data = {};
        try { data = JSON.parse(ev.data); } catch (e) { /* a ping */ }
        handlers[name](data);
      });
    });
    return es;
  }

  // The conversation's side panel (status, priority, assignee): each field saves on its own when
  // it changes, sending that field alone with the version the page shows. A change made on a
  // stale page is refused by the hub (409): the panel then shows the current state and says so.
  // News of the conversation (the live stream) brings the panel up to date. Saves and updates go
  // one after the other, so each save names the version the previous one left.
  function sidePanel(form, conversationId, onSaved) {
    if (!form) { var none = function () {}; none.take = none; return none; }
    var fields = { status: "status", priority: "priority", assignee: "assignee_id" };
    var notice = document.getElementById("side-notice");
    var queue = Promise.resolve();
    var views = 0;  // how many times the panel was replaced by a newer state than the agent chose on
    form.classList.add("saves-on-change");

    function say(text, kind) {
      notice.textContent = text;
      notice.className = "side-notice" + (kind ? " " + kind : "");
    }

    function version() { return Number(form.elements.version.value); }

    function put(field, value, label) {
      var select = form.elements[field];
      var known = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
      if (!known) {  // an assignee this page did not list (deactivated, or new since it loaded)
        var option = document.createElement("option");
        option.value = value;
        option.textContent = label || value;
        select.appendChild(option);
      }
      select.value = value;
      form.elements["was_" + field].value = value;
    }

    function label(field) {
      var select = form.elements[field];
      return select.options[select.selectedIndex] ? select.options[select.selectedIndex].textContent : select.value;
    }

    function show(state) {
      var before = {};
      Object.keys(fields).forEach(function (f) { before[f] = form.elements["was_" + f].value; });
      form.elements.version.value = state.version;
      put("status", state.status);
      put("priority", state.priority);
      put("assignee", state.assignee_id ? String(state.assignee_id) : "none", state.assignee_name);
      var status = document.getElementById("shown-status"), priority = document.getElementById("shown-priority");
      if (status) { status.textContent = T(state.status, state.status); status.className = "status status-" + state.status; }
      if (priority) { priority.textContent = T(state.priority, state.priority); priority.className = "prio prio-" + state.priority; }
      return Object.keys(fields).filter(function (f) { return before[f] !== form.elements["was_" + f].value; })
        .map(function (f) { return T("field-value", "%(field)s %(value)s", { field: T(f, f), value: label(f) }); });
    }

    function answer(response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, ok: response.ok, data: data, signedOut: response.redirected };
      });
    }

    function save(field, value, madeOn) {
      var select = form.elements[field];
      if (madeOn !== views) {
        // The panel showed a newer state after the agent picked this value: their choice was
        // made on what is no longer there.
        select.value = form.elements["was_" + field].value;
        say(T("not-saved-this-conversation-changed", "Not saved: this conversation changed while you were choosing, and shows its current state now. Make your change again if it still holds."), "error");
        return null;
      }
      if (value === form.elements["was_" + field].value) return null;
      var data = { version: form.elements.version.value };
      data[field] = value;
      data["was_" + field] = form.elements["was_" + field].value;
      body.dataset.saving = "on";
      return post(form.action, data).then(answer).then(function (r) {
        if (r.ok && r.data.state) {
          show(r.data.state);
          say(T("saved-field-value", "Saved: %(field)s %(value)s.", { field: T(field, field), value: label(field) }), "saved");
          if (onSaved) onSaved(field, r.data.state);
        } else if (r.status === 409 && r.data.state) {
          views += 1;
          show(r.data.state);
          say(r.data.error.message, "error");
        } else {
          select.value = form.elements["was_" + field].value;
          say((r.data.error && r.data.error.message) ||
              (r.signedOut ? T("not-saved-your-session-ended", "Not saved: your session ended. Reload the page and sign in again.")
                           : T("not-saved-the-hub-answered", "Not saved (the hub answered %(status)s).", { status: r.status })), "error");
        }
      }, function () {
        select.value = form.elements["was_" + field].value;
        say(T("not-saved-the-hub-could", "Not saved: the hub could not be reached. Try again."), "error");
      }).then(function () { body.dataset.saving = "off"; });
    }

    Object.keys(fields).forEach(function (field) {
      form.elements[field].addEventListener("change", function () {
        var value = form.elements[field].value, madeOn = views;
        queue = queue.then(function () { return save(field, value, madeOn); });
      });
    });

    function update() {
      return fetch("/inbox/c/" + conversationId + "/state", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (!state || !(state.version > version())) return;
          views += 1;
          var changed = show(state);
          if (changed.length) say(T("changed-meanwhile-changes", "Changed meanwhile: %(changes)s.", { changes: changed.join(T("comma", ", ")) }), "");
        })
        .catch(function () { /* the next news tries again */ });
    }

    var refresh = debounce(function () { queue = queue.then(update); }, 250);
    // The agent's own change elsewhere on the page (a reply sets the status): the panel takes it
    // in turn, without a notice.
    refresh.take = function (state) {
      queue = queue.then(function () { if (state && state.version > version()) show(state); });
    };
    return refresh;
  }

  // --- times in the agent's time zone ---------------------------------------------------------
  // The server writes <time datetime="ISO"> in UTC; the browser knows the agent's zone. A time the
  // server wrote as a plain date ("2026-12-04 14:05 UTC") or an age ("5 min") is rewritten, relative
  // where that reads better; any other (an SLA label) keeps its words and gains the exact time.
  var ABSOLUTE = /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/, AGE = /^(\d+ (y|mo|d|h|min)|now)$/;
  // Times in the page's language (the agent's choice), not the browser's.
  var pageLang = document.documentElement.lang || undefined;
  var fullFormat = window.Intl ? new Intl.DateTimeFormat(pageLang, { dateStyle: "full", timeStyle: "long" }) : null;
  var shortFormat = window.Intl ? new Intl.DateTimeFormat(pageLang, { dateStyle: "medium", timeStyle: "short" }) : null;
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(pageLang, { numeric: "auto" }) : null;

  function instant(text) {
    var iso = String(text).trim().replace(" ", "T");
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(iso)) iso += "Z";  // a naive time is UTC
    var d = new Date(iso);
    return isNaN(d.getTime()) ? null : d;
  }

  function relativeText(d, now) {
    var seconds = Math.round((d.getTime() - now) / 1000), abs = Math.abs(seconds);
    if (abs < 45) return relative.format(0, "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    return null;
  }

  function localTimes(root) {
    if (!fullFormat) return;
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var d = instant(el.getAttribute("datetime"));
      if (!d) return;
      var kind = el.dataset.shown || (ABSOLUTE.test(el.textContent.trim()) ? "when" : AGE.test(el.textContent.trim()) ? "ago" : "label");
      el.dataset.shown = kind;
      el.title = fullFormat.format(d);
      if (kind === "label") return;
      var rel = relative ? relativeText(d, now) : null;
      el.textContent = rel || (kind === "ago" ? shortFormat.format(d) : shortFormat.format(d));
    });
  }

  // --- the workspace ------------------------------------------------------------------------
  var workspace = window.workspace = window.workspace || {};
  var rows = document.getElementById("rows");
  var paneEl = document.getElementById("conversation-pane");
  var statusLine = document.getElementById("workspace-status");
  var statusTimer = null;
  var current = null;        // what the open conversation's script needs: id, refreshers
  var lastIndex = -1;        // the open conversation's place in the list (it may leave the view)
  var following = [];        // the ids listed after it when it was last seen there
  var es = null;
  var openHooks = [];

  // A short notice over both panes (the list's own may be hidden on a phone); it fades on its own.
  function say(text) {
    if (!statusLine) return;
    statusLine.textContent = text;
    clearTimeout(statusTimer);
    if (text) statusTimer = setTimeout(function () { statusLine.textContent = ""; }, 8000);
  }

  function listQuery() { return body.dataset.listQuery || ""; }
  function listUrl() { return "/inbox" + (listQuery() ? "?" + listQuery() : ""); }
  function conversationUrl(id) { return "/inbox/c/" + id + (listQuery() ? "?" + listQuery() : ""); }

  function rowList() { return rows ? Array.prototype.slice.call(rows.querySelectorAll("tr[data-id]")) : []; }

  function markCurrent() {
    rowList().forEach(function (tr, i) {
      var on = current && tr.dataset.id === String(current.id);
      tr.classList.toggle("current", !!on);
      if (on) { tr.setAttribute("aria-current", "true"); lastIndex = i; } else tr.removeAttribute("aria-current");
    });
    var list = rowList();
    if (current && list[lastIndex] && list[lastIndex].dataset.id === String(current.id)) {
      following = list.slice(lastIndex + 1).map(function (tr) { return tr.dataset.id; });
    }
  }

  var refreshRows = rows ? liveRegion(rows, function () { return "/inbox/rows" + (listQuery() ? "?" + listQuery() : ""); },
    function (el) { markCurrent(); localTimes(el); }) : function () {};

  function listen() {
    if (es) es.close();
    var id = current ? current.id : null;
    es = stream("/inbox/events" + (id ? "?conversation=" + encodeURIComponent(id) : ""), {
      hello: function () {
        // Catch up on what changed between rendering the page and the stream opening, and on
        // anything missed while the stream was down.
        refreshRows();
        if (current) { current.refreshTimeline(); current.refreshSide(); }
        body.dataset.live = "on";
      },
      msg: function (ev) {
        refreshRows();
        if (!current) return;
        if (String(ev.customer_id) === current.customerId || String(ev.conversation_id) === current.id) current.refreshTimeline();
        // The hub's own changes (an assignment, a reopening) come with a message in the conversation.
        if (String(ev.conversation_id) === current.id) current.refreshSide();
      },
      conv: function (ev) {
        refreshRows();
        if (current && String(ev.conversation_id) === current.id) { current.refreshTimeline(); current.refreshSide(); }
      },
      delivery: function () { if (current) current.refreshTimeline(); },
      resync: function () { refreshRows(); if (current) { current.refreshTimeline(); current.refreshSide(); } },
      presence: function (ev) { if (current && String(ev.conversation_id) === current.id) current.showViewers(ev.viewers || []); }
    });
  }

  function showPane(which) { body.dataset.pane = which; }

  // Open a conversation beside the list: its panes are fetched and put in place, the address
  // changes (it stays shareable), the list and the stream follow.
  function open(id, options) {
    options = options || {};
    id = String(id);
    body.dataset.loading = "on";
    return fetch("/inbox/c/" + id + "/pane", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected && r.url.indexOf("/inbox/login") !== -1) { window.location.href = r.url; return; }
        return r.text().then(function (html) {
          if (!r.ok) { say(errorText(html, r.status)); return; }
          paneEl.innerHTML = html;
          var root = document.getElementById("conversation");
          setup(root);
          if (options.push !== false) remember({ conversation: id }, conversationUrl(id));
          document.title = root.dataset.title + " · servicehub";
          showPane("conversation");
          if (window.matchMedia && window.matchMedia("(max-width: 820px)").matches) window.scrollTo(0, 0);
          say("");
          if (options.focus !== false) {
            var heading = document.getElementById("conv-title");
            if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
          }
        });
      }, function () { say(T("the-conversation-could-not-be", "The conversation could not be loaded: the hub could not be reached.")); })
      .then(function () { body.dataset.loading = "off"; });
  }

  function showList(push) {
    showPane("list");
    if (push) remember({ list: true }, listUrl());
    var row = rowList()[Math.max(0, lastIndex)];
    var link = row && row.querySelector("a[href^='/inbox/c/']");
    if (link) link.focus({ preventScroll: false });
  }

  // After a resolve or a snooze: the next conversation of the view (the one below, or the one
  // that took the open conversation's place when it left the view).
  function openNext() {
    var list = rowList(), i = -1;
    if (current) list.forEach(function (tr, n) { if (tr.dataset.id === String(current.id)) i = n; });
    var next = i >= 0 ? list[i + 1] : null;
    if (i < 0) {
      // It left the view (and others above it may have): the first still listed of those after it.
      var byId = {};
      list.forEach(function (tr) { byId[tr.dataset.id] = tr; });
      for (var n = 0; n < following.length && !next; n++) next = byId[following[n]] || null;
      if (!next && !following.length) next = list[Math.min(Math.max(0, lastIndex), list.length - 1)] || null;
    }
    if (!next) { say(T("no-more-conversations-in-this", "No more conversations in this view.")); showList(true); return null; }
    open(next.dataset.id);
    return next.dataset.id;
  }

  function step(delta) {
    var list = rowList();
    if (!list.length) return;
    var i = -1;
    if (current) list.forEach(function (tr, n) { if (tr.dataset.id === String(current.id)) i = n; });
    if (i < 0) i = delta > 0 ? (current ? lastIndex - 1 : -1) : (current ? lastIndex : list.length);
    var target = list[Math.min(list.length - 1, Math.max(0, i + delta))];
    if (target && (!current || target.dataset.id !== String(current.id))) open(target.dataset.id);
  }

  workspace.open = open;
  workspace.openNext = openNext;
  // s: the open conversation's snooze control (its header) takes the focus; after a snooze the
  // conversation leaves the view and the next one opens, as after a resolve.
  workspace.snooze = function () {
    var preset = document.getElementById("snooze-preset");
    if (!preset) { say("Snooze is not available here."); return; }
    showPane("conversation");
    preset.focus();
  };
  document.addEventListener("conversation:snoozed", function () { if (refreshRows) refreshRows(); openNext(); });
  workspace.showList = function () { showList(true); };
  workspace.current = function () { return current ? current.id : null; };
  workspace.refreshList = refreshRows;
  // Another view, filter, sort or page of the list in place (view=mine&q=...): its pane is fetched
  // and put beside the conversation, which stays open; the address follows.
  workspace.setListQuery = function (query, options) { return loadList(query, options); };
  // The customer panel (customer.js) changed the customer: whom the reply goes to may have changed.
  document.addEventListener("customer-panel-changed", function (ev) {
    if (current && current.refreshRecipient && (!ev.detail || String(ev.detail.customer) === current.customerId)) current.refreshRecipient();
  });
  workspace.refreshConversation = function () { if (current) { current.refreshTimeline(); current.refreshSide(); } };
  // Other parts of the page (the customer panel) wire their own elements each time a conversation opens.
  workspace.onOpen = function (fn) { openHooks.push(fn); if (current) fn(current.root, current.id); };
  workspace.say = say;

  // A new history entry (or, push false, the current one) for the address, with the list's query
  // in its state so back and forward show the same list. The language switch comes back here.
  function remember(state, url, push) {
    state.listQuery = listQuery();
    if (push === false) history.replaceState(state, "", url); else history.pushState(state, "", url);
    var next = document.querySelector("form.language input[name=next]");
    if (next) next.value = url;
  }

  function here() {
    return current && body.dataset.pane === "conversation" ? conversationUrl(current.id) : listUrl();
  }

  // The focused element's place in a part of the list pane that is about to be replaced: the same
  // place in the new part takes the focus (the view link pressed, the filter changed).
  var FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea";
  function focusPlace(root) {
    var active = document.activeElement;
    if (!active || active === document.body) return null;
    var part = active.closest ? active.closest("[data-list-part]") : null;
    if (!part || !root.contains(part)) return null;
    return { part: part.dataset.listPart, index: Array.prototype.indexOf.call(part.querySelectorAll(FOCUSABLE), active) };
  }

  var listAsked = 0;
  function loadList(query, options) {
    options = options || {};
    query = String(query || "").replace(/^\?/, "");
    var pane = document.getElementById("list-pane"), mine = ++listAsked;
    if (!pane) { body.dataset.listQuery = query; refreshRows(); return Promise.resolve(); }
    body.dataset.listLoading = "on";
    return fetch("/inbox/list" + (query ? "?" + query : ""), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected && r.url.indexOf("/inbox/login") !== -1) { window.location.href = r.url; return; }
        return r.text().then(function (html) {
          if (mine !== listAsked) return;  // the agent asked for another list meanwhile
          if (!r.ok) { say(errorText(html, r.status)); return; }  // a refused filter: the list stays as it was
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-list-pane]");
          if (!fresh) return;
          var place = options.focus === false ? null : focusPlace(pane);
          pane.querySelectorAll("[data-list-part]").forEach(function (old) {
            var part = fresh.querySelector('[data-list-part="' + old.dataset.listPart + '"]');
            if (part) old.replaceWith(document.importNode(part, true));
          });
          var back = fresh.querySelector("#bulk input[name=back]"), ourBack = pane.querySelector("#bulk input[name=back]");
          if (back && ourBack) ourBack.value = back.value;
          body.dataset.listQuery = fresh.dataset.listQuery || "";
          var freshRows = fresh.querySelector("#rows");
          if (freshRows && refreshRows.show) refreshRows.show(freshRows.innerHTML);
          if (!current) document.title = fresh.dataset.title + " · servicehub";
          if (options.push !== false) remember(current ? { conversation: current.id } : { list: true }, here());
          document.dispatchEvent(new CustomEvent("workspace:list", { detail: { query: listQuery() } }));
          localTimes(pane);
          if (options.focus === false) return;
          var target = null;
          if (place && !options.toRows) {
            var now = pane.querySelector('[data-list-part="' + place.part + '"]');
            target = now && now.querySelectorAll(FOCUSABLE)[place.index];
          }
          if (!target) {
            // The next page, or a link that went away with its part: the first conversation of the list.
            target = pane.querySelector("#rows a[href^='/inbox/c/']");
            pane.scrollTop = 0;
          }
          if (!target) return;
          target.focus({ preventScroll: !options.toRows });
          // A search field taken over: the caret at the end of the words, where the agent was typing.
          if (target.tagName === "INPUT" && /^(search|text)$/.test(target.type)) target.setSelectionRange(target.value.length, target.value.length);
        });
      }, function () { say(T("the-list-could-not-be", "The list could not be loaded: the hub could not be reached.")); })
      .then(function () { body.dataset.listLoading = "off"; });
  }

  function errorText(html, status) {
    try {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var main = doc.querySelector("main") || doc.body;
      var text = (main.textContent || "").replace(/\s+/g, " ").trim();
      if (text) return text;
    } catch (e) { /* fall through */ }
    return T("the-hub-answered-status", "The hub answered %(status)s.", { status: status });
  }

  function jsonError(r) {
    return r.json().then(function (data) {
      return (data.error && data.error.message) || T("the-hub-answered-status", "The hub answered %(status)s.", { status: r.status });
    }, function () { return T("the-hub-answered-status", "The hub answered %(status)s.", { status: r.status }); });
  }

  // --- the open conversation ------------------------------------------------------------------
  function setup(root) {
    if (!root) { current = null; markCurrent(); listen(); return; }
    var conversationId = root.dataset.conversation;
    var timeline = root.querySelector("#timeline");
    var collision = root.querySelector("#collision");
    var reply = root.querySelector("#reply-text");
    var note = root.querySelector("#note-text");
    var sideForm = root.querySelector("#side-fields");

    var typingTimers = {};
    function showViewers(viewers) {
      var me = body.dataset.agent;
      collision.textContent = "";
      viewers.forEach(function (v) {
        if (String(v.agent_id) === me) return;
        var p = document.createElement("p");
        p.textContent = (v.typing ? T("name-is-typing-a-reply", "%(name)s is typing a reply.", { name: v.name })
                               : T("name-is-viewing-this-conversation", "%(name)s is viewing this conversation.", { name: v.name }));
        collision.appendChild(p);
        if (v.typing) {
          // The typing flag lapses on its own unless the other page renews it.
          clearTimeout(typingTimers[v.agent_id]);
          typingTimers[v.agent_id] = setTimeout(function () { p.textContent = T("name-is-viewing-this-conversation", "%(name)s is viewing this conversation.", { name: v.name }); }, 6500);
        }
      });
    }

    following = []; lastIndex = -1;
    current = {
      id: conversationId, customerId: root.dataset.customer, root: root, showViewers: showViewers,
      refreshTimeline: liveRegion(timeline, function () { return "/inbox/c/" + conversationId + "/timeline"; },
                                  function (el) { localTimes(el); wireForms(el); }),
      refreshSide: sidePanel(sideForm, conversationId, function (field, state) {
        root.dataset.status = state.status;
        if (field === "status" && (state.status === "resolved" || state.status === "closed")) openNext();
      })
    };
    markCurrent();
    listen();
    localTimes(root);

    var lastBeat = 0;
    function typing() {
      var now = Date.now();
      if (now - lastBeat < 3000) return;
      lastBeat = now;
      post("/inbox/presence", { conversation_id: conversationId, typing: "1" });
    }

    // Whom the reply goes to follows the channel chosen.
    function wireChannel() {
      var channelSelect = root.querySelector("#reply-channel");
      if (!channelSelect) return;
      channelSelect.addEventListener("change", function () {
        var option = channelSelect.options[channelSelect.selectedIndex];
        root.querySelector("#reply-to .recipient").textContent = option.dataset.address;
        root.querySelector("#reply-to .reply-channel").textContent = option.dataset.label || option.value;
      });
    }

    function insertAt(area, text, from, to) {
      var value = area.value;
      if (typeof from !== "number") {
        if (document.activeElement === area && typeof area.selectionStart === "number") {
          from = area.selectionStart; to = area.selectionEnd;
        } else {
          // Not at a cursor: after what is written, a paragraph apart.
          area.value = value ? value.replace(/\s*$/, "") + "\n\n" + text : text;
          area.focus();
          area.setSelectionRange(area.value.length, area.value.length);
          return;
        }
      }
      area.value = value.slice(0, from) + text + value.slice(to);
      area.focus();
      area.setSelectionRange(from + text.length, from + text.length);
    }

    // Reply and note post in place: the timeline refreshes, the text box empties, a refusal shows
    // beside the form and the text stays.
    function wireCompose(form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var area = form.querySelector("textarea"), error = form.querySelector(".form-error");
        var button = form.querySelector("button[type=submit]");
        error.textContent = "";
        button.disabled = true;
        post(form.action, new URLSearchParams(new FormData(form))).then(function (r) {
          if (r.ok && !r.redirected) {
            area.value = "";
            r.json().then(function (data) { current.refreshSide.take(data.state); }, function () { current.refreshSide(); });
            current.refreshTimeline();
            say(form.id === "reply-form" ? T("reply-sent", "Reply sent.") : T("note-added", "Note added."));
            return;
          }
          if (r.redirected) { error.textContent = T("not-sent-your-session-ended", "Not sent: your session ended. Sign in again in another tab, then send."); return; }
          return jsonError(r).then(function (text) { error.textContent = T("not-sent-problem", "Not sent: %(problem)s", { problem: text }); });
        }, function () { error.textContent = T("not-sent-the-hub-could", "Not sent: the hub could not be reached. Try again."); })
          .then(function () { button.disabled = false; });
      });
    }

    // Canned responses: the picker without script loads the page with the text; with it, the
    // text goes in at the cursor. In the reply box, "/" opens them inline.
    var macroData = root.querySelector("#macro-data");
    var macroList = [];
    try { macroList = JSON.parse(macroData ? macroData.textContent : "[]"); } catch (e) { macroList = []; }
    var pick = root.querySelector("form.macro-pick");
    if (pick) {
      pick.addEventListener("submit", function (ev) {
        if (!reply) return;  // no reply form: the picker loads the page, which says why
        ev.preventDefault();
        var id = Number(pick.elements.macro.value);
        var m = macroList.filter(function (x) { return x.id === id; })[0];
        if (m) insertAt(reply, m.body);
      });
    }

    // The reply form's own parts: typing news, the channel, posting in place, "/" for canned responses.
    function wireReply(form) {
      reply = form.querySelector("#reply-text");
      reply.addEventListener("input", typing);
      wireChannel();
      wireCompose(form);
      if (macroList.length) macroMenu(reply, macroList, insertAt);
    }
    var replyForm = root.querySelector("#reply-form");
    if (replyForm) wireReply(replyForm);
    root.querySelectorAll("form.compose-form:not(#reply-form)").forEach(wireCompose);

    // Whom the reply goes to, again: after the customer panel added (or took away) an address.
    // Where a reply form is, only its recipient part changes (the draft and the channel chosen
    // stay, when that channel can still receive; when none can, the draft stays behind the
    // notice); where there was none, the form comes in.
    current.refreshRecipient = function () {
      return fetch("/inbox/c/" + conversationId + "/recipient", { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var part = root.querySelector("#reply-part");
          if (html === null || !part || !root.isConnected) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("#reply-part");
          if (!fresh) return;
          fresh = document.importNode(fresh, true);
          var form = part.querySelector("#reply-form"), freshForm = fresh.querySelector("#reply-form");
          var notice = part.querySelector(".no-channel");
          if (form && !freshForm) {
            // No channel can receive any more (an address taken away): the draft stays, the
            // notice says why, and the form cannot send until an address is back.
            if (notice) notice.remove();
            var why = fresh.querySelector(".no-channel");
            if (why) form.parentNode.insertBefore(why, form);
            form.querySelector("#reply-recipient").hidden = true;
            form.querySelector("button[type=submit]").disabled = true;
            return;
          }
          if (form && freshForm) {
            if (notice) notice.remove();
            form.querySelector("button[type=submit]").disabled = false;
            var select = form.querySelector("#reply-channel"), chosen = select ? select.value : null;
            form.querySelector("#reply-recipient").replaceWith(freshForm.querySelector("#reply-recipient"));
            var now = form.querySelector("#reply-channel");
            if (chosen && now && Array.prototype.some.call(now.options, function (o) { return o.value === chosen; })) {
              now.value = chosen;
              var option = now.options[now.selectedIndex];
              form.querySelector("#reply-to .recipient").textContent = option.dataset.address;
              form.querySelector("#reply-to .reply-channel").textContent = option.dataset.label || option.value;
            }
            wireChannel();
            return;
          }
          part.replaceWith(fresh);
          if (freshForm) wireReply(freshForm); else reply = null;
        });
    };

    wireSuggestions(root, function () { return reply; }, insertAt, conversationId);
    wireForms(root);
    openHooks.forEach(function (fn) { try { fn(root, conversationId); } catch (e) { /* a hook never breaks the page */ } });
  }

  // The "/" menu of canned responses at the cursor: filtered as the agent types after the "/",
  // arrows to choose, Enter or a click inserts in place of "/words", Escape closes; the draft stays.
  function macroMenu(area, list, insertAt) {
    var menu = document.createElement("ul");
    menu.className = "macro-menu";
    menu.id = "macro-menu";
    menu.setAttribute("role", "listbox");
    menu.setAttribute("aria-label", T("canned-responses", "Canned responses"));
    menu.hidden = true;
    area.parentNode.insertBefore(menu, area.nextSibling);
    area.setAttribute("aria-controls", "macro-menu");
    var start = -1, shown = [], active = 0;

    function close() { menu.hidden = true; start = -1; area.removeAttribute("aria-activedescendant"); }

    function render() {
      menu.textContent = "";
      shown.forEach(function (m, i) {
        var li = document.createElement("li");
        li.id = "macro-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", i === active ? "true" : "false");
        li.textContent = m.name;
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(i); });
        menu.appendChild(li);
      });
      if (shown.length) area.setAttribute("aria-activedescendant", "macro-option-" + active);
    }

    function update() {
      var pos = area.selectionStart, text = area.value.slice(0, pos);
      var slash = text.lastIndexOf("/");
      // A "/" at the start of a line or after a space, with no line break since.
      if (slash < 0 || (slash > 0 && !/\s/.test(text.charAt(slash - 1))) || /\n/.test(text.slice(slash)) || pos - slash > 40) {
        close(); return;
      }
      var query = text.slice(slash + 1).toLowerCase();
      shown = list.filter(function (m) { return m.name.toLowerCase().indexOf(query) !== -1; });
      if (!shown.length) { close(); return; }
      start = slash;
      active = Math.min(active, shown.length - 1);
      menu.hidden = false;
      render();
    }

    function choose(i) {
      var m = shown[i];
      if (!m) return;
      var from = start, to = area.selectionStart;
      close();
      insertAt(area, m.body, from, to);
    }

    area.addEventListener("input", function () { active = 0; update(); });
    area.addEventListener("keydown", function (ev) {
      if (menu.hidden) return;
      if (ev.key === "ArrowDown") { active = (active + 1) % shown.length; render(); ev.preventDefault(); }
      else if (ev.key === "ArrowUp") { active = (active + shown.length - 1) % shown.length; render(); ev.preventDefault(); }
      else if (ev.key === "Enter" || ev.key === "Tab") { choose(active); ev.preventDefault(); }
      else if (ev.key === "Escape") { close(); ev.preventDefault(); ev.stopPropagation(); }
    });
    area.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  // Knowledge-base suggestions: "Insert" puts the whole passage in as clean text and records
  // "used"; "Not helpful" records that. While the knowledge base loads, the panel asks again.
  function wireSuggestions(root, replyBox, insertAt, conversationId) {
    var panel = root.querySelector("#suggestions");
    var list = root.querySelector("#suggestion-list");
    function feedback(button, verdict) {
      return fetch("/api/v1/conversations/" + conversationId + "/suggestions/feedback", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ article_id: Number(button.dataset.article), passage_id: button.dataset.passage || null, verdict: verdict })
      });
    }
    function wire(scope) {
      scope.querySelectorAll("button.insert-suggestion").forEach(function (button) {
        button.addEventListener("click", function () {
          if (replyBox()) insertAt(replyBox(), button.dataset.text);
          button.disabled = true;
          button.textContent = T("inserted", "Inserted");
          feedback(button, "used");
        });
      });
      scope.querySelectorAll("button.unhelpful-suggestion").forEach(function (button) {
        button.addEventListener("click", function () {
          button.disabled = true;
          feedback(button, "not_helpful").then(function (r) {
            button.textContent = r.ok ? T("marked-not-helpful", "Marked not helpful") : T("not-recorded-status", "Not recorded (%(status)s)", { status: r.status });
            if (!r.ok) button.disabled = false;
          }, function () { button.disabled = false; button.textContent = T("not-recorded-try-again", "Not recorded: try again"); });
        });
      });
      scope.querySelectorAll("button.insert-draft").forEach(function (button) {
        button.addEventListener("click", function () { if (replyBox()) insertAt(replyBox(), button.dataset.text); });
      });
    }
    wire(root);
    function load(attempt) {
      fetch("/inbox/c/" + conversationId + "/suggestions", { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || !list.isConnected) return;
          list.innerHTML = html;
          var loading = list.querySelector("[data-status='loading']");
          panel.dataset.status = loading ? "loading" : "done";
          wire(list);
          if (loading && attempt < 40) setTimeout(function () { load(attempt + 1); }, 3000);
        });
    }
    if (panel && panel.dataset.status === "loading") setTimeout(function () { load(0); }, 1500);
  }

  // Every other form of the conversation (escalate, retry, move, merge, undo, link codes) posts in
  // place too: the conversation it leads to opens, a refusal shows beside the form.
  function wireForms(scope) {
    scope.querySelectorAll("form[method=post]").forEach(function (form) {
      if (form.classList.contains("compose-form") || form.id === "side-fields" || form.dataset.wired) return;
      // The tag and snooze editor (list.js) and the customer panel (customer.js) post their own forms.
      if (form.closest("#tag-editor, [data-customer-panel]")) return;
      form.dataset.wired = "on";
      form.addEventListener("submit", function (ev) {
        if (ev.defaultPrevented) return;  // another script handles this form
        ev.preventDefault();
        var error = form.querySelector(".form-error");
        if (!error) {
          error = document.createElement("p");
          error.className = "form-error";
          error.setAttribute("role", "alert");
          form.appendChild(error);
        }
        error.textContent = "";
        var resolving = form.hasAttribute("data-resolve-control");
        if (resolving) {
          // On the version the side panel shows now (live news moves it on after the page loaded).
          var side = document.getElementById("side-fields");
          if (side && side.elements.version) form.elements.version.value = side.elements.version.value;
        }
        // The pressed button's name and value (the survey choice) go along, as a plain post would send them.
        post(form.action, new URLSearchParams(new FormData(form, ev.submitter || null)), "text/html").then(function (r) {
          var path = new URL(r.url).pathname, match = /^\/inbox\/c\/(\d+)$/.exec(path);
          if (r.ok && resolving) { if (refreshRows) refreshRows(); return openNext(); }
          if (r.ok && match) return open(match[1], { push: !current || match[1] !== current.id, focus: false });
          if (r.ok) { window.location.href = r.url; return; }
          return r.text().then(function (html) { error.textContent = errorText(html, r.status); });
        }, function () { error.textContent = T("not-done-the-hub-could", "Not done: the hub could not be reached. Try again."); });
      });
    });
  }

  // --- links, history, keys -------------------------------------------------------------------
  if (paneEl) {
    document.addEventListener("click", function (ev) {
      if (ev.defaultPrevented || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
      var a = ev.target.closest ? ev.target.closest("a[href]") : null;
      if (!a || a.target || a.hasAttribute("download")) return;
      var url = new URL(a.href, window.location.href);
      if (url.origin !== window.location.origin) return;
      if (a.classList.contains("back-to-list")) { ev.preventDefault(); showList(true); return; }
      if (url.pathname === "/inbox" && url.search && !url.hash) {
        // Another view, sort, tag or page of the list: in place, the conversation stays open.
        ev.preventDefault();
        var inList = a.closest("#list-pane");
        if (!inList && window.matchMedia && window.matchMedia("(max-width: 820px)").matches) showPane("list");
        loadList(url.search, { toRows: a.classList.contains("next") || !inList });
        return;
      }
      var match = /^\/inbox\/c\/(\d+)$/.exec(url.pathname);
      if (!match || url.search) return;  // ?macro= and the like load the page as the link says
      ev.preventDefault();
      if (current && match[1] === current.id) {
        // Already open (a phone showed the list): back to it, the draft kept, the address its own.
        if (body.dataset.pane !== "conversation") { showPane("conversation"); remember({ conversation: current.id }, conversationUrl(current.id)); }
        return;
      }
      open(match[1]).then(function () {
        if (url.hash) { var target = document.getElementById(url.hash.slice(1)); if (target) target.scrollIntoView(); }
      });
    });

    // The filter form: in place too; a choice in one of its lists applies at once.
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (ev.defaultPrevented || !form.matches || !form.matches("#list-pane form.filters")) return;
      ev.preventDefault();
      loadList(new URLSearchParams(new FormData(form)).toString());
    });
    var applyFilters = debounce(function () {
      var form = document.querySelector("#list-pane form.filters");
      if (form) loadList(new URLSearchParams(new FormData(form)).toString());
    }, 200);
    document.addEventListener("change", function (ev) {
      if (ev.target.tagName === "SELECT" && ev.target.closest("#list-pane form.filters")) applyFilters();
    });

    window.addEventListener("popstate", function (ev) {
      var state = ev.state || {};
      var match = /^\/inbox\/c\/(\d+)$/.exec(window.location.pathname);
      var query = typeof state.listQuery === "string" ? state.listQuery : window.location.search.replace(/^\?/, "");
      if (query !== listQuery()) loadList(query, { push: false, focus: false });
      if (match && current && match[1] === current.id) showPane("conversation");
      else if (match) open(match[1], { push: false });
      else showPane("list");
    });
    remember(current ? { conversation: current.id } : { list: true }, window.location.href, false);

    var dialog = document.getElementById("shortcuts");
    function editing(el) {
      if (!el) return false;
      var tag = el.tagName;
      return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
    }
    function setSide(field, value) {
      var form = current && current.root.querySelector("#side-fields");
      var select = form && form.elements[field];
      if (!select) return false;
      if (select.value === value) return true;
      select.value = value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    }
    document.addEventListener("keydown", function (ev) {
      if (ev.defaultPrevented || ev.isComposing) return;
      var key = ev.key;
      if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && !ev.shiftKey && key.toLowerCase() === "k") {
        var q = document.getElementById("q");
        if (q) { ev.preventDefault(); showPane("list"); q.focus(); q.select(); }
        return;
      }
      if (ev.ctrlKey || ev.metaKey || ev.altKey || editing(ev.target)) return;
      if (dialog && dialog.open) return;  // the dialog closes on Escape by itself
      var done = true;
      if (key === "j") step(1);
      else if (key === "k") step(-1);
      else if (key === "r" || key === "n") {
        var box = current && current.root.querySelector(key === "r" ? "#reply-text" : "#note-text");
        if (!box && key === "r" && current) box = current.root.querySelector("#note-text");
        if (box) { showPane("conversation"); box.focus(); } else done = false;
      } else if (key === "a") {
        if (!current || !setSide("assignee", body.dataset.agent)) done = false;
      } else if (key === "e") {
        // The resolve control's own button, so the agent's resolve says what happens to the survey.
        var resolveButton = current && current.root.querySelector("[data-resolve-control] button.resolve");
        if (resolveButton) resolveButton.click();
        else if (!current || !setSide("status", "resolved")) done = false;
      } else if (key === "s") {
        if (!current) done = false;
        else if (typeof workspace.snooze === "function") workspace.snooze(current.id);
        else say(T("snooze-is-not-available-here", "Snooze is not available here yet."));
      } else if (key === "/") {
        var search = document.getElementById("q");
        if (search) { showPane("list"); search.focus(); } else done = false;
      } else if (key === "?") {
        if (dialog && dialog.showModal) dialog.showModal(); else done = false;
      } else done = false;
      if (done) ev.preventDefault();
    });

    setup(document.getElementById("conversation"));
    setInterval(function () { localTimes(document); }, 60000);
  }
  localTimes(document);
})();
