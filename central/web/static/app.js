// The dashboard: login, live alert feed over server-sent events, node and camera status, hourly count
// charts and the event search page. Plain ES modules served by the aggregator itself: the station may be
// offline, so there is nothing to download and no build step.

import * as API from "./api.js";
import { isInfo, eventText, renderCard, renderRow } from "./cards.js";
import { byId, clear, formatInstant, h, timeAgo } from "./dom.js";
import { renderCounts } from "./hourchart.js";
import { CLASSES, KINDS, LANGS, PHASES, named, saveLang, savedLang, translator } from "./i18n.js";

const FEED_LIMIT = 200; // cards kept in the live feed; older ones are on the search page
const PAGE_SIZE = 25;
const COUNTS_REFRESH_MS = 5 * 60 * 1000;
const COUNTS_DEBOUNCE_MS = 4000;
const NODES_REFRESH_MS = 60 * 1000;

const state = {
  lang: savedLang(),
  t: translator(savedLang()),
  user: null,
  events: new Map(), // event_id -> Event, everything the feed knows
  nodes: new Map(), // node -> node status
  counts: [],
  source: null,
  streamBroken: false,
  timers: [],
  countsTimer: null,
  searchAbort: null,
  lastSearch: null, // {items, total, params}
};

const el = {};

function canAck() {
  return state.user !== null && state.user.role !== "viewer";
}

function cardContext(extra = {}) {
  return {
    t: state.t, lang: state.lang, canAck: canAck(), onAck: acknowledge, onOpenSnapshot: openSnapshot,
    lazy: false, ...extra,
  };
}

function announce(text) {
  el.announcer.textContent = "";
  // A fresh text node on the next frame makes screen readers read repeated messages too.
  window.requestAnimationFrame(() => { el.announcer.textContent = text; });
}

// ---- language -------------------------------------------------------------------------------------

function applyStaticTexts() {
  const { t } = state;
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  const other = LANGS.find((l) => l !== state.lang);
  el.langSwitch.lang = other;
  el.langSwitch.setAttribute("aria-label", t("lang.switch.label"));
  fillSelect(el.searchKind, KINDS.map((k) => [k, named(t, "kind", k)]));
  fillSelect(el.searchPhase, PHASES.map((p) => [p, named(t, "phase", p)]));
  fillSelect(el.searchAck, [["true", t("search.ack.yes")], ["false", t("search.ack.no")]]);
  fillSelect(el.searchCamera, knownCameras().map((c) => [c, c]));
  clear(el.classList);
  for (const cls of CLASSES) {
    el.classList.appendChild(h("option", { value: cls }, named(t, "class", cls)));
  }
  updateTitle();
  renderConn();
  renderUser();
}

function setLang(lang) {
  state.lang = lang;
  state.t = translator(lang);
  saveLang(lang);
  applyStaticTexts();
  renderFeed();
  renderStatus();
  renderCounts(el.counts, state.counts, state.t);
  if (state.lastSearch) {
    renderSearchResults();
  }
}

/** Options of a filter <select>: "any" first, then the values; keeps the current choice. */
function fillSelect(select, options) {
  const current = select.value;
  clear(select);
  select.appendChild(h("option", { value: "" }, state.t("search.any")));
  for (const [value, label] of options) {
    select.appendChild(h("option", { value }, label));
  }
  select.value = options.some(([v]) => v === current) ? current : "";
}

function updateTitle() {
  const unacked = [...state.events.values()].filter((e) => !e.ack && !isInfo(e)).length;
  el.unacked.textContent = state.t("feed.unacked", { n: unacked });
  el.unacked.classList.toggle("has-alerts", unacked > 0);
  document.title = `${unacked > 0 && state.user ? `(${unacked}) ` : ""}${state.t("app.title")}`;
}

// ---- session --------------------------------------------------------------------------------------

function renderUser() {
  if (!state.user) {
    el.user.textContent = "";
    return;
  }
  el.user.textContent = `${state.user.username} (${named(state.t, "user.role", state.user.role)})`;
}

function showLogin() {
  stopLive();
  state.user = null;
  state.events.clear();
  state.lastSearch = null;
  for (const node of [el.nav, el.user, el.logout, el.conn, el.liveView, el.searchView]) {
    node.hidden = true;
  }
  el.loginView.hidden = false;
  renderUser();
  updateTitle();
  el.username.focus();
}

function showApp() {
  el.loginView.hidden = true;
  for (const node of [el.nav, el.user, el.logout, el.conn]) {
    node.hidden = false;
  }
  renderUser();
  route();
}

async function onLogin(ev) {
  ev.preventDefault();
  el.loginError.textContent = "";
  el.loginSubmit.disabled = true;
  try {
    const result = await API.login(el.username.value.trim(), el.password.value);
    state.user = { username: result.username, role: result.role };
    el.password.value = "";
    showApp();
    startLive();
  } catch (err) {
    el.loginError.textContent = state.t(err.status === 401 ? "login.failed" : "login.error");
    el.password.select();
  } finally {
    el.loginSubmit.disabled = false;
  }
}

async function onLogout() {
  try {
    await API.logout();
  } catch {
    // The cookie may already be gone; the login screen is right either way.
  }
  showLogin();
}

// ---- live feed ------------------------------------------------------------------------------------

function startLive() {
  loadFeed();
  loadNodes();
  loadCounts();
  openStream();
  state.timers.push(window.setInterval(loadCounts, COUNTS_REFRESH_MS));
  state.timers.push(window.setInterval(loadNodes, NODES_REFRESH_MS));
  state.timers.push(window.setInterval(renderStatus, 30 * 1000)); // "2 minutes ago" moves on
}

function stopLive() {
  if (state.source) {
    state.source.close();
    state.source = null;
  }
  for (const id of state.timers) {
    window.clearInterval(id);
  }
  state.timers = [];
  window.clearTimeout(state.countsTimer);
}

function openStream() {
  const source = new EventSource("/api/stream", { withCredentials: true });
  state.source = source;
  state.streamBroken = false;
  renderConn("connecting");
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
    API.me().catch(() => {});
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
      upsertEvent(event);
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

function renderConn(mode) {
  if (mode) {
    el.conn.dataset.mode = mode;
  }
  const current = el.conn.dataset.mode || "connecting";
  el.conn.textContent = state.t(`conn.${current}`);
}

async function loadFeed() {
  try {
    const page = await API.listEvents({ limit: 100 });
    for (const event of page.items) {
      state.events.set(event.event_id, mergeAck(event));
    }
    pruneEvents();
    renderFeed();
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

function pruneEvents() {
  if (state.events.size <= FEED_LIMIT) {
    return;
  }
  for (const event of sortedEvents().slice(FEED_LIMIT)) {
    state.events.delete(event.event_id);
  }
}

function feedVisible(event) {
  if (el.onlyUnacked.checked && event.ack) {
    return false;
  }
  return !(el.hideInfo.checked && isInfo(event));
}

function renderFeed() {
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
  if (state.events.size > FEED_LIMIT) {
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

async function acknowledge(event, button) {
  button.disabled = true;
  button.textContent = state.t("event.acking");
  try {
    const updated = await API.ackEvent(event.event_id);
    upsertEvent(updated);
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

// ---- status and counts ----------------------------------------------------------------------------

async function loadNodes() {
  try {
    const data = await API.listNodes();
    state.nodes = new Map(data.items.map((n) => [n.node, n]));
    renderStatus();
    fillSelect(el.searchCamera, knownCameras().map((c) => [c, c]));
  } catch (err) {
    console.warn("loading nodes failed", err);
  }
}

function knownCameras() {
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

function renderStatus() {
  const { t, lang } = state;
  const nodes = [...state.nodes.values()].sort((a, b) => String(a.node).localeCompare(String(b.node)));
  if (nodes.length === 0) {
    el.status.replaceChildren(h("p", { class: "empty" }, t("status.empty")));
    return;
  }
  el.status.replaceChildren(...nodes.map((node) => {
    const state_ = node.state || "unknown";
    const seen = node.last_seen ? timeAgo(node.last_seen, lang) : t("status.never");
    const rows = (node.cameras || []).map((cam) => {
      const stream = cam.stream_state || "unknown";
      return h("tr", { dataset: { camera: cam.camera } },
        h("th", { scope: "row" }, cam.camera),
        h("td", {}, h("span", { class: `dot stream-${stream}`, "aria-hidden": "true" }), named(t, "stream", stream)),
        h("td", { class: "num" }, num(cam.fps, 1)),
        h("td", { class: "num" }, num(cam.inference_ms, 0)),
        h("td", { class: "num" }, num(cam.dropped_frames, 0)));
    });
    return h("section", { class: `node node-${state_}`, dataset: { node: node.node } },
      h("h3", {}, h("span", { class: `dot node-${state_}`, "aria-hidden": "true" }), node.node, " ",
        h("span", { class: "badge state" }, named(t, "node", state_))),
      h("p", { class: "muted small" }, t("status.last_seen", { ago: seen })),
      rows.length === 0 ? null : h("div", { class: "table-wrap" }, h("table", { class: "cams" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, t("status.camera")), h("th", { scope: "col" }, t("status.stream")),
          h("th", { scope: "col", class: "num" }, t("status.fps")),
          h("th", { scope: "col", class: "num" }, t("status.inference")),
          h("th", { scope: "col", class: "num" }, t("status.dropped")))),
        h("tbody", {}, rows))));
  }));
}

async function loadCounts() {
  try {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const data = await API.listCounts({ since });
    state.counts = data.items;
    renderCounts(el.counts, state.counts, state.t);
  } catch (err) {
    console.warn("loading counts failed", err);
  }
}

function scheduleCounts() {
  if (state.countsTimer) {
    return;
  }
  state.countsTimer = window.setTimeout(() => {
    state.countsTimer = null;
    loadCounts();
  }, COUNTS_DEBOUNCE_MS);
}

// ---- search ---------------------------------------------------------------------------------------

const SEARCH_FIELDS = ["since", "until", "kind", "camera", "cls", "phase", "acknowledged"];

function searchParamsFromHash() {
  const [, q = ""] = window.location.hash.split("?");
  const params = new URLSearchParams(q);
  const out = { offset: Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0) };
  for (const field of SEARCH_FIELDS) {
    out[field] = params.get(field) || "";
  }
  return out;
}

function writeSearchHash(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== 0) {
      q.set(key, String(value));
    }
  }
  const text = q.toString();
  window.location.hash = `#/search${text ? `?${text}` : ""}`;
}

/** <input type=datetime-local> holds the browser's local time; the API wants an ISO instant. */
function toIsoInstant(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function onSearchSubmit(ev) {
  ev.preventDefault();
  const params = { offset: 0 };
  for (const field of SEARCH_FIELDS) {
    params[field] = el.searchForm.elements[field].value.trim();
  }
  writeSearchHash(params);
}

function onSearchReset() {
  el.searchForm.reset();
  writeSearchHash({ offset: 0 });
}

async function runSearch() {
  const params = searchParamsFromHash();
  for (const field of SEARCH_FIELDS) {
    el.searchForm.elements[field].value = params[field];
  }
  if (state.searchAbort) {
    state.searchAbort.abort();
  }
  const abort = new AbortController();
  state.searchAbort = abort;
  el.searchSummary.textContent = state.t("search.loading");
  el.searchResults.setAttribute("aria-busy", "true");
  const apiParams = {
    ...params, since: toIsoInstant(params.since), until: toIsoInstant(params.until), limit: PAGE_SIZE,
  };
  try {
    const page = await API.listEvents(apiParams, abort.signal);
    state.lastSearch = { items: page.items, total: page.total, params };
    renderSearchResults();
  } catch (err) {
    if (err.name !== "AbortError") {
      el.searchSummary.textContent = state.t("search.error");
    }
  } finally {
    el.searchResults.removeAttribute("aria-busy");
  }
}

function renderSearchResults() {
  const { items, total, params } = state.lastSearch;
  const { t } = state;
  const ctx = cardContext();
  el.searchSummary.textContent = total === 0 ? t("search.empty") : t("search.results", { total });
  el.searchBody.replaceChildren(...items.map((event) => renderRow(event, ctx)));
  el.searchTable.hidden = items.length === 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const page = Math.floor(params.offset / PAGE_SIZE) + 1;
  el.pageInfo.textContent = t("search.page", { page, pages });
  el.prev.disabled = params.offset <= 0;
  el.next.disabled = params.offset + PAGE_SIZE >= total;
  el.pager.hidden = total <= PAGE_SIZE;
}

function updateSearchRow(event) {
  if (!state.lastSearch) {
    return;
  }
  const index = state.lastSearch.items.findIndex((e) => e.event_id === event.event_id);
  if (index < 0) {
    return;
  }
  state.lastSearch.items[index] = event;
  const row = el.searchBody.querySelector(`tr[data-event-id="${CSS.escape(event.event_id)}"]`);
  if (row) {
    row.replaceWith(renderRow(event, cardContext()));
  }
}

function turnPage(delta) {
  const params = searchParamsFromHash();
  writeSearchHash({ ...params, offset: Math.max(0, params.offset + delta * PAGE_SIZE) });
}

// ---- routing --------------------------------------------------------------------------------------

function route() {
  if (!state.user) {
    return;
  }
  const search = window.location.hash.startsWith("#/search");
  el.liveView.hidden = search;
  el.searchView.hidden = !search;
  for (const link of el.nav.querySelectorAll("a")) {
    if ((link.dataset.view === "search") === search) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  if (search) {
    runSearch();
  }
}

// ---- start ----------------------------------------------------------------------------------------

function bind() {
  const ids = {
    loginView: "login-view", liveView: "live-view", searchView: "search-view", loginForm: "login-form",
    username: "username", password: "password", loginError: "login-error", loginSubmit: "login-submit",
    nav: "nav", user: "user", logout: "logout", conn: "conn", langSwitch: "lang-switch", feed: "feed",
    feedEmpty: "feed-empty", unacked: "unacked", onlyUnacked: "only-unacked", hideInfo: "hide-info",
    status: "status", counts: "counts", announcer: "announcer", toast: "toast", dialog: "snapshot-dialog",
    dialogImg: "dialog-img", dialogCaption: "dialog-caption", dialogClose: "dialog-close",
    searchForm: "search-form", searchKind: "search-kind", searchPhase: "search-phase", searchAck: "search-ack",
    searchCamera: "search-camera", classList: "class-list", searchSummary: "search-summary",
    searchResults: "search-results", searchTable: "search-table", searchBody: "search-body",
    pager: "pager", prev: "page-prev", next: "page-next", pageInfo: "page-info", searchReset: "search-reset",
  };
  for (const [key, id] of Object.entries(ids)) {
    el[key] = byId(id);
  }
  el.loginForm.addEventListener("submit", onLogin);
  el.logout.addEventListener("click", onLogout);
  el.langSwitch.addEventListener("click", () => setLang(state.lang === "vi" ? "en" : "vi"));
  el.onlyUnacked.addEventListener("change", renderFeed);
  el.hideInfo.addEventListener("change", renderFeed);
  el.dialogClose.addEventListener("click", () => el.dialog.close());
  el.dialog.addEventListener("click", (ev) => {
    if (ev.target === el.dialog) {
      el.dialog.close(); // a click on the backdrop
    }
  });
  el.searchForm.addEventListener("submit", onSearchSubmit);
  el.searchReset.addEventListener("click", onSearchReset);
  el.prev.addEventListener("click", () => turnPage(-1));
  el.next.addEventListener("click", () => turnPage(1));
  window.addEventListener("hashchange", route);
  window.addEventListener("rw:unauthorized", () => {
    if (state.user) {
      showLogin();
    }
  });
}

async function main() {
  bind();
  applyStaticTexts();
  try {
    const user = await API.me();
    state.user = { username: user.username, role: user.role };
    showApp();
    startLive();
  } catch {
    showLogin();
  }
  document.body.dataset.ready = "true";
}

main();
