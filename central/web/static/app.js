// The dashboard: login, live alert feed over server-sent events, node and camera status, hourly count
// charts and the event search page. Plain ES modules served by the aggregator itself: the station may be
// offline, so there is nothing to download and no build step. This module wires them together.

import * as API from "./api.js";
import { AUDIT_ACTIONS, onAuditSubmit, renderAudit, runAudit } from "./audit.js";
import { el, fillSelect, state } from "./context.js";
import { byId, clear, h } from "./dom.js";
import { loadFeed, openStream, renderConn, renderFeed, updateTitle } from "./feed.js";
import { CLASSES, KINDS, LANGS, PHASES, named, saveLang, translator } from "./i18n.js";
import { onSearchReset, onSearchSubmit, renderSearchResults, runSearch, turnPage } from "./search.js";
import { drawCounts, knownCameras, loadCounts, loadNodes, renderStatus } from "./status.js";

const COUNTS_REFRESH_MS = 5 * 60 * 1000;
const NODES_REFRESH_MS = 60 * 1000;

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
  fillSelect(el.auditAction, AUDIT_ACTIONS.map((a) => [a, named(t, "audit.action", a)]));
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
  drawCounts();
  if (state.lastSearch) {
    renderSearchResults();
  }
  renderAudit();
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
  for (const node of [el.nav, el.user, el.logout, el.conn, el.liveView, el.searchView, el.auditView]) {
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
  el.navAudit.hidden = state.user.role !== "admin" || Boolean(state.user.scope);
  renderUser();
  route();
}

async function onLogin(ev) {
  ev.preventDefault();
  el.loginError.textContent = "";
  el.loginSubmit.disabled = true;
  try {
    await API.login(el.username.value.trim(), el.password.value);
    state.user = await API.me(); // with its camera scope, if any
    el.password.value = "";
    showApp();
    startLive();
  } catch (err) {
    const key = { 401: "login.failed", 422: "login.failed", 429: "login.limited" }[err.status] || "login.error";
    el.loginError.textContent = state.t(key);
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

// ---- live ---------------------------------------------------------------------------------------

function startLive() {
  state.streamBroken = false;
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

// ---- routing --------------------------------------------------------------------------------------

function route() {
  if (!state.user) {
    return;
  }
  const hash = window.location.hash;
  const view = hash.startsWith("#/search") ? "search" : hash.startsWith("#/audit") ? "audit" : "live";
  el.liveView.hidden = view !== "live";
  el.searchView.hidden = view !== "search";
  el.auditView.hidden = view !== "audit";
  for (const link of el.nav.querySelectorAll("a")) {
    if (link.dataset.view === view) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  if (view === "search") {
    runSearch();
  } else if (view === "audit") {
    runAudit();
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
    auditView: "audit-view", auditForm: "audit-form", auditAction: "audit-action", auditSummary: "audit-summary",
    auditTable: "audit-table", auditBody: "audit-body", navAudit: "nav-audit",
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
  el.auditForm.addEventListener("submit", onAuditSubmit);
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
    if (!API.mayHaveSession()) {
      throw new Error("not signed in"); // no request, so no 401 in the console before the login
    }
    const user = await API.me();
    state.user = user;
    showApp();
    startLive();
  } catch {
    showLogin();
  }
  document.body.dataset.ready = "true";
}

main();
