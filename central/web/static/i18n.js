// Vietnamese and English strings of the dashboard. Event texts come from the payload (`texts.vi`,
// `texts.en`) and kind labels from the wire contract (kinds.js); everything else the page says is here,
// in both languages, so the English switch never shows a half-translated screen. Vietnamese is the
// default: the station operators read it first.

import { KINDS, kindStrings } from "./kinds.js";

export const LANGS = ["vi", "en"];
export const DEFAULT_LANG = "vi";
const STORAGE_KEY = "roadwatch.lang";

const STRINGS = {
  vi: {
    "app.title": "Roadwatch — Trung tâm giám sát",
    "app.short": "Roadwatch",
    "skip": "Đến nội dung chính",
    "lang.switch": "English",
    "lang.switch.label": "Chuyển sang tiếng Anh",
    "login.title": "Đăng nhập",
    "login.intro": "Dành cho cán bộ trực ban. Đăng nhập để xem cảnh báo.",
    "login.username": "Tên đăng nhập",
    "login.password": "Mật khẩu",
    "login.submit": "Đăng nhập",
    "login.failed": "Sai tên đăng nhập hoặc mật khẩu.",
    "login.error": "Không kết nối được máy chủ. Thử lại sau.",
    "login.limited": "Đăng nhập sai quá nhiều lần. Đợi vài phút rồi thử lại.",
    "logout": "Đăng xuất",
    "user.role.admin": "quản trị",
    "user.role.operator": "trực ban",
    "user.role.viewer": "chỉ xem",
    "nav.label": "Chuyển trang",
    "nav.live": "Cảnh báo trực tiếp",
    "nav.search": "Tra cứu sự kiện",
    "conn.live": "Trực tiếp",
    "conn.connecting": "Đang kết nối…",
    "conn.lost": "Mất kết nối, đang thử lại…",
    "feed.title": "Cảnh báo mới nhất",
    "feed.empty": "Chưa có sự kiện nào.",
    "feed.unacked": "Chưa xác nhận: {n}",
    "feed.only_unacked": "Chỉ hiện cảnh báo chưa xác nhận",
    "feed.hide_info": "Ẩn sự kiện đếm xe",
    "event.ack": "Xác nhận",
    "event.ack.label": "Xác nhận cảnh báo: {text}",
    "event.acking": "Đang xác nhận…",
    "event.acked": "Đã xác nhận bởi {by} lúc {at}",
    "event.acked.short": "Đã xác nhận",
    "event.ack.forbidden": "Tài khoản chỉ xem không được xác nhận cảnh báo.",
    "event.ack.failed": "Không xác nhận được, thử lại.",
    "event.ack.done": "Đã xác nhận: {text}",
    "event.snapshot": "Ảnh chụp: {text}",
    "event.snapshot.open": "Xem ảnh lớn",
    "event.no_snapshot": "Không có ảnh",
    "event.camera": "Camera",
    "event.node": "Thiết bị",
    "event.rule": "Quy tắc",
    "event.time": "Thời gian",
    "event.classes": "Đối tượng",
    "event.confidence": "Độ tin cậy",
    "event.kind": "Loại",
    "event.phase": "Giai đoạn",
    "event.text": "Nội dung",
    "event.status": "Trạng thái",
    "event.new": "Cảnh báo mới: {text}",
    "dialog.close": "Đóng",
    "status.title": "Thiết bị và camera",
    "status.empty": "Chưa có thiết bị nào báo trạng thái.",
    "status.last_seen": "· {ago}",
    "status.never": "chưa từng",
    "status.camera": "Camera",
    "status.stream": "Tín hiệu",
    "status.fps": "Khung/s",
    "status.inference": "Xử lý (ms)",
    "status.dropped": "Bỏ khung",
    "status.view": "Góc nhìn",
    "status.take_reference": "Nhận góc nhìn mới",
    "status.take_reference.hint": "Sau khi chỉnh hướng hoặc lấy nét camera có chủ ý: lấy hình hiện tại làm chuẩn, cảnh báo \"camera bị xoay lệch\" sẽ kết thúc.",
    "status.take_reference.sent": "Đã gửi lệnh nhận góc nhìn mới tới camera {camera}.",
    "status.take_reference.sent.short": "Đã gửi",
    "status.take_reference.failed": "Không gửi được lệnh tới camera {camera}, thử lại.",
    "counts.title": "Lưu lượng theo giờ (24 giờ qua)",
    "counts.empty": "Chưa có số liệu đếm.",
    "counts.total": "Tổng: {n}",
    "counts.chart": "Biểu đồ số lượt qua vạch {line} theo giờ",
    "counts.direction.none": "không rõ hướng",
    "search.title": "Tra cứu sự kiện",
    "search.since": "Từ",
    "search.until": "Đến",
    "search.kind": "Loại sự kiện",
    "search.camera": "Camera",
    "search.cls": "Đối tượng",
    "search.phase": "Giai đoạn",
    "search.ack": "Xác nhận",
    "search.any": "Tất cả",
    "search.ack.yes": "Đã xác nhận",
    "search.ack.no": "Chưa xác nhận",
    "search.submit": "Tìm",
    "search.reset": "Xoá bộ lọc",
    "search.results": "Tìm thấy {total} sự kiện",
    "search.empty": "Không có sự kiện nào khớp bộ lọc.",
    "search.page": "Trang {page} / {pages}",
    "search.prev": "Trang trước",
    "search.next": "Trang sau",
    "search.loading": "Đang tải…",
    "search.error": "Không tải được kết quả.",
    "search.pagination": "Phân trang",
    "phase.instant": "tức thời",
    "phase.start": "bắt đầu",
    "phase.update": "cập nhật",
    "phase.end": "kết thúc",
    "node.online": "trực tuyến",
    "node.offline": "mất kết nối",
    "node.stopped": "đã dừng",
    "node.unknown": "không rõ",
    "stream.ok": "bình thường",
    "stream.lost": "mất tín hiệu",
    "stream.frozen": "hình bị đứng",
    "stream.starting": "đang khởi động",
    "stream.unknown": "không rõ",
    "dir.in": "chiều vào",
    "dir.out": "chiều ra",
    "class.person": "người đi bộ",
    "class.bicycle": "xe đạp",
    "class.car": "ô tô",
    "class.motorcycle": "xe máy",
    "class.bus": "xe buýt",
    "class.truck": "xe tải",
    "m.direction_name": "Hướng",
    "m.direction": "Hướng",
    "m.count": "Số lượng",
    "m.dwell_s": "Thời gian (giây)",
    "m.speed_kmh": "Tốc độ (km/h)",
    "m.distance_m": "Khoảng cách (m)",
    "m.limit_kmh": "Giới hạn (km/h)",
  },
  en: {
    "app.title": "Roadwatch — Monitoring centre",
    "app.short": "Roadwatch",
    "skip": "Skip to main content",
    "lang.switch": "Tiếng Việt",
    "lang.switch.label": "Switch to Vietnamese",
    "login.title": "Sign in",
    "login.intro": "For duty officers. Sign in to see alerts.",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Wrong username or password.",
    "login.error": "Cannot reach the server. Try again later.",
    "login.limited": "Too many failed sign-ins. Wait a few minutes and try again.",
    "logout": "Sign out",
    "user.role.admin": "admin",
    "user.role.operator": "operator",
    "user.role.viewer": "read-only",
    "nav.label": "Pages",
    "nav.live": "Live alerts",
    "nav.search": "Event search",
    "conn.live": "Live",
    "conn.connecting": "Connecting…",
    "conn.lost": "Connection lost, retrying…",
    "feed.title": "Latest alerts",
    "feed.empty": "No events yet.",
    "feed.unacked": "Unacknowledged: {n}",
    "feed.only_unacked": "Only unacknowledged alerts",
    "feed.hide_info": "Hide counting events",
    "event.ack": "Acknowledge",
    "event.ack.label": "Acknowledge alert: {text}",
    "event.acking": "Acknowledging…",
    "event.acked": "Acknowledged by {by} at {at}",
    "event.acked.short": "Acknowledged",
    "event.ack.forbidden": "A read-only account cannot acknowledge alerts.",
    "event.ack.failed": "Could not acknowledge, try again.",
    "event.ack.done": "Acknowledged: {text}",
    "event.snapshot": "Snapshot: {text}",
    "event.snapshot.open": "Open full snapshot",
    "event.no_snapshot": "No snapshot",
    "event.camera": "Camera",
    "event.node": "Node",
    "event.rule": "Rule",
    "event.time": "Time",
    "event.classes": "Objects",
    "event.confidence": "Confidence",
    "event.kind": "Kind",
    "event.phase": "Phase",
    "event.text": "Description",
    "event.status": "Status",
    "event.new": "New alert: {text}",
    "dialog.close": "Close",
    "status.title": "Nodes and cameras",
    "status.empty": "No node has reported yet.",
    "status.last_seen": "· seen {ago}",
    "status.never": "never",
    "status.camera": "Camera",
    "status.stream": "Stream",
    "status.fps": "FPS",
    "status.inference": "Inference (ms)",
    "status.dropped": "Dropped",
    "status.view": "View",
    "status.take_reference": "Accept view",
    "status.take_reference.hint": "After re-aiming or refocusing the camera on purpose: take the present picture as the reference, and the \"camera moved\" alert ends.",
    "status.take_reference.sent": "Sent: camera {camera} takes its present view as the reference.",
    "status.take_reference.sent.short": "Sent",
    "status.take_reference.failed": "Could not send the command to camera {camera}, try again.",
    "counts.title": "Hourly counts (last 24 hours)",
    "counts.empty": "No counts yet.",
    "counts.total": "Total: {n}",
    "counts.chart": "Hourly crossings of line {line}",
    "counts.direction.none": "no direction",
    "search.title": "Event search",
    "search.since": "From",
    "search.until": "To",
    "search.kind": "Event kind",
    "search.camera": "Camera",
    "search.cls": "Object",
    "search.phase": "Phase",
    "search.ack": "Acknowledged",
    "search.any": "Any",
    "search.ack.yes": "Acknowledged",
    "search.ack.no": "Not acknowledged",
    "search.submit": "Search",
    "search.reset": "Clear filters",
    "search.results": "Events found: {total}",
    "search.empty": "No event matches these filters.",
    "search.page": "Page {page} of {pages}",
    "search.prev": "Previous page",
    "search.next": "Next page",
    "search.loading": "Loading…",
    "search.error": "Could not load results.",
    "search.pagination": "Pagination",
    "phase.instant": "instant",
    "phase.start": "start",
    "phase.update": "update",
    "phase.end": "end",
    "node.online": "online",
    "node.offline": "offline",
    "node.stopped": "stopped",
    "node.unknown": "unknown",
    "stream.ok": "ok",
    "stream.lost": "lost",
    "stream.frozen": "frozen",
    "stream.starting": "starting",
    "stream.unknown": "unknown",
    "dir.in": "in",
    "dir.out": "out",
    "class.person": "pedestrian",
    "class.bicycle": "bicycle",
    "class.car": "car",
    "class.motorcycle": "motorcycle",
    "class.bus": "bus",
    "class.truck": "truck",
    "m.direction_name": "Direction",
    "m.direction": "Direction",
    "m.count": "Count",
    "m.dwell_s": "Duration (s)",
    "m.speed_kmh": "Speed (km/h)",
    "m.distance_m": "Distance (m)",
    "m.limit_kmh": "Limit (km/h)",
  },
};

for (const lang of LANGS) {
  Object.assign(STRINGS[lang], kindStrings(lang)); // kind labels come from the wire contract
}

export { KINDS };
export const PHASES = ["instant", "start", "update", "end"];
export const CLASSES = ["person", "bicycle", "car", "motorcycle", "bus", "truck"];

/** The saved language, or Vietnamese; storage may be unavailable (private mode), which is not an error. */
export function savedLang() {
  try {
    const lang = window.localStorage.getItem(STORAGE_KEY);
    return LANGS.includes(lang) ? lang : DEFAULT_LANG;
  } catch {
    return DEFAULT_LANG;
  }
}

export function saveLang(lang) {
  try {
    window.localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // The choice then lasts for this page only.
  }
}

/** Translator for one language: t("key", {n: 3}); a missing key falls back to English, then to the key. */
export function translator(lang) {
  const table = STRINGS[lang] || STRINGS[DEFAULT_LANG];
  return (key, params) => {
    let text = table[key] ?? STRINGS.en[key] ?? key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
    }
    return text;
  };
}

/** A kind, class, phase or state name in the language, or the raw name when it has no translation. */
export function named(t, prefix, value) {
  if (value === null || value === undefined || value === "") {
    return "—";
  }
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? String(value) : text;
}

export function allKeys(lang) {
  return Object.keys(STRINGS[lang]);
}
