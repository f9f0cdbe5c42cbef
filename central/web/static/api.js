// JSON calls to the aggregator. The session is an HttpOnly cookie set by /api/login, so no token is ever
// visible to scripts; every call sends it with credentials "same-origin". A 401 anywhere means the
// session ended (expired, logged out elsewhere): the page listens for "rw:unauthorized" and shows login.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

// The server sets the cookie "rw_signed_in" (no secret) beside the HttpOnly session cookie at login and
// removes it at logout. Without it the page shows the login at once instead of asking /api/me, whose 401
// every browser logs as an error in its console.
const SIGNED_IN_COOKIE = "rw_signed_in";

export function mayHaveSession() {
  return document.cookie.split(";").some((c) => c.trim() === `${SIGNED_IN_COOKIE}=1`);
}

function forgetSession() {
  document.cookie = `${SIGNED_IN_COOKIE}=; Max-Age=0; Path=/; SameSite=Strict`;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === "AbortError") {
      throw err;
    }
    throw new ApiError(0, "network error");
  }
  if (response.status === 401 && path !== "/api/login") {
    forgetSession();
    window.dispatchEvent(new CustomEvent("rw:unauthorized"));
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const data = await response.json();
      if (data && typeof data.detail === "string") {
        detail = data.detail;
      }
    } catch {
      // Not JSON: keep the status text.
    }
    throw new ApiError(response.status, detail);
  }
  if (response.status === 204) {
    return null;
  }
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : null;
}

/** Query string from a plain object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      q.set(key, String(value));
    }
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

export const login = (username, password) =>
  api("/api/login", { method: "POST", body: { username, password } });
export const logout = () => api("/api/logout", { method: "POST" });
export const me = () => api("/api/me");
export const listEvents = (params, signal) => api(`/api/events${query(params)}`, { signal });
export const ackEvent = (eventId, note = "") =>
  api(`/api/events/${encodeURIComponent(eventId)}/ack`, { method: "POST", body: { note } });
export const listCounts = (params) => api(`/api/counts${query(params)}`);
export const listNodes = () => api("/api/nodes");
export const takeReference = (node, camera) =>
  api(`/api/nodes/${encodeURIComponent(node)}/cameras/${encodeURIComponent(camera)}/take-reference`,
    { method: "POST" });

/** Only snapshot URLs of this server's snapshot route are shown; anything else in a payload is ignored. */
export function safeSnapshotUrl(url) {
  return typeof url === "string" && /^\/api\/snapshots\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(url) ? url : null;
}
