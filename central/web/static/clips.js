// "Video / Xem video" on an alert card: ask the node for the event's clip (POST), wait while it is
// written and uploaded (a 1-byte Range probe of the clip route every 2 s, 404 with the state until it
// is stored), then play it in a <video> beside the snapshot. A clip removed by retention says "expired".
// An H.265 clip (from an H.265 camera) is offered for download too: most browsers cannot play it.

import { api } from "./api.js";
import { h } from "./dom.js";

const POLL_MS = 2000;
const GIVE_UP_MS = 180000;
const FINAL = new Set(["missing", "unsupported", "rejected", "expired"]);

function clipUrl(event) {
  return `/api/events/${encodeURIComponent(event.event_id)}/clip`;
}

async function probe(event) {
  const response = await fetch(clipUrl(event), {
    credentials: "same-origin", headers: { Range: "bytes=0-0" },
  });
  if (response.ok) {
    return { state: "ready", codec: response.headers.get("X-Clip-Codec") || "" };
  }
  try {
    return await response.json();
  } catch {
    return { state: "error", reason: response.statusText };
  }
}

function showVideo(event, box, t, codec) {
  const video = h("video", {
    controls: "", preload: "metadata", src: clipUrl(event), class: "clip", "aria-label": t("clip.video"),
  });
  if (!codec || codec === "h264") {
    box.replaceChildren(video);
    return;
  }
  box.replaceChildren(video, h("p", { class: "clip-codec muted", role: "note" }, t("clip.hevc"), " ",
    h("a", { href: clipUrl(event), download: `${event.event_id}.mp4` }, t("clip.download"))));
}

async function fetchClip(event, button, box, t) {
  button.disabled = true;
  const say = (key, reason) => box.replaceChildren(h("p", { class: "clip-state muted", role: "status" },
    t(key), reason ? ` (${reason})` : ""));
  say("clip.requested");
  try {
    const asked = await api(clipUrl(event), { method: "POST", body: {} });
    if (asked && asked.state === "ready") {
      showVideo(event, box, t, asked.codec);
      return;
    }
  } catch (err) {
    say(err.status === 409 ? "clip.offline" : "clip.failed", err.message);
    button.disabled = false;
    return;
  }
  const until = Date.now() + GIVE_UP_MS;
  while (Date.now() < until) {
    await new Promise((resolve) => { window.setTimeout(resolve, POLL_MS); });
    const got = await probe(event);
    if (got.state === "ready") {
      showVideo(event, box, t, got.codec);
      return;
    }
    if (FINAL.has(got.state)) {
      say(`clip.${got.state}`, got.reason);
      button.disabled = false;
      return;
    }
    say(got.state === "pending" ? "clip.pending" : "clip.receiving");
  }
  say("clip.failed");
  button.disabled = false;
}

/** The video button and the box the video appears in, for alerts only (counting events have no clip). */
export function clipControl(event, ctx) {
  const box = h("div", { class: "clip-box", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "clip-button" }, ctx.t("clip.button"));
  button.addEventListener("click", () => { fetchClip(event, button, box, ctx.t); });
  return [button, box];
}
