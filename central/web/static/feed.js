// The live alert feed: cards newest first, fed by server-sent events, with one-click acknowledge.
// A reconnect refetches the newest events, so nothing published while the stream was down is missed.

import * as API from "./api.js";
import { eventText, isInfo, renderCard, severity } from "./cards.js";
import { announce, cardActions, cardContext, el, state } from "./context.js";
import { formatInstant } from "./dom.js";
import { KINDS } from "./i18n.js";
import { updateSearchRow } from "./search.js";
import { drawCounts, loadNodes, renderStatus, scheduleCounts } from "./status.js";

const FEED_LIMIT = 200; // alert cards kept in the live feed; older ones are on the search page
const INFO_LIMIT = 40; // counting events (line crossings) kept beside them; the chart has the totals
const FEED_FETCH = 200;
const STREAM_REOPEN_MS = 5000;

// The cards' actions live here; search.js renders cards too and finds them through context.js, so the
// two modules do not import each other.
Object.assign(cardActions, { onAck: acknowledge, onOpenSnapshot: openSnapshot });

export function updateTitle() {
  const unacked = [...state.events.values()].filter((e) => !e.ack && !isInfo(e)).length;
  el.unacked.textContent = state.t("feed.unacked", { n: unacked });
  el.unacked.classList.toggle("has-alerts", unacked > 0);
  document.title = `${unacked > 0 && state.user ? `(${unacked}) ` : ""}${state.t("app.title")}`;
}

export function openStream() {
  const source = new EventSource("/api/stream", { withCredentials: true });
  state.source = source;
  renderConn(state.streamBroken ? "lost" : "connecting");
  source.addEventListener("open", () => {
    renderConn("live");
    if (state.streamBroken) {
      // Events published while the stream was down are in the store: fetch them instead of losing them.
      state.streamBroken = false;
      loadFeed();
      loadNodes();
    }
  });
  source.addEventListener("error", () => {
    state.streamBroken = true;
    renderConn("lost");
    // A dead session looks like a broken stream; /api/me tells them apart (401 shows the login).
    // EventSource retries a dropped connection by itself but gives up on an HTTP error (a proxy's
    // 502): then, with the session still good, open a new one a little later.
    API.me().then(() => {
      if (source.readyState === EventSource.CLOSED) {
        window.setTimeout(() => {
          if (state.source === source) {
            openStream();
          }
        }, STREAM_REOPEN_MS);
      }
    }).catch(() => {});
  });
  source.addEventListener("event", (msg) => {
    const event = parseJson(msg.data);
    if (event && event.event_id) {
      const fresh = !state.events.has(event.event_id);
      upsertEvent(event);
      if (fresh && !isInfo(event)) {
        announce(state.t("event.new", { text: eventText(event, state.lang, state.t) }));
      }
      if (event.kind === "line_crossing" || event.kind === "count_summary") {
        scheduleCounts();
      }
    }
  });
  source.addEventListener("ack", (msg) => {
    const event = parseJson(msg.data);
    if (event && event.event_id) {
      if (state.events.has(event.event_id)) {
        upsertEvent(event); // an alert acknowledged long ago elsewhere does not come back to the feed
      }
      updateSearchRow(event);
    }
  });
  source.addEventListener("node", (msg) => {
    const node = parseJson(msg.data);
    if (node && node.node) {
      state.nodes.set(node.node, node);
      renderStatus();
    }
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function renderConn(mode) {
  if (mode) {
    el.conn.dataset.mode = mode;
  }
  const current = el.conn.dataset.mode || "connecting";
  el.conn.textContent = state.t(`conn.${current}`);
}

export async function loadFeed() {
  try {
    const page = await API.listEvents({ limit: FEED_FETCH });
    let items = page.items;
    const alerts = items.filter((e) => !isInfo(e)).length;
    if (page.total > items.length && alerts < FEED_FETCH / 4) {
      // A busy counting line fills the newest page with crossings; fetch the alerts kind by kind so
      // that an intrusion ten minutes ago is still on the screen after a reload.
      const kinds = KINDS.filter((k) => severity(k) !== "info");
      const pages = await Promise.all(kinds.map((kind) => API.listEvents({ kind, limit: 20 })));
      items = items.concat(...pages.map((p) => p.items));
    }
    for (const event of items) {
      state.events.set(event.event_id, mergeAck(event));
    }
    pruneEvents();
    renderFeed();
    drawCounts(); // the events tell the cameras' time zone, which the chart's hours follow
  } catch (err) {
    console.warn("loading events failed", err);
  }
}

/** An ack seen over SSE is never undone by an older copy of the event from a slower request. */
function mergeAck(event) {
  const known = state.events.get(event.event_id);
  return known && known.ack && !event.ack ? { ...event, ack: known.ack } : event;
}

function sortedEvents() {
  return [...state.events.values()].sort((a, b) =>
    (Date.parse(b.ts) || 0) - (Date.parse(a.ts) || 0) || (b.seq || 0) - (a.seq || 0));
}

/** Keep the newest alerts and fewer counting events, so crossings never push an alert off the feed. */
function pruneEvents() {
  let alerts = 0;
  let infos = 0;
  for (const event of sortedEvents()) {
    const keep = isInfo(event) ? (infos += 1) <= INFO_LIMIT : (alerts += 1) <= FEED_LIMIT;
    if (!keep) {
      state.events.delete(event.event_id);
    }
  }
}

function feedVisible(event) {
  if (el.onlyUnacked.checked && event.ack) {
    return false;
  }
  return !(el.hideInfo.checked && isInfo(event));
}

export function renderFeed() {
  const ctx = cardContext();
  const cards = sortedEvents().filter(feedVisible).map((event, i) => renderCard(event, { ...ctx, lazy: i > 8 }));
  el.feed.replaceChildren(...cards);
  el.feedEmpty.hidden = cards.length > 0;
  updateTitle();
}

function findCard(eventId) {
  for (const card of el.feed.children) {
    if (card.dataset.eventId === eventId) {
      return card;
    }
  }
  return null;
}

/** Add or replace one card in place, newest first, without rebuilding the feed (images stay loaded). */
function upsertEvent(incoming) {
  const event = mergeAck(incoming);
  state.events.set(event.event_id, event);
  const old = findCard(event.event_id);
  if (!feedVisible(event)) {
    if (old) {
      old.remove();
    }
  } else {
    const card = renderCard(event, cardContext());
    if (old) {
      old.replaceWith(card);
    } else {
      const ts = Number(card.dataset.ts);
      const next = [...el.feed.children].find((c) => Number(c.dataset.ts) < ts);
      el.feed.insertBefore(card, next || null);
    }
  }
  if (!old) {
    pruneEvents();
    for (const card of [...el.feed.children]) {
      if (!state.events.has(card.dataset.eventId)) {
        card.remove();
      }
    }
  }
  el.feedEmpty.hidden = el.feed.children.length > 0;
  updateTitle();
}

export async function acknowledge(event, button) {
  button.disabled = true;
  button.textContent = state.t("event.acking");
  try {
    const updated = await API.ackEvent(event.event_id);
    if (state.events.has(updated.event_id)) {
      upsertEvent(updated);
    }
    updateSearchRow(updated);
    announce(state.t("event.ack.done", { text: eventText(updated, state.lang, state.t) }));
    const card = findCard(updated.event_id);
    const status = card && card.querySelector(".acked");
    if (status) {
      status.focus();
    }
  } catch (err) {
    button.disabled = false;
    button.textContent = state.t("event.ack");
    announce(state.t(err.status === 403 ? "event.ack.forbidden" : "event.ack.failed"));
    el.toast.textContent = state.t(err.status === 403 ? "event.ack.forbidden" : "event.ack.failed");
    el.toast.hidden = false;
    window.setTimeout(() => { el.toast.hidden = true; }, 5000);
  }
}

function openSnapshot(event) {
  const url = API.safeSnapshotUrl(event.snapshot_url);
  if (!url) {
    return;
  }
  const text = eventText(event, state.lang, state.t);
  el.dialogImg.src = url;
  el.dialogImg.alt = state.t("event.snapshot", { text });
  el.dialogCaption.textContent = `${text} — ${event.camera} · ${formatInstant(event.ts, state.lang)}`;
  el.dialog.showModal();
}
