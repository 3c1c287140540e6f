// The inbox's one script: live updates (server-sent events), the collision notice, inserting a
// suggestion, the side panel saving each field on its own. Every page works without it: forms
// post and redirect.
(function () {
  "use strict";
  var body = document.body;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function post(url, data) {
    var form = new URLSearchParams(data);
    return fetch(url, {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    });
  }

  // A live region whose server-rendered fragment (every value escaped by the template) is fetched
  // again on news. A new fragment never replaces the old one between a press and the click it
  // makes: the browser drops a click whose press and release landed on different elements, and
  // the agent's click on a conversation, a link or a button would do nothing. It waits for the
  // release and goes in after the click.
  function liveRegion(element, url) {
    var pressed = false, waiting = null, shown = null;
    function show(html) {
      if (html === shown) return;  // unchanged: keep the elements (and the keyboard focus in them)
      if (pressed) { waiting = html; return; }
      shown = html;
      element.innerHTML = html;
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
    return debounce(function () {
      fetch(url(), { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
        if (r.ok) return r.text().then(show);
      });
    }, 250);
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
  function sidePanel(form, conversationId) {
    if (!form) return function () {};
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
      if (status) { status.textContent = state.status; status.className = "status status-" + state.status; }
      if (priority) { priority.textContent = state.priority; priority.className = "prio prio-" + state.priority; }
      return Object.keys(fields).filter(function (f) { return before[f] !== form.elements["was_" + f].value; })
        .map(function (f) { return f + " " + label(f); });
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
        say("Not saved: this conversation changed while you were choosing, and shows its current state now. " +
            "Make your change again if it still holds.", "error");
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
          say("Saved: " + field + " " + label(field) + ".", "saved");
        } else if (r.status === 409 && r.data.state) {
          views += 1;
          show(r.data.state);
          say(r.data.error.message, "error");
        } else {
          select.value = form.elements["was_" + field].value;
          say((r.data.error && r.data.error.message) ||
              (r.signedOut ? "Not saved: your session ended. Reload the page and sign in again."
                           : "Not saved (the hub answered " + r.status + ")."), "error");
        }
      }, function () {
        select.value = form.elements["was_" + field].value;
        say("Not saved: the hub could not be reached. Try again.", "error");
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
          if (changed.length) say("Changed meanwhile: " + changed.join(", ") + ".", "");
        })
        .catch(function () { /* the next news tries again */ });
    }

    return debounce(function () { queue = queue.then(update); }, 250);
  }

  // --- the inbox list -----------------------------------------------------------------------
  if (body.dataset.page === "inbox") {
    var refreshRows = liveRegion(document.getElementById("rows"), function () {
      return "/inbox/rows" + window.location.search;
    });
    // On (re)connecting, fetch once: what changed between rendering the page and the stream
    // opening (or while it was down) is never missed.
    stream("/inbox/events", { msg: refreshRows, conv: refreshRows, resync: refreshRows,
      hello: function () {
        refreshRows();
        body.dataset.live = "on";
      } });
  }

  // --- a conversation -----------------------------------------------------------------------
  if (body.dataset.page === "conversation") {
    var conversationId = body.dataset.conversation;
    var customerId = body.dataset.customer;
    var timeline = document.getElementById("timeline");
    var collision = document.getElementById("collision");
    var reply = document.getElementById("reply-text");

    var refreshTimeline = liveRegion(timeline, function () { return "/inbox/c/" + conversationId + "/timeline"; });

    var typingTimers = {};
    function showViewers(viewers) {
      var me = body.dataset.agent;
      collision.textContent = "";
      viewers.forEach(function (v) {
        if (String(v.agent_id) === me) return;
        var p = document.createElement("p");
        p.textContent = v.name + (v.typing ? " is typing a reply." : " is viewing this conversation.");
        collision.appendChild(p);
        if (v.typing) {
          // The typing flag lapses on its own unless the other page renews it.
          clearTimeout(typingTimers[v.agent_id]);
          typingTimers[v.agent_id] = setTimeout(function () { p.textContent = v.name + " is viewing this conversation."; }, 6500);
        }
      });
    }

    var refreshSide = sidePanel(document.getElementById("side-fields"), conversationId);

    stream("/inbox/events?conversation=" + encodeURIComponent(conversationId), {
      hello: function () {
        // Catch up on what changed between rendering the page and the stream opening (a reply's
        // delivery finishing, say), and on anything missed while the stream was down.
        refreshTimeline();
        refreshSide();
        body.dataset.live = "on";
      },
      msg: function (ev) {
        if (String(ev.customer_id) === customerId || String(ev.conversation_id) === conversationId) refreshTimeline();
        // The hub's own changes (an assignment, a reopening) come with a message in the conversation.
        if (String(ev.conversation_id) === conversationId) refreshSide();
      },
      conv: function (ev) {
        if (String(ev.conversation_id) === conversationId) { refreshTimeline(); refreshSide(); }
      },
      delivery: refreshTimeline,
      resync: function () { refreshTimeline(); refreshSide(); },
      presence: function (ev) { if (String(ev.conversation_id) === conversationId) showViewers(ev.viewers || []); }
    });

    if (reply) {
      var lastBeat = 0;
      reply.addEventListener("input", function () {
        var now = Date.now();
        if (now - lastBeat < 3000) return;
        lastBeat = now;
        post("/inbox/presence", { conversation_id: conversationId, typing: "1" });
      });
    }

    function insert(text) {
      if (!reply) return;
      var start = reply.selectionStart, end = reply.selectionEnd, value = reply.value;
      if (typeof start === "number" && document.activeElement === reply) {
        reply.value = value.slice(0, start) + text + value.slice(end);
      } else {
        reply.value = value ? value.replace(/\s*$/, "") + "\n\n" + text : text;
      }
      reply.focus();
    }

    function wireSuggestions(root) {
      root.querySelectorAll("button.insert-suggestion").forEach(function (button) {
        button.addEventListener("click", function () {
          insert(button.dataset.text);
          button.disabled = true;
          button.textContent = "Inserted";
          // Tell the knowledge base its suggestion was used (the feedback it learns from).
          fetch("/api/v1/conversations/" + conversationId + "/suggestions/feedback", {
            method: "POST", credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
            body: JSON.stringify({ article_id: Number(button.dataset.article), passage_id: button.dataset.passage || null,
                                   verdict: "used" })
          });
        });
      });
      root.querySelectorAll("button.insert-draft").forEach(function (button) {
        button.addEventListener("click", function () { insert(button.dataset.text); });
      });
    }
    wireSuggestions(document);

    // While the knowledge base loads, ask its JSON route again a little later.
    var panel = document.getElementById("suggestions");
    var list = document.getElementById("suggestion-list");
    function loadSuggestions(attempt) {
      fetch("/api/v1/conversations/" + conversationId + "/suggestions", { credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 503 && attempt < 20) { setTimeout(function () { loadSuggestions(attempt + 1); }, 3000); return; }
          if (!r.ok) return;
          return r.json().then(function (data) {
            panel.dataset.status = data.status;
            list.textContent = "";
            if (!data.suggestions || !data.suggestions.length) {
              var p = document.createElement("p");
              p.className = "muted";
              p.textContent = "No confident answer in the knowledge base for this question.";
              list.appendChild(p);
              return;
            }
            var ul = document.createElement("ul");
            ul.className = "suggestion-items";
            data.suggestions.forEach(function (s) {
              var li = document.createElement("li");
              var title = document.createElement("p");
              title.className = "s-title";
              title.textContent = s.title;
              var text = document.createElement("p");
              text.className = "s-text";
              text.textContent = s.snippet;
              var button = document.createElement("button");
              button.type = "button";
              button.className = "insert-suggestion";
              button.dataset.article = s.article_id;
              button.dataset.passage = s.passage_id;
              button.dataset.text = s.snippet;
              button.textContent = "Insert into reply";
              li.appendChild(title); li.appendChild(text); li.appendChild(button);
              ul.appendChild(li);
            });
            list.appendChild(ul);
            wireSuggestions(list);
          });
        });
    }
    if (panel && panel.dataset.status === "loading") setTimeout(function () { loadSuggestions(0); }, 1500);
  }
})();
