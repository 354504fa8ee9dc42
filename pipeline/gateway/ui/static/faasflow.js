// faasflow's dashboard: what htmx does not do by itself.
"use strict";

// Dates are written as RFC 3339 in UTC; show them in the viewer's time zone.
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) {
      el.title = el.getAttribute("datetime");
      el.textContent = at.toLocaleString();
    }
  }
}

document.addEventListener("DOMContentLoaded", () => localTimes(document));
document.addEventListener("htmx:load", (e) => localTimes(e.target));

// A plain form with data-confirm asks before it is sent (hx-confirm does so for htmx's).
document.addEventListener("submit", (e) => {
  const question = e.target.dataset && e.target.dataset.confirm;
  if (question && !window.confirm(question)) e.preventDefault();
});
