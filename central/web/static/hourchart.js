// Hourly count charts, one per counting line, drawn as inline SVG: a chart library would be a download
// the offline station cannot make, and stacked bars over 24 hours are a few dozen rectangles.

import { h, s } from "./dom.js";
import { named } from "./i18n.js";

const HOUR_MS = 3600 * 1000;
const WIDTH = 480;
const HEIGHT = 170;
const PAD = { left: 34, right: 8, top: 10, bottom: 24 };
const SERIES = 4; // colours in style.css (.series-0 .. .series-3); further directions reuse them

/** Round up to 1, 2 or 5 times a power of ten, so grid lines fall on numbers people read at a glance. */
export function niceMax(value) {
  if (value <= 5) {
    return 5;
  }
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) {
      return step * power;
    }
  }
  return 10 * power;
}

/** Group /api/counts rows into lines -> directions -> 24 hourly buckets ending with the current hour. */
export function bucketCounts(items, now = Date.now(), hours = 24) {
  const end = Math.floor(now / HOUR_MS) * HOUR_MS;
  const start = end - (hours - 1) * HOUR_MS;
  const lines = new Map();
  for (const item of items) {
    const at = Date.parse(item.hour);
    if (Number.isNaN(at)) {
      continue;
    }
    const index = Math.floor((at - start) / HOUR_MS);
    if (index < 0 || index >= hours) {
      continue;
    }
    const key = `${item.camera} / ${item.rule}`;
    if (!lines.has(key)) {
      lines.set(key, { key, camera: item.camera, rule: item.rule, directions: new Map(), total: 0 });
    }
    const line = lines.get(key);
    const direction = item.direction ?? "";
    if (!line.directions.has(direction)) {
      line.directions.set(direction, Array.from({ length: hours }, () => ({ count: 0, classes: new Map() })));
    }
    const bucket = line.directions.get(direction)[index];
    const count = Number(item.count) || 0;
    bucket.count += count;
    const cls = item.class ?? "";
    bucket.classes.set(cls, (bucket.classes.get(cls) || 0) + count);
    line.total += count;
  }
  const sorted = [...lines.values()].sort((a, b) => a.key.localeCompare(b.key));
  return { start, hours, lines: sorted };
}

/** The hour of `ms` on the cameras' clock (`offsetMin` east of UTC), or in the browser's zone when unknown. */
function hourLabel(ms, offsetMin) {
  const hour = offsetMin === null ? new Date(ms).getHours() : new Date(ms + offsetMin * 60000).getUTCHours();
  return String(hour).padStart(2, "0");
}

function directionLabel(t, direction) {
  return direction === "" ? t("counts.direction.none") : named(t, "dir", direction);
}

function lineChart(line, start, hours, t, offsetMin) {
  const directions = [...line.directions.keys()].sort();
  const totals = Array.from({ length: hours }, (_, i) =>
    directions.reduce((sum, d) => sum + line.directions.get(d)[i].count, 0));
  const max = niceMax(Math.max(...totals, 0));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / hours;
  const barW = Math.max(2, slot * 0.72);
  const y = (v) => PAD.top + plotH - (v / max) * plotH;

  const titleId = `chart-${line.key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": titleId, class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  }, s("title", { id: titleId }, `${t("counts.chart", { line: line.key })} — ${t("counts.total", { n: line.total })}`));

  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    svg.appendChild(s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    svg.appendChild(s("text", { x: PAD.left - 4, y: y(value) + 4, class: "axis", "text-anchor": "end" },
      String(Math.round(value))));
  }
  for (let i = 0; i < hours; i += 1) {
    const x = PAD.left + i * slot + (slot - barW) / 2;
    let base = 0;
    directions.forEach((direction, series) => {
      const bucket = line.directions.get(direction)[i];
      if (bucket.count === 0) {
        return;
      }
      const classes = [...bucket.classes.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([cls, n]) => `${named(t, "class", cls)} ${n}`)
        .join(", ");
      const hourText = `${hourLabel(start + i * HOUR_MS, offsetMin)}:00`;
      svg.appendChild(s("rect", {
        x, width: barW, y: y(base + bucket.count), height: y(base) - y(base + bucket.count),
        class: `bar series-${series % SERIES}`,
      }, s("title", {}, `${hourText} · ${directionLabel(t, direction)}: ${bucket.count} (${classes})`)));
      base += bucket.count;
    });
    if (i % 3 === 0 || i === hours - 1) {
      svg.appendChild(s("text", { x: PAD.left + i * slot + slot / 2, y: HEIGHT - 6, class: "axis", "text-anchor": "middle" },
        hourLabel(start + i * HOUR_MS, offsetMin)));
    }
  }

  const legend = h("ul", { class: "legend" }, directions.map((direction, series) => {
    const sum = line.directions.get(direction).reduce((acc, b) => acc + b.count, 0);
    return h("li", {}, h("span", { class: `swatch series-${series % SERIES}`, "aria-hidden": "true" }),
      `${directionLabel(t, direction)}: ${sum}`);
  }));
  return h("figure", { class: "count-chart", dataset: { line: line.key } },
    h("figcaption", {}, h("strong", {}, line.key), " ", h("span", { class: "muted" }, t("counts.total", { n: line.total }))),
    svg, legend);
}

/** Replace `container`'s content with one chart per line; hours are labelled on the cameras' clock
 *  (`offsetMin`, minutes east of UTC, as in the events' local times), else in the browser's zone. */
export function renderCounts(container, items, t, now = Date.now(), offsetMin = null) {
  const { start, hours, lines } = bucketCounts(items, now);
  container.replaceChildren();
  if (lines.length === 0) {
    container.appendChild(h("p", { class: "empty" }, t("counts.empty")));
    return;
  }
  for (const line of lines) {
    container.appendChild(lineChart(line, start, hours, t, offsetMin));
  }
}
