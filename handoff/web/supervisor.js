// The supervisor's floor: live view (server-sent events), wallboard, queue settings, agents, listen / whisper / barge.
"use strict";
const QUEUES = { orders: "Orders", returns: "Returns", tech: "Technical support", billing: "Billing", general: "General" };
const STRATEGIES = { ringall: "all free agents at once", linear: "in a fixed order", longest_idle: "longest idle first",
                     fewest_calls: "fewest calls first", round_robin: "round robin", random: "at random" };
const STATES = { waiting: "waiting", offered: "ringing", available: "available", ringing: "ringing",
                 on_call: "on call", wrap_up: "wrapping up", away: "away", offline: "offline" };
const label = (table, code) => table[code] || String(code ?? "").replaceAll("_", " ");
const secs = (s) => s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
// A call id is long (a Twilio stream id has 34 characters): its last 8 show, the whole id is the tooltip.
const shortId = (id) => ({ text: id && id.length > 10 ? "…" + id.slice(-8) : id, title: id });
const agentNames = {};
function rows(id, items, cells) {
  const body = document.getElementById(id);
  if (!items.length) {
    const td = document.createElement("td");
    td.colSpan = body.parentElement.querySelectorAll("thead th").length;
    td.className = "none"; td.textContent = "none";
    const tr = document.createElement("tr"); tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    for (const value of cells(item)) {
      const td = document.createElement("td");
      if (value && value.done) {  // a callback made: take it off the list
        const button = document.createElement("button");
        button.textContent = "Done";
        button.onclick = () => fetch(`/supervisor/api/callbacks/${encodeURIComponent(value.done)}/done`,
                                     { method: "POST", credentials: "same-origin" });
        td.append(button);
      } else if (value && value.player) {  // a voicemail: the browser's own player, loaded when played
        const audio = document.createElement("audio");
        audio.controls = true; audio.preload = "none";
        audio.src = `/supervisor/api/voicemails/${encodeURIComponent(value.player)}.wav`;
        td.append(audio);
      } else if (value && value.buttons) {  // actions on the row: [{label, run, name}]
        for (const b of value.buttons) {
          const button = document.createElement("button");
          button.textContent = b.label; button.onclick = b.run; if (b.name) button.name = b.name;
          td.append(button, " ");
        }
      } else if (value && value.title !== undefined) {
        td.textContent = value.text ?? "—"; td.title = value.title ?? "";
      } else {
        td.textContent = value ?? "—";
      }
      tr.append(td);
    }
    return tr;
  }));
}
function render(view) {
  const now = view.at;
  for (const a of view.agents) agentNames[a.agent_id] = a.name;
  const agent = (id) => (id ? { text: agentNames[id] || id, title: id } : null);
  lastView = view;
  rows("queues", view.queues, (q) => [label(QUEUES, q.name), q.open ? "yes" : "closed", label(STRATEGIES, q.strategy),
    q.waiting.length, q.waiting.length ? secs(q.longest_wait_s) : "—", `${q.agents_available} / ${q.agents_logged_in}`,
    secs(q.handle_s), { buttons: [{ label: "Change", name: `change-${q.name}`, run: () => editQueue(q.name) }] }]);
  drawWallboard();
  rows("waiting", view.queues.flatMap((q) => q.waiting), (c) => [shortId(c.call_id), label(QUEUES, c.queue),
    c.caller_number, c.position, secs(c.wait_s), c.expected_wait_s === null ? "unknown" : secs(c.expected_wait_s),
    label(STATES, c.state)]);
  rows("agents", view.agents, (a) => [{ text: a.name, title: a.agent_id },
    Object.entries(a.skills).map(([k, v]) => `${label(QUEUES, k)} (level ${v})`).join(", "),
    label(STATES, a.status), a.since ? secs(now - a.since) : "never signed in", a.online ? "yes" : "no", a.call_id ? shortId(a.call_id) : null,
    a.calls_today, a.occupancy === null || a.occupancy === undefined ? "—" : `${Math.round(a.occupancy * 100)}%`,
    a.status === "offline" ? null : { buttons: [
      { label: "Set away", name: `away-${a.agent_id}`, run: () => agentAction(a.agent_id, "away") },
      { label: "Sign out", name: `signout-${a.agent_id}`, run: () => agentAction(a.agent_id, "signed_out") }] }]);
  rows("live", view.live_calls, (c) => [shortId(c.call_id), label(QUEUES, c.queue), agent(c.agent_id), c.caller_number,
    secs(now - c.connected_at), c.on_hold ? "on hold" : "talking",
    { buttons: [{ label: "Listen", name: `listen-${c.call_id}`, run: () => monitor(c.call_id) }] }]);
  const held = view.live_calls.filter((c) => c.on_hold);
  rows("on-hold", held, (c) => [shortId(c.call_id), agent(c.agent_id), c.caller_number, label(QUEUES, c.queue)]);
  document.getElementById("on-hold-count").textContent = `(${held.length})`;
  rows("callbacks", view.callbacks, (c) => [shortId(c.call_id), c.number, label(QUEUES, c.queue),
    new Date(c.requested_at * 1000).toLocaleTimeString(), String(c.reason || "").replaceAll("_", " "),
    callbackState(c), `${c.attempts || 0}` + (c.outcomes && c.outcomes.length ? ` (${c.outcomes.join(", ")})` : ""),
    {done: c.call_id}]);
  document.getElementById("updated").textContent = `updated ${new Date(now * 1000).toLocaleTimeString()}`;
}
function callbackState(c) {  // pending (with its time), dialling, completed, failed
  const state = c.state || "pending";
  if (state === "pending" && c.next_attempt_at) return `next try ${new Date(c.next_attempt_at * 1000).toLocaleTimeString()}`;
  if (state === "pending" && c.due_at) return `at ${new Date(c.due_at * 1000).toLocaleTimeString()}`;
  if (state === "pending") return "when an agent is free";
  return state.replaceAll("_", " ");
}
// The backup number: whether new calls go there (a supervisor's switch, or callpilot unhealthy), and the switch.
let diverting = null;
async function showDivert(update) {
  const reply = await fetch("/supervisor/api/divert", update === undefined ? { credentials: "same-origin" } :
    { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ on: update }) });
  if (!reply.ok) return;
  const d = await reply.json();
  const button = document.getElementById("divert-toggle");
  button.hidden = !d.backup_number;
  diverting = Boolean(d.switch);
  button.textContent = diverting ? "Answer calls again" : "Divert new calls";
  document.getElementById("divert-state").textContent = !d.backup_number ? "none configured"
    : d.diverting ? `new calls go to ${d.backup_number} (${String(d.reason).replaceAll("_", " ")})`
    : `${d.backup_number} (not in use)`;
}
document.getElementById("divert-toggle").onclick = () => showDivert(!diverting);
showDivert();
setInterval(() => showDivert(), 5000);
const events = new EventSource("/supervisor/events");
events.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
// The key or session was revoked (or expired): stop, and show the sign-in form again.
events.addEventListener("signed_out", () => { events.close(); window.location.reload(); });
events.onerror = () => { document.getElementById("updated").textContent = "reconnecting…"; };

// The wallboard: per queue, live numbers from the floor and today's from the records, amber / red by thresholds.
let lastView = null, today = { queues: {}, thresholds: {} };
function dayStart() {
  const d = new Date(); d.setHours(0, 0, 0, 0);
  const offset = -d.getTimezoneOffset(), sign = offset >= 0 ? "+" : "-", abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T00:00:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
async function loadToday() {
  const reply = await fetch(`/supervisor/api/wallboard?today=${encodeURIComponent(dayStart())}`, { credentials: "same-origin" });
  if (reply.ok) { today = await reply.json(); drawWallboard(); }
}
function judge(name, value) {
  const t = today.thresholds[name];
  if (!t || value === null || value === undefined) return "";
  const worse = (a, b) => (t.below ? a <= b : a >= b);
  return worse(value, t.red) ? "red" : worse(value, t.amber) ? "amber" : "";
}
function drawWallboard() {
  if (!lastView) return;
  const board = document.getElementById("wallboard");
  board.replaceChildren(...lastView.queues.map((q) => {
    const day = today.queues[q.name] || {};
    const staff = lastView.agents.filter((a) => (a.skills[q.name] || 0) > 0);
    const count = (status) => staff.filter((a) => a.status === status).length;
    const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
    const tile = document.createElement("div");
    tile.className = "tile"; tile.dataset.queue = q.name;
    const numbers = [
      ["Waiting", q.waiting.length, judge("waiting", q.waiting.length)],
      ["Longest wait", q.waiting.length ? secs(q.longest_wait_s) : "—", judge("longest_wait_s", q.waiting.length ? q.longest_wait_s : null)],
      [`Service level (${day.service_level_s || 20} s)`, pct(day.service_level), judge("service_level", day.service_level)],
      ["Average answer", day.asa_s === null || day.asa_s === undefined ? "—" : secs(day.asa_s), ""],
      ["Abandoned", day.abandoned ?? 0, judge("abandoned", day.abandoned ?? 0)],
      ["Agents", `${count("available")} free · ${count("on_call") + count("ringing")} busy · ${count("wrap_up")} wrap-up · ${count("away")} away`, ""],
    ];
    const title = document.createElement("div");
    title.className = "label"; title.textContent = label(QUEUES, q.name) + (q.open ? "" : " (closed)");
    tile.append(title, ...numbers.map(([name, value, level]) => {
      const line = document.createElement("div");
      line.className = `number ${level}`; line.dataset.number = name;
      line.textContent = `${name}: ${value}`;
      return line;
    }));
    return tile;
  }));
}
loadToday();
setInterval(loadToday, 10000);
const wall = () => { document.body.classList.toggle("wall"); };  // Escape leaves the wall screen
document.getElementById("wall-toggle").onclick = wall;
if (new URLSearchParams(location.search).get("wall") === "1") document.body.classList.add("wall");
document.addEventListener("keydown", (event) => { if (event.key === "Escape") document.body.classList.remove("wall"); });

// Changing a queue (strategy, timeouts, overflow, closed): PATCH /supervisor/api/queues/{name}.
let editing = null;
const byId = (id) => document.getElementById(id);
byId("q-strategy").replaceChildren(...Object.entries(STRATEGIES).map(([k, v]) => new Option(v, k)));
async function editQueue(name) {
  const reply = await fetch("/supervisor/api/queues", { credentials: "same-origin" });
  const q = (await reply.json()).find((x) => x.queue === name);
  editing = name;
  byId("queue-form-name").textContent = label(QUEUES, name);
  byId("q-strategy").value = q.strategy; byId("q-ring").value = q.ring_timeout_s; byId("q-wait").value = q.max_wait_s;
  byId("q-overflow").value = q.overflow; byId("q-target").value = q.overflow_target || ""; byId("q-closed").checked = q.closed;
  byId("q-message").textContent = q.changed.length ? `changed from the configuration: ${q.changed.join(", ").replaceAll("_", " ")}` : "";
  byId("queue-form").hidden = false;
}
async function sendQueue(method, path, body) {
  const reply = await fetch(path, { method, credentials: "same-origin", headers: { "Content-Type": "application/json" },
                                    body: body ? JSON.stringify(body) : undefined });
  const answer = await reply.json();
  byId("q-message").textContent = reply.ok ? "Saved: the next call offered follows it." : `Not saved: ${answer.detail}`;
  if (reply.ok) byId("queue-form").hidden = true;
  return reply.ok;
}
byId("queue-form").onsubmit = (event) => {
  event.preventDefault();
  sendQueue("PATCH", `/supervisor/api/queues/${editing}`, {
    strategy: byId("q-strategy").value, ring_timeout_s: Number(byId("q-ring").value), max_wait_s: Number(byId("q-wait").value),
    overflow: byId("q-overflow").value, overflow_target: byId("q-target").value.trim() || null, closed: byId("q-closed").checked });
};
byId("q-reset").onclick = () => sendQueue("POST", `/supervisor/api/queues/${editing}/reset`);
byId("q-cancel").onclick = () => { byId("queue-form").hidden = true; };

async function agentAction(agentId, status) {
  const reply = await fetch(`/supervisor/api/agents/${encodeURIComponent(agentId)}/status`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ status }) });
  if (!reply.ok) alert((await reply.json()).detail);
}

// Listen in / whisper / barge: the call's audio (caller and agent mixed) plays here; the microphone is sent only
// while whispering or barging. The worklet is the softphone's (20 ms PCM16 frames at 16 kHz both ways).
let watch = null, audio = null, worklet = null, mic = null, mode = "listen";
async function monitor(callId) {
  stopMonitor();
  audio = new AudioContext({ sampleRate: 16000 });
  await audio.audioWorklet.addModule("/phone/phone-worklet.js");
  worklet = new AudioWorkletNode(audio, "phone-io", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
  worklet.connect(audio.destination);
  worklet.port.onmessage = ({ data }) => {
    if (data.pcm && mode !== "listen" && watch && watch.readyState === WebSocket.OPEN) watch.send(data.pcm);
  };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  watch = new WebSocket(`${scheme}://${location.host}/supervisor/ws/monitor?call_id=${encodeURIComponent(callId)}`);
  watch.binaryType = "arraybuffer";
  watch.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) {
      const pcm = new Int16Array(event.data), samples = new Float32Array(pcm.length);
      let energy = 0;
      for (let i = 0; i < pcm.length; i++) { samples[i] = pcm[i] / 32768; energy += samples[i] * samples[i]; }
      byId("m-level").value = Math.min(1, Math.sqrt(energy / Math.max(1, pcm.length)) * 8);
      window.monitorFrames = (window.monitorFrames || 0) + 1;
      worklet.port.postMessage({ type: "audio", samples }, [samples.buffer]);
      return;
    }
    const m = JSON.parse(event.data);
    if (m.type === "monitoring" || m.type === "mode") { mode = m.mode; showMode(m.call_id); }
    else if (m.type === "ended") { byId("m-message").textContent = "The call ended."; stopMonitor(true); }
    else if (m.type === "error") byId("m-message").textContent = m.message;
  };
  watch.onclose = () => { if (watch) byId("m-message").textContent = "Monitoring stopped."; };
}
function showMode(callId) {
  byId("monitor").hidden = false;
  byId("monitor-call").textContent = shortId(callId).text;
  byId("monitor-mode").textContent = { listen: "listening", whisper: "whispering to the agent", barge: "in the call" }[mode];
  for (const m of ["listen", "whisper", "barge"]) byId(`m-${m}`).setAttribute("aria-pressed", String(mode === m));
}
async function setMode(wanted) {
  if (!watch) return;
  if (wanted !== "listen" && !mic) {
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
      audio.createMediaStreamSource(mic).connect(worklet);
    } catch (error) { byId("m-message").textContent = `No microphone: ${error.message}`; return; }
  }
  watch.send(JSON.stringify({ type: "mode", mode: wanted }));
}
function stopMonitor(keepPanel) {
  const socket = watch; watch = null;
  if (socket) socket.close();
  if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
  if (audio) { audio.close(); audio = null; worklet = null; }
  mode = "listen";
  if (!keepPanel) byId("monitor").hidden = true;
}
byId("m-listen").onclick = () => setMode("listen");
byId("m-whisper").onclick = () => setMode("whisper");
byId("m-barge").onclick = () => setMode("barge");
byId("m-stop").onclick = () => stopMonitor();

// Voicemails: play (audited) and mark done.
let shownVoicemails = null;
async function loadVoicemails() {
  const reply = await fetch("/supervisor/api/voicemails", { credentials: "same-origin" });
  const list = reply.ok ? await reply.json() : [];
  const ids = JSON.stringify(list.map((v) => v.call_id));
  if (ids === shownVoicemails) return;  // unchanged: a message being played keeps playing
  shownVoicemails = ids;
  rows("voicemails", list, (v) => [shortId(v.call_id), v.caller_number, label(QUEUES, v.queue),
    v.left_at ? new Date(v.left_at).toLocaleString() : null, { player: v.call_id },
    { buttons: [{ label: "Done", name: `voicemail-done-${v.call_id}`, run: async () => {
      await fetch(`/supervisor/api/voicemails/${encodeURIComponent(v.call_id)}/done`, { method: "POST", credentials: "same-origin" });
      shownVoicemails = null; loadVoicemails();
    } }] }]);
}
loadVoicemails();
setInterval(loadVoicemails, 15000);
