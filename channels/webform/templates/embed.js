/* servicehub web form "{{ slug }}". Put this where the form should appear on your site:
 *
 *   <script src={{ script_url|tojson }} async></script>
 *
 * or, to place it in a given element: <div data-servicehub-form={{ slug|tojson }}></div> anywhere
 * on the page plus the script tag. Without JavaScript, link to {{ page_url }} or use
 *
 *   <iframe src={{ frame_url|tojson }} title={{ title|tojson }} style="width:100%;height:60rem;border:0"></iframe>
 */
(function () {
  "use strict";
  var frameUrl = {{ frame_url|tojson }};
  var origin = {{ origin|tojson }};
  var slug = {{ slug|tojson }};
  var frame = document.createElement("iframe");
  frame.src = frameUrl;
  frame.title = {{ title|tojson }};
  frame.style.width = "100%";
  frame.style.height = "60rem";
  frame.style.border = "0";
  var host = document.querySelector('[data-servicehub-form="' + slug + '"]');
  var script = document.currentScript;
  if (host) {
    host.appendChild(frame);
  } else if (script && script.parentNode) {
    script.parentNode.insertBefore(frame, script.nextSibling);
  } else {
    document.body.appendChild(frame);
  }
  // The form page reports its height so the frame fits it without a scroll bar.
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) return;
    var data = event.data;
    if (data && data.type === "servicehub-form-height" && typeof data.height === "number" && data.height > 0) {
      frame.style.height = Math.min(Math.ceil(data.height), 20000) + "px";
    }
  });
})();
