// The inbox's one script: live updates (server-sent events), the collision notice, inserting a
// suggestion. Every page works without it: forms post and redirect.
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

    stream("/inbox/events?conversation=" + encodeURIComponent(conversationId), {
      hello: function () {
        // Catch up on what changed between rendering the page and the stream opening (a reply's
        // delivery finishing, say), and on anything missed while the stream was down.
        refreshTimeline();
        body.dataset.live = "on";
      },
      msg: function (ev) {
        if (String(ev.customer_id) === customerId || String(ev.conversation_id) === conversationId) refreshTimeline();
      },
      conv: function (ev) { if (String(ev.conversation_id) === conversationId) refreshTimeline(); },
      delivery: refreshTimeline,
      resync: refreshTimeline,
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
          // Tell the knowledge base its suggestion was used (issue 6's feedback).
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
