// Event kinds, their vi/en labels and severity, as the aggregator serves them from the wire contract
// (GET /api/contract/kinds). The dashboard keeps no copy of its own, so a kind added to the contract
// shows up here with the same words the node puts in its event texts. Loaded once, before any module that
// imports this one runs (top-level await); if the call fails the page still works and shows raw names.

async function load() {
  try {
    const response = await fetch("/api/contract/kinds", { headers: { Accept: "application/json" } });
    if (response.ok) {
      const data = await response.json();
      if (data && Array.isArray(data.kinds)) {
        return data.kinds;
      }
    }
  } catch {
    // Offline or an old aggregator: fall back to raw kind names below.
  }
  return [];
}

const TABLE = await load();

/** Kind names in the contract's order (node kinds, then those the aggregator raises itself). */
export const KINDS = TABLE.map((k) => k.name);

/** {"kind.<name>": label} for one language, merged into the page's strings by i18n.js. */
export function kindStrings(lang) {
  return Object.fromEntries(TABLE.map((k) => [`kind.${k.name}`, k[lang] || k.en || k.name]));
}

const SEVERITY = Object.fromEntries(TABLE.map((k) => [k.name, k.severity]));

/** high, health, ok or info; an unknown kind (a newer node) counts as high so it is never hidden. */
export function severity(kind) {
  return SEVERITY[kind] || "high";
}
