// Driveline pages: the live screen-pop (EventSource), transcript seeking, click-to-call.
// Plain JavaScript, no build step. Event data is always inserted as text, never as HTML.
"use strict";

const tz = document.body.dataset.tz || "UTC";
const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

function fmt(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { timeZone: tz, weekday: "short", hour: "2-digit", minute: "2-digit", day: "numeric", month: "short" });
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function link(href, text) {
  const a = el("a", text);
  a.href = href;
  return a;
}

// --- click to call (masked: the customer sees the store's number) ---------------------------
async function placeCall(button) {
  const out = button.parentElement.querySelector(".call-result") || button;
  button.disabled = true;
  try {
    const url = button.dataset.url || "/customers/" + Number(button.dataset.customer) + "/call";
    const res = await fetch(url, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
    });
    const data = await res.json().catch(() => ({}));
    out.textContent = res.ok ? " Calling your phone first…" : " Could not call: " + (typeof data.detail === "string" ? data.detail : res.status);
  } catch (err) {
    out.textContent = " Could not call: " + err;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (ev) => {
  const call = ev.target.closest(".call-btn");
  if (call) { placeCall(call); return; }
  const line = ev.target.closest(".transcript .line");
  if (line) seek(line.closest(".call-media"), Number(line.dataset.start), true);
});

// --- transcript: click a line to seek; the line being said is highlighted ------------------
function seek(media, seconds, play) {
  if (!media) return;
  const audio = media.querySelector("audio");
  if (!audio) return;
  const go = () => {
    audio.currentTime = seconds;
    if (play) audio.play().catch(() => {});
  };
  if (audio.readyState >= 1) go(); else audio.addEventListener("loadedmetadata", go, { once: true });
  if (audio.readyState < 1) audio.load();
}

document.querySelectorAll(".call-media audio").forEach((audio) => {
  audio.addEventListener("timeupdate", () => {
    const media = audio.closest(".call-media");
    let current = null;
    media.querySelectorAll(".transcript .line").forEach((line) => {
      line.classList.remove("current");
      if (Number(line.dataset.start) <= audio.currentTime + 0.05) current = line;
    });
    if (current) current.classList.add("current");
  });
});

// A search hit opens the thread at the right second: /customers/7?t=12.5#call-31
(function openAtSecond() {
  const t = new URLSearchParams(location.search).get("t");
  const target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
  if (t === null || !target) return;
  const media = target.classList.contains("call-media") ? target : target.querySelector(".call-media");
  if (!media) return;
  media.scrollIntoView({ block: "center" });
  seek(media, Number(t), false);
  const lines = [...media.querySelectorAll(".transcript .line")];
  const hit = lines.filter((l) => Number(l.dataset.start) <= Number(t) + 0.05).pop();
  if (hit) { hit.classList.add("current"); hit.focus(); }
})();

// --- live screen-pop -------------------------------------------------------------------------
function popCard(ev) {
  const d = ev.data || {};
  const card = document.getElementById("pop-template").content.firstElementChild.cloneNode(true);
  card.dataset.call = d.call_uuid || "";
  const name = d.customer ? d.customer.name : "Unknown caller";
  card.querySelector(".pop-name").textContent = name;
  card.querySelector(".pop-caller").textContent = (d.caller || d.caller_raw || "number withheld") + " · " + fmt(d.at || ev.at);
  // Which department's number was dialled, and the whole relationship with the store.
  const dept = d.department;
  if (d.handoff) card.querySelector(".pop-dept").textContent = "Transferred from " + d.handoff.from_department_name + " to " + d.handoff.department_name;
  else if (dept) card.querySelector(".pop-dept").textContent = "Calling " + dept.name;
  const rel = d.relationship;
  const relBox = card.querySelector(".pop-relationship");
  if (rel) {
    (rel.purchases || []).forEach((p) => relBox.append(el("li", "Bought " + (p.vehicle ? p.vehicle.description : "a vehicle") + " " + fmt(p.purchased_at) + (p.salesperson ? " from " + p.salesperson : ""), "purchase")));
    relBox.append(el("li", rel.service_visits + " service visit(s)" + (rel.last_visit_at ? ", last " + fmt(rel.last_visit_at) : "") + "; " + rel.open_repair_orders + " open RO(s)", "visits"));
    (rel.declined || []).forEach((x) => relBox.append(el("li", "Declined: " + x.description + " (RO " + x.repair_order + ")", "declined")));
    if (rel.open_follow_ups) relBox.append(el("li", rel.open_follow_ups + " open follow-up(s)", "follow-ups"));
  }
  const adv = card.querySelector(".pop-advisor");
  adv.textContent = d.advisor ? "Advisor: " + d.advisor.name : (d.customer ? "No advisor assigned" : "");
  const vehicles = card.querySelector(".pop-vehicles");
  (d.vehicles || []).forEach((v) => vehicles.append(el("li", [v.description, v.plate].filter(Boolean).join(" · "))));
  const ros = card.querySelector(".pop-ros");
  (d.repair_orders || []).forEach((ro) => {
    const box = el("div", null, "ro");
    const head = el("p");
    head.append(el("strong", "RO " + ro.number), " · ", el("span", ro.status, "badge"));
    box.append(head);
    if (ro.promised_at) box.append(el("p", "Promised " + fmt(ro.promised_at)));
    const hist = el("ol", null, "history");
    (ro.history || []).forEach((h) => hist.append(el("li", h.status + " " + fmt(h.at))));
    box.append(hist);
    ros.append(box);
  });
  if (d.customer && !(d.repair_orders || []).length) ros.append(el("p", "No open repair order.", "muted"));
  const entries = card.querySelector(".pop-entries");
  (d.recent_entries || []).forEach((e) => entries.append(el("li", fmt(e.at) + " · " + e.kind.replace("_", " ") + ": " + e.body)));
  if (!(d.recent_entries || []).length) card.querySelector(".pop-entries-h").hidden = true;
  const actions = card.querySelector(".pop-actions");
  if (d.customer) {
    actions.append(link("/customers/" + d.customer.id, "Open thread"), " ");
    const btn = el("button", "Call back", "call-btn");
    btn.type = "button";
    btn.dataset.customer = d.customer.id;
    if (d.caller) btn.dataset.phone = d.caller;
    actions.append(btn, el("span", "", "call-result"));
  } else {
    actions.append(link("/customers?q=" + encodeURIComponent(d.caller || ""), "Find or link the customer"));
  }
  return card;
}

(function liveFeed() {
  const box = document.getElementById("screen-pops");
  if (!box || !window.EventSource) return;
  const status = document.getElementById("live-status");
  const source = new EventSource("/api/v1/events", { withCredentials: true });
  source.onopen = () => { status.textContent = "Live: waiting for calls."; status.dataset.live = "1"; };
  source.onerror = () => { status.textContent = "Reconnecting to the live call feed…"; status.dataset.live = ""; };
  source.addEventListener("call.ringing", (msg) => {
    const ev = JSON.parse(msg.data);
    const card = popCard(ev);
    box.prepend(card);
    while (box.children.length > 5) box.lastElementChild.remove();
  });
  const mark = (label, ended) => (msg) => {
    const ev = JSON.parse(msg.data);
    const uuid = (ev.data || {}).call_uuid;
    box.querySelectorAll(".pop").forEach((card) => {
      if (card.dataset.call !== uuid) return;
      card.querySelector(".pop-state").textContent = label;
      if (ended) card.classList.add("ended");
    });
  };
  // A department transfer (flow step `transfer: department:service`): who is coming over.
  source.addEventListener("call.handoff", (msg) => {
    const ev = JSON.parse(msg.data);
    const d = ev.data || {};
    const card = popCard({ at: ev.at, data: { customer: d.customer, caller: d.caller, handoff: d, at: ev.at } });
    card.querySelector(".pop-state").textContent = "transfer";
    box.prepend(card);
    while (box.children.length > 5) box.lastElementChild.remove();
  });
  source.addEventListener("call.answered", mark("answered", false));
  source.addEventListener("call.transferred", mark("transferred", false));
  source.addEventListener("call.ended", mark("ended", true));
})();

// The customer's thread: a transcript, note or call that lands while the page is open is
// announced (not inserted: a note being typed would be lost by a reload the reader did not ask
// for); the link reloads the thread.
(function liveThread() {
  const timeline = document.querySelector("[data-live-thread]");
  if (!timeline || !window.EventSource) return;
  const customer = Number(timeline.dataset.liveThread);
  const news = timeline.querySelector(".thread-news");
  const source = new EventSource("/api/v1/events", { withCredentials: true });
  source.onopen = () => { timeline.dataset.live = "1"; };
  source.onerror = () => { timeline.dataset.live = ""; };
  source.addEventListener("thread.updated", (msg) => {
    const data = JSON.parse(msg.data).data || {};
    if (data.customer_id !== customer) return;
    news.hidden = false;
  });
  news.querySelector("a").addEventListener("click", (ev) => {
    ev.preventDefault();
    window.location.reload();
  });
})();
