// The agent desktop: sign in, ring with a screen pop, talk to the caller through the gateway, wrap up.
// Audio reuses the softphone's AudioWorklet (/phone/phone-worklet.js): 20 ms PCM16 frames at 16 kHz both ways.
"use strict";
const RATE = 16000;
const $ = (id) => document.getElementById(id);
let socket = null, context = null, node = null, stream = null;
let offer = null, callId = null, held = false, waitTimer = null;

function show(id, visible) { $(id).hidden = !visible; }
function say(text) { $("message").textContent = text; }
function setStatus(status) {
  $("status").textContent = status.replace("_", " ");
  $("status").className = "badge " + status;
  document.body.dataset.status = status;
}
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
    if (data.pcm && callId && !held && socket && socket.readyState === WebSocket.OPEN) socket.send(data.pcm);
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

function fill(list, rows) {
  const el = $(list);
  el.replaceChildren();
  for (const [key, value] of rows) {
    const dt = document.createElement("dt"); dt.textContent = key;
    const dd = document.createElement("dd"); dd.textContent = value ?? "—";
    el.append(dt, dd);
  }
}

function time(seconds) { return new Date(seconds * 1000).toLocaleTimeString(); }

function showContext(ctx) {
  if (!ctx) return;
  const contact = ctx.contact;
  fill("facts", [
    ["Caller", ctx.caller_number], ["Customer", contact ? `${contact.name} (${contact.contact_id})` : "unknown"],
    ["Tier / city", contact ? [contact.tier, contact.city].filter(Boolean).join(", ") : null],
    ["Email", contact && contact.email], ["Language", ctx.language], ["Queue", `${ctx.queue} (priority ${ctx.priority})`],
    ["Reason", ctx.reason], ["Summary", ctx.summary], ["IVR path", (ctx.ivr_path || []).join(" › ") || null],
  ]);
  $("intents").replaceChildren(...(ctx.intents || []).map((i) => {
    const li = document.createElement("li");
    li.textContent = `${i.intent} ${(i.confidence * 100).toFixed(0)}% at ${time(i.timestamp)}`;
    return li;
  }));
  fill("slots", Object.entries(ctx.slots || {}).filter(([, v]) => v !== null).map(([k, v]) => [k, JSON.stringify(v)]));
  $("transcript").replaceChildren(...(ctx.transcript || []).map((line) => {
    const li = document.createElement("li");
    li.className = line.role;
    const when = document.createElement("time"); when.textContent = time(line.timestamp);
    const who = document.createElement("b"); who.textContent = (line.role === "user" ? "caller" : line.role) + ": ";
    const what = document.createTextNode(line.dtmf ? `[keys ${line.dtmf}]` : line.text);
    li.append(when, who, what);
    if (line.intent) li.append(` (${line.intent} ${((line.confidence || 0) * 100).toFixed(0)}%)`);
    return li;
  }));
  show("context", true);
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
      $("who").textContent = `${m.agent.name} · ${Object.keys(m.agent.skills).join(", ")}`;
      show("signin", false); show("desk", true); setStatus("signed in");
      break;
    case "status_changed": setStatus(m.status); break;
    case "offer":
      offer = m; showContext(m.context); show("offer", true); startWaitClock(m.context.requested_at);
      say(`Call from ${m.context.caller_number || "unknown number"}`);
      break;
    case "offer_withdrawn":
      if (offer && offer.offer_id === m.offer_id) { offer = null; show("offer", false); clearInterval(waitTimer); }
      say(`Offer withdrawn: ${m.reason}`);
      break;
    case "connected":
      callId = m.call_id; held = false; offer = null; clearInterval(waitTimer);
      if (m.context) showContext(m.context);
      show("offer", false); show("call", true); show("wrapup", false);
      $("call-state").textContent = "talking"; $("hold").textContent = "Hold";
      $("caller-keys").hidden = true; $("caller-keys").dataset.keys = "";
      say("Connected: speak to the caller.");
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
    case "call_ended":
      callId = null; show("call", false); show("wrapup", true);
      say(`Call ended: ${m.reason.replace("_", " ")}`);
      break;
    case "wrapped_up": show("wrapup", false); show("context", false); say("Wrap-up saved."); break;
    case "error": say(`${m.code}: ${m.message}`); if (m.code === 401) $("signin-error").textContent = m.message; break;
  }
}

async function signIn(token) {
  $("signin-error").textContent = "";
  try { await startAudio(); } catch (error) { $("signin-error").textContent = `No microphone: ${error.message}`; return; }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/agent/ws`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => socket.send(JSON.stringify({ type: "hello", token }));
  socket.onmessage = onMessage;
  socket.onclose = (event) => {
    socket = null; callId = null;
    show("desk", false); show("signin", true); setStatus("signed out");
    $("signin-error").textContent = event.code === 4401 ? "Unknown or expired token." : `Disconnected (${event.code}).`;
  };
  setInterval(() => send({ type: "ping" }), 10000);
}

$("signin-form").onsubmit = (event) => { event.preventDefault(); signIn($("token").value.trim()); };
$("available").onclick = () => send({ type: "status", status: "available" });
$("away").onclick = () => send({ type: "status", status: "away" });
$("accept").onclick = () => { if (offer) send({ type: "accept", offer_id: offer.offer_id }); };
$("decline").onclick = () => {
  if (offer) send({ type: "decline", offer_id: offer.offer_id });
  offer = null; show("offer", false); clearInterval(waitTimer);
};
$("hold").onclick = () => send({ type: "hold", on: !held });
$("transfer").onclick = () => {
  const queue = $("transfer-queue").value, agent = $("transfer-agent").value.trim();
  send(agent ? { type: "transfer", agent } : { type: "transfer", queue });
};
$("hand-back").onclick = () => send({ type: "hand_back" });
$("hang-up").onclick = () => send({ type: "hang_up" });
$("wrapup-form").onsubmit = (event) => {
  event.preventDefault();
  send({ type: "wrap_up", disposition: $("disposition").value, notes: $("notes").value });
};
