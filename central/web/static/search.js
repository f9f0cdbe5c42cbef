// The event search page: filters in the address (#/search?kind=...&offset=25), so Back, reload and a
// link sent to a colleague all show the same results.

import * as API from "./api.js";
import { renderRow } from "./cards.js";
import { cardContext, el, state } from "./context.js";

const PAGE_SIZE = 25;

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
  const hash = `#/search${text ? `?${text}` : ""}`;
  if (window.location.hash === hash) {
    runSearch(); // the same filters again: no hashchange, but the officer wants fresh results
  } else {
    window.location.hash = hash;
  }
}

/** <input type=datetime-local> holds the browser's local time; the API wants an ISO instant. */
function toIsoInstant(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

export function onSearchSubmit(ev) {
  ev.preventDefault();
  const params = { offset: 0 };
  for (const field of SEARCH_FIELDS) {
    params[field] = el.searchForm.elements[field].value.trim();
  }
  writeSearchHash(params);
}

export function onSearchReset() {
  el.searchForm.reset();
  writeSearchHash({ offset: 0 });
}

export async function runSearch() {
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

export function renderSearchResults() {
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

export function updateSearchRow(event) {
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

export function turnPage(delta) {
  const params = searchParamsFromHash();
  writeSearchHash({ ...params, offset: Math.max(0, params.offset + delta * PAGE_SIZE) });
}
