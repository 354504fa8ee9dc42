// The overview's charts: uPlot, drawn from the page's history, then fed each sample the
// stream sends. A chart is drawn again when its set of sources or functions changes.
"use strict";
(() => {
  const WINDOW_S = 300;
  const COLORS = ["#3559e0", "#12805c", "#c4320a", "#b54708", "#7a5af8", "#0e9384",
                  "#dd2590", "#667085"];
  const CHARTS = [
    { id: "chart-events", group: "sources", field: "events_per_s" },
    { id: "chart-invocations", group: "functions", field: "invocations_per_s" },
    { id: "chart-errors", group: "functions", field: "error_rate", scale: 100 },
    { id: "chart-lag", group: "sources", field: "lag" },
  ];
  const history = document.getElementById("pulse-history");
  if (!history) return;
  const samples = JSON.parse(history.textContent);
  const drawn = new Map();  // chart id → {keys, plot}

  function keysOf(group) {
    const keys = new Set();
    for (const sample of samples) Object.keys(sample[group] || {}).forEach((k) => keys.add(k));
    return [...keys].sort();
  }

  function dataOf(chart, keys) {
    const value = (sample, key) => {
      const v = ((sample[chart.group] || {})[key] || {})[chart.field];
      return v === undefined || v === null ? null : v * (chart.scale || 1);
    };
    return [samples.map((s) => s.at), ...keys.map((k) => samples.map((s) => value(s, k)))];
  }

  function draw(chart) {
    const element = document.getElementById(chart.id);
    if (!element) return;
    const keys = keysOf(chart.group);
    const data = dataOf(chart, keys);
    // how many samples have a value to draw: for a reader (and a test) to wait on
    element.dataset.points = data[0].filter((_, i) => data.slice(1).some((y) => y[i] !== null))
      .length;
    const old = drawn.get(chart.id);
    if (old && old.keys.join("\n") === keys.join("\n")) {
      old.plot.setData(data);
      return;
    }
    if (old) old.plot.destroy();
    const series = keys.map((key, i) => ({ label: key, stroke: COLORS[i % COLORS.length],
                                           width: 2 }));
    const options = { width: element.clientWidth || 400, height: 200,
                      series: [{}, ...series],
                      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1)] } },
                      axes: [{}, { size: 60 }] };
    drawn.set(chart.id, { keys, plot: new uPlot(options, data, element) });
  }

  function add(sample) {
    samples.push(sample);
    while (samples.length && samples[0].at < sample.at - WINDOW_S) samples.shift();
    CHARTS.forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => CHARTS.forEach(draw));
  // htmx's SSE extension opens the stream (and opens it again after a break): listen there
  document.body.addEventListener("htmx:sseOpen", (e) => {
    e.detail.source.addEventListener("sample", (message) => add(JSON.parse(message.data)));
  });
})();
