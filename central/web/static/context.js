// What the dashboard's modules share: the state of this page and its elements, looked up once.

import { clear, h } from "./dom.js";
import { savedLang, translator } from "./i18n.js";

export const state = {
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

/** Elements by role, filled by app.js from index.html ids before anything renders. */
export const el = {};

export function canAck() {
  return state.user !== null && state.user.role !== "viewer";
}

/** What a card's buttons do; feed.js, which owns acknowledging and the snapshot viewer, fills it in. */
export const cardActions = { onAck: null, onOpenSnapshot: null };

/** The options renderCard and renderRow take: language, permissions and the actions. */
export function cardContext(extra = {}) {
  return { t: state.t, lang: state.lang, canAck: canAck(), ...cardActions, lazy: false, ...extra };
}

export function announce(text) {
  el.announcer.textContent = "";
  // A fresh text node on the next frame makes screen readers read repeated messages too.
  window.requestAnimationFrame(() => { el.announcer.textContent = text; });
}

/** Options of a filter <select>: "any" first, then the values; keeps the current choice. */
export function fillSelect(select, options) {
  const current = select.value;
  clear(select);
  select.appendChild(h("option", { value: "" }, state.t("search.any")));
  for (const [value, label] of options) {
    select.appendChild(h("option", { value }, label));
  }
  select.value = options.some(([v]) => v === current) ? current : "";
}
