// Shows the count the server streams from /events (server-sent events).
// EventSource reconnects by itself, sending Last-Event-ID, and the server
// goes on from there.
(function () {
  "use strict";
  var target = document.getElementById("counter");
  if (!target || !window.EventSource) {
    return;
  }
  var source = new EventSource("/events");
  source.addEventListener("count", function (event) {
    target.textContent = event.data;
  });
  // Leaving the page: close the stream now rather than when the browser
  // gets round to it (Chromium keeps it open while the page may come back
  // from its back-forward cache).
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
