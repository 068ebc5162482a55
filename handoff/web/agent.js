// The agent desktop: sign in, ring with a screen pop, talk to the caller through the gateway, wrap up.
// Audio reuses the softphone's AudioWorklet (/phone/phone-worklet.js): 20 ms PCM16 frames at 16 kHz both ways.
"use strict";
const RATE = 16000;
const $ = (id) => document.getElementById(id);
let socket = null, context = null, node = null, stream = null;
let offer = null, callId = null, held = false, muted = false, waitTimer = null;
let wrapCallId = null;  // the call the wrap-up form is for (the one that ended last)
let token = null, statusSince = Date.now(), signedOut = true, retries = 0, pinger = null, ringer = null;
let wanted = null;  // the state the agent chose (available / away): set again after a dropped connection

function show(id, visible) { $(id).hidden = !visible; }
function say(text) { $("message").textContent = text; }
function setStatus(status, since) {
  if (document.body.dataset.status !== status || since) statusSince = since ? since * 1000 : Date.now();
  $("status").textContent = label(STATUSES, status);
  $("status").className = "badge " + status;
  document.body.dataset.status = status;
  $("available").setAttribute("aria-pressed", String(status === "available"));
  $("away").setAttribute("aria-pressed", String(status === "away"));
  tickStatus();
}
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}
function tickStatus() {
  $("status-time").textContent = signedOut ? "" : `for ${clock(Date.now() - statusSince)}`;
}
setInterval(tickStatus, 1000);
setInterval(() => { if (token && socket && !callId) loadMyCalls(); }, 60000);
function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

async function startAudio() {
  stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  context = new AudioContext({ sampleRate: RATE });
  await context.audioWorklet.addModule("/phone/phone-worklet.js");
  node = new AudioWorkletNode(context, "phone-io", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
  context.createMediaStreamSource(stream).connect(node).connect(context.destination);
  node.port.onmessage = ({ data }) => {
    if (data.pcm && callId && !held && !muted && socket && socket.readyState === WebSocket.OPEN) socket.send(data.pcm);
  };
}

function playCaller(buffer) {
  const pcm = new Int16Array(buffer);
  const samples = new Float32Array(pcm.length);
  let energy = 0;
  for (let i = 0; i < pcm.length; i++) { samples[i] = pcm[i] / 32768; energy += samples[i] * samples[i]; }
  $("level").value = Math.min(1, Math.sqrt(energy / Math.max(1, pcm.length)) * 8);
  if (node) node.port.postMessage({ type: "audio", samples }, [samples.buffer]);
}

// Human words for the codes the server sends; the codes themselves are under "Details (codes)".
const REASONS = {
  caller_asked: "The caller asked for a person", intent_needs_agent: "The request needs an agent",
  repeated_fallback: "The bot could not understand the caller", form_failed: "The caller could not give valid details",
  configured_rule: "A handoff rule applies", ivr_request: "The caller chose an agent in the phone menu",
  action_request: "The bot could not complete the request",
};
const QUEUES = { orders: "Orders", returns: "Returns", tech: "Technical support", billing: "Billing", general: "General" };
const ENDINGS = {
  caller_hung_up: "the caller hung up", agent_hung_up: "you hung up", handed_back: "handed back to the bot",
  transferred: "transferred", agent_disconnected: "your connection dropped",
  caller_lost: "the caller's line was lost (the server that had it stopped)",
};
const WITHDRAWN = {
  taken: "another agent took it", caller_hung_up: "the caller hung up", timeout: "nobody answered in time",
  overflow: "the caller was offered a callback or voicemail", declined: "declined",
};
const LANGUAGES = { en: "English", zh: "Chinese" };
const STATUSES = { available: "available", ringing: "ringing", on_call: "on a call", wrap_up: "wrapping up",
                   away: "away", offline: "offline" };
const words = (code) => (code ? String(code).replaceAll("_", " ") : "");
const label = (table, code) => table[code] || words(code);
const sentence = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) : text);
const sureness = (confidence) => (confidence >= 0.8 ? "sure" : confidence >= 0.5 ? "fairly sure" : "unsure");

function fill(list, rows) {
  const el = $(list);
  el.replaceChildren();
  for (const [key, value] of rows) {
    const dt = document.createElement("dt"); dt.textContent = key;
    const dd = document.createElement("dd"); dd.textContent = value ?? "—";
    el.append(dt, dd);
  }
  return rows.length;
}

function time(seconds) { return new Date(seconds * 1000).toLocaleTimeString(); }

function showContext(ctx) {
  if (!ctx) return;
  const contact = ctx.contact;
  const topics = [...new Set((ctx.intents || []).map((i) => sentence(words(i.intent))))];
  fill("facts", [
    ["Caller", ctx.caller_number || "number withheld"],
    ["Customer", contact ? contact.name : "not found by this number"],
    ["Tier / city", contact ? [contact.tier, contact.city].filter(Boolean).join(", ") || null : null],
    ["Email", contact && contact.email], ["Language", label(LANGUAGES, ctx.language) || null],
    ["Queue", label(QUEUES, ctx.queue) + (ctx.priority <= 1 ? " (priority)" : "")],
    ["Why a person", label(REASONS, ctx.reason)], ["Summary", ctx.summary],
    ["Topics", topics.join(", ") || null],
    ["Phone menu", (ctx.ivr_path || []).join(" › ") || null],
  ].filter(([key, value]) => value !== null || ["Caller", "Customer"].includes(key)));
  const orders = ctx.recent_orders || [];
  $("orders").tBodies[0].replaceChildren(...orders.map((o) => {
    const tr = document.createElement("tr");
    for (const value of [o.number, new Date(o.ordered + "T12:00:00").toLocaleDateString(), words(o.status), o.items, o.total]) {
      const td = document.createElement("td"); td.textContent = value; tr.append(td);
    }
    return tr;
  }));
  $("orders-part").hidden = orders.length === 0;
  const slots = Object.entries(ctx.slots || {}).filter(([, v]) => v !== null && v !== "");
  $("slots-part").hidden = fill("slots", slots.map(([k, v]) => [sentence(words(k)), Array.isArray(v) ? v.join(", ") : String(v)])) === 0;
  fill("code-facts", [["Call id", ctx.call_id], ["Reason", ctx.reason], ["Queue", ctx.queue],
                      ["Priority", String(ctx.priority)], ["Customer id", contact && contact.contact_id],
                      ["Slots", slots.length ? JSON.stringify(Object.fromEntries(slots)) : null]]);
  $("intents").replaceChildren(...(ctx.intents || []).map((i) => {
    const li = document.createElement("li");
    li.textContent = `${i.intent} ${(i.confidence * 100).toFixed(0)}% at ${time(i.timestamp)}`;
    return li;
  }));
  const lines = (ctx.transcript || []).filter((line) => line.dtmf || (line.text || "").trim());
  $("transcript").replaceChildren(...lines.map((line) => {
    const li = document.createElement("li");
    li.className = line.role;
    const when = document.createElement("time"); when.textContent = time(line.timestamp);
    const who = document.createElement("span"); who.className = "speaker";
    who.textContent = (line.role === "user" ? "Caller" : line.role === "bot" ? "Bot" : sentence(line.role)) + ": ";
    const what = document.createTextNode(line.dtmf ? `pressed ${line.dtmf}` : line.text);
    li.append(when, who, what);
    if (line.intent) li.title = `${line.intent} ${((line.confidence || 0) * 100).toFixed(0)}% (${sureness(line.confidence || 0)})`;
    return li;
  }));
  $("transcript-part").hidden = lines.length === 0;
  show("context", true);
}

// Ringing: a two-tone ring every 2 s while an offer waits, and a notification when the tab is not in front.
function ringOnce() {
  if (!context) return;
  const now = context.currentTime, gain = context.createGain();
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.25, now + 0.02);
  gain.gain.setValueAtTime(0.25, now + 0.8);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.9);
  gain.connect(context.destination);
  for (const hz of [440, 480]) {
    const tone = context.createOscillator();
    tone.frequency.value = hz; tone.connect(gain); tone.start(now); tone.stop(now + 0.95);
  }
}
function startRinging(m) {
  stopRinging();
  ringOnce(); ringer = setInterval(ringOnce, 2000);
  document.title = "☎ Incoming call · callpilot agent desk";
  if ("Notification" in window && Notification.permission === "granted") {
    const who = m.context.caller_number || "a withheld number";
    const note = new Notification("Incoming call", { body: `${who} · ${label(QUEUES, m.context.queue)}`,
                                                    tag: "callpilot-offer", requireInteraction: true });
    note.onclick = () => { window.focus(); note.close(); };
    window.lastNotification = note;
  }
  window.rings = (window.rings || 0) + 1;  // for tests: how many offers rang here
}
function stopRinging() {
  clearInterval(ringer); ringer = null;
  document.title = "callpilot agent desk";
  if (window.lastNotification) { window.lastNotification.close(); window.lastNotification = null; }
}
function offerNotifications() {
  $("notify").hidden = !("Notification" in window) || Notification.permission !== "default";
}

function startWaitClock(requestedAt) {
  clearInterval(waitTimer);
  const tick = () => { $("offer-wait").textContent = `waiting ${Math.round(Date.now() / 1000 - requestedAt)} s`; };
  tick();
  waitTimer = setInterval(tick, 1000);
}

function onMessage(event) {
  if (event.data instanceof ArrayBuffer) { playCaller(event.data); return; }
  const m = JSON.parse(event.data);
  switch (m.type) {
    case "welcome":
      $("who").textContent = `${m.agent.name} · ${Object.keys(m.agent.skills).map((q) => label(QUEUES, q)).join(", ")}`;
      show("signin", false); show("desk", true); signedOut = false; retries = 0; $("link").textContent = "";
      setStatus(m.status || "offline", m.since);
      if (wanted && m.status === "offline") send({ type: "status", status: wanted });  // back after a drop
      fillDispositions(m.dispositions || []);
      offerNotifications(); loadMyCalls();
      break;
    case "status_changed": setStatus(m.status); break;
    case "offer":
      offer = m; showContext(m.context); show("offer", true); startWaitClock(m.context.requested_at); startRinging(m);
      say(`Call from ${m.context.caller_number || "a withheld number"}`);
      break;
    case "offer_withdrawn":
      if (offer && offer.offer_id === m.offer_id) { offer = null; show("offer", false); clearInterval(waitTimer); stopRinging(); }
      say(`The call stopped ringing: ${label(WITHDRAWN, m.reason)}.`);
      break;
    case "connected":
      callId = m.call_id; held = false; offer = null; clearInterval(waitTimer); stopRinging(); setMuted(false);
      if (m.context) showContext(m.context);
      show("offer", false); show("call", true); show("wrapup", false); show("notes-part", true); $("notes").value = "";
      $("live-lines").replaceChildren();
      $("call-state").textContent = "talking"; $("hold").textContent = "Hold";
      $("caller-keys").hidden = true; $("caller-keys").dataset.keys = "";
      say(m.on_phone ? "Connected on your phone: hold, transfer and hang up work here too." : "Connected: speak to the caller.");
      break;
    case "caller_key":
      if (m.call_id === callId) {
        const keys = $("caller-keys");
        keys.textContent = `caller pressed ${m.digit}` + (keys.dataset.keys ? ` (before: ${keys.dataset.keys})` : "");
        keys.dataset.keys = (m.digit + (keys.dataset.keys || "")).slice(0, 8);
        keys.hidden = false;
      }
      break;
    case "hold":
      held = m.on; $("hold").textContent = held ? "Resume" : "Hold";
      $("call-state").textContent = held ? "caller on hold" : "talking";
      break;
    case "key_sent": say(`Key ${m.digit} sent to the caller.`); break;
    case "transcript": if (m.call_id === callId) addLiveLine(m.speaker, m.text); break;
    case "signed_out": say("A supervisor signed you out."); break;
    case "call_ended":
      if (callId && m.call_id && m.call_id !== callId) break;  // a call this desk already left: not the one on it
      callId = null; wrapCallId = m.call_id || wrapCallId; show("call", false); show("wrapup", true); show("notes-part", true); $("disposition").focus();
      say(`Call ended: ${label(ENDINGS, m.reason)}.`);
      break;
    case "consult": {  // an attended transfer's consultation: dialling, talking, failed, ended
      const on = m.state === "dialling" || m.state === "talking";
      show("complete-transfer", m.state === "talking"); show("cancel-consult", on);
      say({ dialling: `Calling ${m.target} (the caller is on hold)…`, talking: `Talking to ${m.target}: complete the transfer or cancel.`,
            failed: `Could not reach ${m.target} (${m.detail}); the caller is still on hold.`,
            ended: `The consultation with ${m.target} ended; the caller is still on hold.` }[m.state] || "");
      break;
    }
    case "wrapped_up":
      wrapCallId = null; show("wrapup", false); show("context", false); show("notes-part", false); say("Wrap-up saved.");
      for (const ms of [300, 2000, 6000]) setTimeout(loadMyCalls, ms);  // the records are written a moment later
      break;
    case "error": say(`Could not do that: ${m.message}`); if (m.code === 401) $("signin-error").textContent = m.message; break;
  }
}

async function signIn(given) {
  $("signin-error").textContent = "";
  if (!context) {
    try { await startAudio(); } catch (error) { $("signin-error").textContent = `No microphone: ${error.message}`; return; }
  }
  token = given;
  connect();
}

// The websocket; a dropped connection is opened again (1, 2, 4 ... 15 s) with the same token, and the desk shows
// the state the server holds. A refused token (4401) or a supervisor's sign-out (4403) shows the sign-in form.
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/agent/ws`);
  socket = ws;
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token }));
  ws.onmessage = onMessage;
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null; callId = null; stopRinging();
    if (event.code === 4401 || event.code === 4403 || !token) {
      token = null; signedOut = true; wanted = null;
      show("desk", false); show("signin", true); setStatus("signed out");
      $("signin-error").textContent = event.code === 4401 ? "Unknown or expired token."
        : event.code === 4403 ? "A supervisor signed you out." : `Disconnected (${event.code}).`;
      return;
    }
    show("call", false); show("offer", false);
    const wait = Math.min(15, 2 ** retries++);
    $("link").textContent = `connection lost: trying again in ${wait} s…`;
    setTimeout(() => { if (token && !socket) connect(); }, wait * 1000);
  };
  if (!pinger) pinger = setInterval(() => send({ type: "ping" }), 10000);
}

// What the caller and the agent say, transcribed on the call's side (setting agent_transcript).
function addLiveLine(speaker, text) {
  const li = document.createElement("li");
  li.className = speaker;
  const when = document.createElement("time"); when.textContent = new Date().toLocaleTimeString();
  const who = document.createElement("span"); who.className = "speaker";
  who.textContent = speaker === "agent" ? "You: " : "Caller: ";
  li.append(when, who, document.createTextNode(text));
  $("live-lines").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function fillDispositions(list) {
  const select = $("disposition");
  select.replaceChildren(new Option("Disposition…", ""), ...list.map((d) => new Option(d.label, d.code)));
}

function setMuted(on) {
  muted = on;
  $("mute").textContent = on ? "Unmute" : "Mute";
  $("mute").setAttribute("aria-pressed", String(on));
  if (callId) $("call-state").textContent = held ? "caller on hold" : on ? "talking (muted)" : "talking";
}

// Between calls: my calls of the last 7 days, my numbers today, one call opened, a caller looked up.
async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || response.statusText);
  return response.json();
}
function dayStart() {
  const d = new Date(); d.setHours(0, 0, 0, 0);
  const offset = -d.getTimezoneOffset(), sign = offset >= 0 ? "+" : "-", abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T00:00:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
const minutes = (s) => (s === null || s === undefined ? "—" : clock(s * 1000));
async function loadMyCalls() {
  let mine;
  try { mine = await api(`/agent/api/calls?days=7&today=${encodeURIComponent(dayStart())}`); }
  catch (error) { $("my-numbers").replaceChildren(); say(`My calls: ${error.message}`); return; }
  fill("my-numbers", [["Calls today", String(mine.today.calls)], ["Average handle today", minutes(mine.today.average_handle_s)],
                      ["Calls in 7 days", String(mine.period.calls)], ["Average handle (7 days)", minutes(mine.period.average_handle_s)]]);
  const body = $("my-calls").tBodies[0];
  body.replaceChildren(...mine.calls.map((c) => {
    const tr = document.createElement("tr");
    const when = new Date(c.started_at);
    const open = document.createElement("a"); open.href = "#"; open.textContent = when.toLocaleString();
    open.onclick = (event) => { event.preventDefault(); openMyCall(c.call_id); };
    const cells = [open, c.caller_number || "withheld", sentence(c.outcome) + (c.disposition ? ` · ${words(c.disposition)}` : ""),
                   minutes(c.duration_s)];
    tr.append(...cells.map((x) => { const td = document.createElement("td"); td.append(x); return td; }));
    return tr;
  }));
  if (!mine.calls.length) body.innerHTML = '<tr><td class="none" colspan="4">none</td></tr>';
}
async function openMyCall(id) {
  let call;
  try { call = await api(`/agent/api/calls/${encodeURIComponent(id)}`); } catch (error) { say(error.message); return; }
  $("my-call-when").textContent = `${new Date(call.started_at).toLocaleString()} · ${call.caller_number || "withheld"}`;
  $("my-call-lines").replaceChildren(...call.timeline.map((e) => {
    const li = document.createElement("li");
    li.className = e.what;
    const when = document.createElement("time"); when.textContent = new Date(e.at).toLocaleTimeString();
    const who = document.createElement("span"); who.className = "speaker"; who.textContent = `${sentence(e.what)}: `;
    li.append(when, who, document.createTextNode(e.text || e.detail || ""));
    return li;
  }));
  show("my-call", true);
}

$("signin-form").onsubmit = (event) => { event.preventDefault(); signIn($("token").value.trim()); };
$("available").onclick = () => { wanted = "available"; send({ type: "status", status: "available" }); };
$("away").onclick = () => { wanted = "away"; send({ type: "status", status: "away" }); };
$("accept").onclick = () => { if (offer) send({ type: "accept", offer_id: offer.offer_id }); };
$("decline").onclick = () => {
  if (offer) send({ type: "decline", offer_id: offer.offer_id });
  offer = null; show("offer", false); clearInterval(waitTimer); stopRinging();
};
$("hold").onclick = () => send({ type: "hold", on: !held });
$("mute").onclick = () => setMuted(!muted);
$("notify").onclick = async () => { await Notification.requestPermission(); offerNotifications(); };
for (const key of document.querySelectorAll("#agent-keypad button")) key.onclick = () => send({ type: "key", digit: key.textContent });
$("my-call-close").onclick = () => show("my-call", false);
$("contact-form").onsubmit = async (event) => {
  event.preventDefault();
  try {
    const c = await api(`/agent/api/contacts?number=${encodeURIComponent($("contact-number").value.trim())}`);
    fill("contact", [["Name", c.name], ["Number", c.number], ["Email", c.email], ["Tier / city", [c.tier, c.city].filter(Boolean).join(", ") || null]]);
  } catch (error) { fill("contact", [["Not found", error.message]]); }
};
// Shortcuts: Alt + a letter, so typing in the notes never triggers one.
const SHORTCUTS = { a: "accept", d: "decline", h: "hold", m: "mute", x: "hang-up" };
document.addEventListener("keydown", (event) => {
  const id = event.altKey && !event.ctrlKey && !event.metaKey ? SHORTCUTS[event.key.toLowerCase()] : null;
  if (!id || $(id).closest("[hidden]")) return;
  event.preventDefault();
  $(id).click();
});
$("transfer").onclick = () => {
  const queue = $("transfer-queue").value, agent = $("transfer-agent").value.trim();
  const number = $("transfer-number").value.trim();  // a blind transfer out of callpilot
  send(number ? { type: "transfer", number } : agent ? { type: "transfer", agent } : { type: "transfer", queue });
};
$("consult").onclick = () => {
  const number = $("transfer-number").value.trim();
  if (number) send({ type: "consult", number }); else say("Type the outside number to consult first.");
};
$("complete-transfer").onclick = () => { send({ type: "complete_transfer" }); show("complete-transfer", false); show("cancel-consult", false); };
$("cancel-consult").onclick = () => { send({ type: "cancel_consult" }); show("complete-transfer", false); show("cancel-consult", false); };
$("hand-back").onclick = () => send({ type: "hand_back" });
$("hang-up").onclick = () => send({ type: "hang_up" });
$("wrapup-form").onsubmit = (event) => {
  event.preventDefault();
  send({ type: "wrap_up", call_id: wrapCallId || undefined, disposition: $("disposition").value, notes: $("notes").value });
};
