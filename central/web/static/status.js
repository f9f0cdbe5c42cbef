// Node and camera health, and the hourly count charts: loaded at login, refreshed on a timer, and
// updated by `node` messages on the live stream.

import * as API from "./api.js";
import { announce, el, fillSelect, state } from "./context.js";
import { h, timeAgo, utcOffsetMinutes } from "./dom.js";
import { renderCounts } from "./hourchart.js";
import { named } from "./i18n.js";

const COUNTS_DEBOUNCE_MS = 4000;

export async function loadNodes() {
  try {
    const data = await API.listNodes();
    state.nodes = new Map(data.items.map((n) => [n.node, n]));
    renderStatus();
    fillSelect(el.searchCamera, knownCameras().map((c) => [c, c]));
  } catch (err) {
    console.warn("loading nodes failed", err);
  }
}

export function knownCameras() {
  const cameras = new Set();
  for (const node of state.nodes.values()) {
    for (const cam of node.cameras || []) {
      cameras.add(cam.camera);
    }
  }
  return [...cameras].sort();
}

function num(value, digits = 0) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

const NODE_ORDER = { offline: 0, stopped: 1, unknown: 2, online: 3 };

/** One table for all nodes: a heading row per node (offline ones first), then its cameras. */
export function renderStatus() {
  const { t, lang } = state;
  const nodes = [...state.nodes.values()].sort((a, b) =>
    (NODE_ORDER[a.state || "unknown"] ?? 2) - (NODE_ORDER[b.state || "unknown"] ?? 2)
    || String(a.node).localeCompare(String(b.node)));
  if (nodes.length === 0) {
    el.status.replaceChildren(h("p", { class: "empty" }, t("status.empty")));
    return;
  }
  const bodies = nodes.map((node) => {
    const nodeState = node.state || "unknown";
    const seen = node.last_seen ? timeAgo(node.last_seen, lang) : t("status.never");
    const rows = (node.cameras || []).map((cam) => {
      const stream = cam.stream_state || "unknown";
      return h("tr", { class: "cam", dataset: { camera: cam.camera } },
        h("th", { scope: "row" }, cam.camera),
        h("td", {}, h("span", { class: `dot stream-${stream}`, "aria-hidden": "true" }), named(t, "stream", stream)),
        h("td", { class: "num" }, num(cam.fps, 1)),
        h("td", { class: "num" }, num(cam.inference_ms, 0)),
        h("td", { class: "num" }, num(cam.dropped_frames, 0)),
        ...(isAdmin() ? [h("td", {}, referenceButton(node, cam.camera))] : []));
    });
    return h("tbody", { class: `node node-${nodeState}`, dataset: { node: node.node } },
      h("tr", { class: "node-row" }, h("th", { scope: "rowgroup", colspan: isAdmin() ? "6" : "5" },
        h("span", { class: `dot node-${nodeState}`, "aria-hidden": "true" }),
        h("strong", {}, node.node), " ",
        h("span", { class: "badge state" }, named(t, "node", nodeState)), " ",
        h("span", { class: "muted small" }, t("status.last_seen", { ago: seen })))),
      rows);
  });
  el.status.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "cams" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, t("status.camera")), h("th", { scope: "col" }, t("status.stream")),
      h("th", { scope: "col", class: "num" }, t("status.fps")),
      h("th", { scope: "col", class: "num" }, t("status.inference")),
      h("th", { scope: "col", class: "num" }, t("status.dropped")),
      ...(isAdmin() ? [h("th", { scope: "col" }, t("status.view"))] : []))),
    bodies)));
}

function isAdmin() {
  return state.user !== null && state.user.role === "admin";
}

/** "Accept the present view": after a technician re-aimed a camera on purpose, its health checks take
 *  a new reference so the "camera moved" alert ends. Only for online nodes (nodes keep no session). */
function referenceButton(node, camera) {
  const button = h("button", { type: "button", class: "small", disabled: node.state !== "online" },
    state.t("status.take_reference"));
  button.title = state.t("status.take_reference.hint");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await API.takeReference(node.node, camera);
      announce(state.t("status.take_reference.sent", { camera }));
      button.textContent = state.t("status.take_reference.sent.short");
    } catch (err) {
      button.disabled = false;
      announce(state.t("status.take_reference.failed", { camera }));
      el.toast.textContent = state.t("status.take_reference.failed", { camera });
      el.toast.hidden = false;
      window.setTimeout(() => { el.toast.hidden = true; }, 5000);
    }
  });
  return button;
}

export async function loadCounts() {
  try {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const data = await API.listCounts({ since });
    state.counts = data.items;
    drawCounts();
  } catch (err) {
    console.warn("loading counts failed", err);
  }
}

export function scheduleCounts() {
  if (state.countsTimer) {
    return;
  }
  state.countsTimer = window.setTimeout(() => {
    state.countsTimer = null;
    loadCounts();
  }, COUNTS_DEBOUNCE_MS);
}

/** The hourly charts of the loaded counts, hours on the cameras' clock. */
export function drawCounts() {
  renderCounts(el.counts, state.counts, state.t, Date.now(), siteOffsetMinutes());
}

/** The cameras' UTC offset, read from the newest event's local time, so the hourly chart labels hours as
 *  the cards show times (the cameras' wall clock), not in the browser's zone; null when no event says. */
export function siteOffsetMinutes() {
  let newest = null;
  for (const event of state.events.values()) {
    if (utcOffsetMinutes(event.local_time) !== null && (!newest || event.ts > newest.ts)) {
      newest = event;
    }
  }
  return newest ? utcOffsetMinutes(newest.local_time) : null;
}
