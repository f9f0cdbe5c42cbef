// How one event looks: a card in the live feed and a row in the search results. Both share the
// acknowledge control, so an operator acknowledges the same way wherever the alert is found.

import { safeSnapshotUrl } from "./api.js";
import { clipControl } from "./clips.js";
import { formatInstant, h, splitLocalTime } from "./dom.js";
import { named } from "./i18n.js";
import { severity } from "./kinds.js";

export { severity };

const MEASUREMENT_ORDER = ["direction_name", "speed_kmh", "limit_kmh", "dwell_s", "distance_m", "count"];
const MAX_MEASUREMENTS = 4;

export function isInfo(event) {
  return severity(event.kind) === "info";
}

export function eventText(event, lang, t) {
  const texts = event.texts || {};
  return texts[lang] || texts.vi || texts.en || named(t, "kind", event.kind);
}

function formatValue(value) {
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }
  return String(value);
}

/** The measurements with `direction_name` in the page's language: a line whose directions are named per
 *  language sends `direction_name_vi` / `direction_name_en` beside the plain `direction_name`. */
function localMeasurements(event, lang) {
  const m = { ...(event.measurements || {}) };
  const own = m[`direction_name_${lang}`];
  for (const key of Object.keys(m)) {
    if (key.startsWith("direction_name_")) {
      delete m[key];
    }
  }
  if (typeof own === "string" && own) {
    m.direction_name = own;
  }
  return m;
}

/** A few measurements worth a glance (speed, dwell, direction), known keys first, in the language. */
function measurementItems(event, t, lang) {
  const m = localMeasurements(event, lang);
  const keys = Object.keys(m);
  let ordered = [
    ...MEASUREMENT_ORDER.filter((k) => keys.includes(k)),
    ...keys.filter((k) => !MEASUREMENT_ORDER.includes(k)).sort(),
  ];
  if (keys.includes("direction_name")) {
    ordered = ordered.filter((k) => k !== "direction"); // the name says the same, readably
  }
  return ordered.slice(0, MAX_MEASUREMENTS).map((k) => {
    const label = named(t, "m", k);
    return h("li", { class: "measure" }, `${label}: `, h("strong", {}, formatValue(m[k])));
  });
}

function classList(event, t) {
  return (event.classes || []).map((c) => named(t, "class", c)).join(", ");
}

/** The acknowledge button, or who acknowledged and when. `onAck(event, button)` posts the ack. Counting
 *  events (crossings, summaries, occupancy) are information, not alerts: nothing to acknowledge, and the
 *  "unacknowledged" count leaves them out too. */
function ackControl(event, ctx) {
  const { t, lang, canAck, onAck } = ctx;
  if (isInfo(event) && !event.ack) {
    return null;
  }
  if (event.ack) {
    return h("p", { class: "acked", tabindex: "-1" },
      h("span", { class: "tick", "aria-hidden": "true" }, "✓ "),
      t("event.acked", { by: event.ack.by, at: formatInstant(event.ack.at, lang) }),
      event.ack.note ? h("span", { class: "note" }, ` — ${event.ack.note}`) : null);
  }
  if (!canAck) {
    return h("p", { class: "unacked muted" }, t("search.ack.no"));
  }
  const text = eventText(event, lang, t);
  const button = h("button", {
    type: "button", class: "ack", "aria-label": t("event.ack.label", { text }),
  }, t("event.ack"));
  button.addEventListener("click", () => onAck(event, button));
  return button;
}

function thumbnail(event, ctx, size) {
  const url = safeSnapshotUrl(event.snapshot_url);
  const text = eventText(event, ctx.lang, ctx.t);
  if (!url) {
    const key = event.snapshot_expired ? "event.snapshot_expired" : "event.no_snapshot";
    return h("div", { class: `thumb thumb-none ${size}` }, ctx.t(key));
  }
  const img = h("img", {
    src: url, alt: ctx.t("event.snapshot", { text }), width: size === "small" ? 96 : 176,
    height: size === "small" ? 54 : 99, decoding: "async", loading: ctx.lazy ? "lazy" : "eager",
  });
  const button = h("button", {
    type: "button", class: `thumb ${size}`, title: ctx.t("event.snapshot.open"),
    "aria-label": `${ctx.t("event.snapshot.open")}: ${text}`,
  }, img);
  button.addEventListener("click", () => ctx.onOpenSnapshot(event));
  return button;
}

/** A marker on an event whose signature did not check out on arrival (stored under `signatures.policy:
 * flag`): nobody should rely on it as evidence without knowing. Valid or unchecked events show nothing. */
function signatureMarker(event, t) {
  const status = event.sig_status;
  if (!status || status === "valid") return null;
  return h("span", { class: "badge sig-warn", dataset: { sig: status } }, t(`event.sig.${status}`));
}

function timeElement(event) {
  const local = splitLocalTime(event.local_time || event.ts);
  return h("time", { datetime: event.ts }, local.time, " ", h("small", {}, local.date));
}

/** A live-feed card. */
export function renderCard(event, ctx) {
  const { t, lang } = ctx;
  const textId = `text-${event.event_id}`;
  const level = severity(event.kind);
  const classes = classList(event, t);
  const card = h("article", {
    class: `card sev-${level}${event.ack ? " is-acked" : ""}`,
    "aria-labelledby": textId,
    dataset: { eventId: event.event_id, ts: String(Date.parse(event.ts) || 0), kind: event.kind },
  },
  thumbnail(event, ctx, "large"),
  h("div", { class: "card-body" },
    h("div", { class: "card-head" },
      h("span", { class: `badge sev-${level}` }, named(t, "kind", event.kind)),
      event.phase && event.phase !== "instant"
        ? h("span", { class: "badge phase" }, named(t, "phase", event.phase)) : null,
      signatureMarker(event, t),
      timeElement(event)),
    h("p", { class: "text", id: textId }, eventText(event, lang, t)),
    h("ul", { class: "meta" },
      h("li", {}, `${t("event.camera")}: `, h("strong", {}, event.camera), h("span", { class: "muted" }, ` · ${event.node}`)),
      classes ? h("li", {}, `${t("event.classes")}: `, h("strong", {}, classes)) : null,
      typeof event.confidence === "number"
        ? h("li", {}, `${t("event.confidence")}: `, h("strong", {}, `${Math.round(event.confidence * 100)}%`)) : null,
      measurementItems(event, t, lang)),
    h("div", { class: "ack-row" }, ackControl(event, ctx), ...(isInfo(event) || !ctx.canAck ? [] : clipControl(event, ctx)))));
  return card;
}

/** A search-results table row; under 700 px the stylesheet turns rows into labelled blocks. */
export function renderRow(event, ctx) {
  const { t, lang } = ctx;
  const local = splitLocalTime(event.local_time || event.ts);
  const level = severity(event.kind);
  const cell = (key, ...children) => h("td", { "data-label": t(key) }, ...children);
  return h("tr", { class: `sev-${level}${event.ack ? " is-acked" : ""}`, dataset: { eventId: event.event_id } },
    cell("event.time", h("time", { datetime: event.ts }, `${local.date} ${local.time}`)),
    cell("event.kind", h("span", { class: `badge sev-${level}` }, named(t, "kind", event.kind)),
      event.phase && event.phase !== "instant" ? h("span", { class: "badge phase" }, named(t, "phase", event.phase)) : null,
      signatureMarker(event, t)),
    cell("event.camera", event.camera, h("span", { class: "muted" }, ` · ${event.node}`)),
    cell("event.text", eventText(event, lang, t)),
    cell("event.classes", classList(event, t) || "—"),
    cell("event.status", ackControl(event, ctx) || "—"),
    h("td", { class: "cell-thumb" }, thumbnail(event, { ...ctx, lazy: true }, "small")));
}
