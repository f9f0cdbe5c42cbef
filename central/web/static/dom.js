// Tiny DOM builders. Every piece of payload data reaches the page as a text node or an attribute value
// through these, never through innerHTML, so a node that publishes "<img onerror=...>" in a rule name
// shows those characters and runs nothing.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      append(el, child);
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
}

/** h("button", {class: "x", onClick: fn}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements (charts). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) {
    el.removeChild(el.firstChild);
  }
  return el;
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) {
    throw new Error(`#${id} is missing from index.html`);
  }
  return el;
}

/** "2026-11-28T22:00:05.123+07:00" -> {date: "28/11/2026", time: "22:00:05"}: the camera's own wall clock,
 *  read from the string so the station sees the time printed on the footage whatever its browser zone. */
export function splitLocalTime(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(String(iso || ""));
  if (!m) {
    return { date: "", time: String(iso || "") };
  }
  return { date: `${m[3]}/${m[2]}/${m[1]}`, time: `${m[4]}:${m[5]}:${m[6]}` };
}

/** "…+07:00" -> 420, "…Z" -> 0: the UTC offset in minutes an ISO local time was written with; else null. */
export function utcOffsetMinutes(iso) {
  const m = /(?:([+-])(\d{2}):(\d{2})|Z)$/.exec(String(iso || ""));
  if (!m) {
    return null;
  }
  return m[1] ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

/** "3 phút trước" / "3 minutes ago" from an ISO timestamp, with the browser's Intl tables. */
export function timeAgo(iso, lang, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return "";
  }
  const seconds = Math.round((then - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) {
    return rtf.format(seconds, "second");
  }
  if (abs < 3600) {
    return rtf.format(Math.round(seconds / 60), "minute");
  }
  if (abs < 86400) {
    return rtf.format(Math.round(seconds / 3600), "hour");
  }
  return rtf.format(Math.round(seconds / 86400), "day");
}

/** Short local date-time of an ISO instant in the browser's zone (acknowledgements, node last seen). */
export function formatInstant(iso, lang) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return String(iso || "");
  }
  return d.toLocaleString(lang === "vi" ? "vi-VN" : "en-GB", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", day: "2-digit", month: "2-digit",
  });
}
