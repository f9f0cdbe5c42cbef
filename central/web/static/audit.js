// The admin's audit page: who viewed a snapshot or clip, exported, acknowledged, signed in, from where.
// Read only: the API has no route to change or delete an entry. Filters live in the address
// (#/audit?action=view_snapshot), like the search page, so a link to a colleague shows the same list.

import * as API from "./api.js";
import { el, state } from "./context.js";
import { h } from "./dom.js";
import { named } from "./i18n.js";

const PAGE_SIZE = 50;
const FIELDS = ["actor", "action", "since", "until"];
export const AUDIT_ACTIONS = ["view_snapshot", "view_clip", "export", "ack", "login", "login_failed",
  "login_limited", "take_reference", "request_clip", "webhook_requeue"];

function paramsFromHash() {
  const [, q = ""] = window.location.hash.split("?");
  const params = new URLSearchParams(q);
  const out = {};
  for (const field of FIELDS) {
    out[field] = params.get(field) || "";
  }
  return out;
}

function toIsoInstant(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

export function onAuditSubmit(ev) {
  ev.preventDefault();
  const q = new URLSearchParams();
  for (const field of FIELDS) {
    const value = el.auditForm.elements[field].value.trim();
    if (value) {
      q.set(field, value);
    }
  }
  const hash = `#/audit${q.toString() ? `?${q}` : ""}`;
  if (window.location.hash === hash) {
    runAudit();
  } else {
    window.location.hash = hash;
  }
}

export async function runAudit() {
  const params = paramsFromHash();
  for (const field of FIELDS) {
    el.auditForm.elements[field].value = params[field];
  }
  el.auditSummary.textContent = state.t("search.loading");
  try {
    const page = await API.api(`/api/audit${API.query({
      ...params, since: toIsoInstant(params.since), until: toIsoInstant(params.until), limit: PAGE_SIZE,
    })}`);
    state.lastAudit = page;
    renderAudit();
  } catch (err) {
    state.lastAudit = null;
    el.auditBody.replaceChildren();
    el.auditTable.hidden = true;
    el.auditSummary.textContent = state.t(err.status === 403 ? "audit.forbidden" : "search.error");
  }
}

export function renderAudit() {
  const page = state.lastAudit;
  if (!page) {
    return;
  }
  const { t } = state;
  el.auditSummary.textContent = page.total === 0 ? t("audit.empty") : t("audit.results", { total: page.total });
  el.auditBody.replaceChildren(...page.items.map((entry) => h("tr", {},
    h("td", { "data-label": t("audit.at") }, new Date(entry.at).toLocaleString(state.lang)),
    h("td", { "data-label": t("audit.actor") }, entry.actor),
    h("td", { "data-label": t("audit.action") }, named(t, "audit.action", entry.action)),
    h("td", { "data-label": t("audit.target") }, entry.target || ""),
    h("td", { "data-label": t("audit.detail") }, entry.detail || ""),
    h("td", { "data-label": t("audit.remote") }, entry.remote || ""),
  )));
  el.auditTable.hidden = page.items.length === 0;
}
