// The invocations page's live tail: rows from /ui/invocations/tail (Server-Sent Events,
// each a rendered <tr>) go on top of the table; a row already there is replaced.
"use strict";

(() => {
  const KEEP = 500; // rows at most, the oldest dropped
  let source = null;

  function connect() {
    if (source) source.close();
    source = null;
    const live = document.getElementById("live");
    const rows = document.getElementById("invocation-rows");
    if (rows) rows.dataset.live = "off";
    if (!live || !rows || !live.checked) return;
    source = new EventSource(rows.dataset.tail);
    source.addEventListener("open", () => { rows.dataset.live = "open"; });
    source.addEventListener("error", () => { rows.dataset.live = "reconnecting"; });
    source.addEventListener("row", (e) => {
      const holder = document.createElement("tbody");
      holder.innerHTML = e.data;
      const row = holder.firstElementChild;
      document.getElementById(row.id)?.remove();
      rows.prepend(row);
      document.getElementById("no-invocations")?.remove();
      while (rows.children.length > KEEP) rows.lastElementChild.remove();
      htmx.process(row);
      if (typeof localTimes === "function") localTimes(row);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    connect();
    document.getElementById("live")?.addEventListener("change", connect);
  });
  document.addEventListener("htmx:afterSettle", connect); // a new search: its filters
  window.addEventListener("pagehide", () => source?.close());
})();
