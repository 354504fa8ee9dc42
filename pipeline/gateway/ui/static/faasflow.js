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

// A refused form is answered with its message and the status the API would give (422,
// 404, 503): swap it in like any answer (htmx leaves 4xx and 5xx out by default).
document.addEventListener("htmx:beforeSwap", (e) => {
  if (e.detail.xhr.status >= 400 && e.detail.xhr.status !== 401) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});

// An htmx search leaves its empty inputs out (empty is the default, as for the API), so
// the address it pushes reads as the search: /ui/invocations?status=failed.
document.addEventListener("htmx:configRequest", (e) => {
  if (e.detail.verb !== "get") return;
  for (const [name, value] of [...e.detail.formData.entries()]) {
    if (value === "") e.detail.formData.delete(name);
  }
});

// A plain form with data-confirm asks before it is sent (hx-confirm does so for htmx's).
document.addEventListener("submit", (e) => {
  const question = e.target.dataset && e.target.dataset.confirm;
  if (question && !window.confirm(question)) e.preventDefault();
});
