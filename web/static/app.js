// Live emotion timeline. Receives protocol-v1 messages (see web/README.md) over /ws.
// Drawing happens in requestAnimationFrame only; incoming events just append to typed
// arrays, so a burst of 6000 history events costs one redraw, not 6000.
"use strict";
(() => {
  const MAX_SPAN_S = 600;          // the longest selectable window; older points are dropped
  const CAPACITY = 1 << 15;        // hard bound on buffered points (≈55 min at 10 events/s)
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const COMPARE_REDRAW_MS = 1000;  // session means change slowly
  const MFCC_FIRST = 1;            // c0 tracks energy and would flatten the other coefficients
  const LEVEL_FLOOR_DB = -60;
  const GAP_JUMP_S = 1.0;          // consecutive events further apart than this in t: a gap in the stream
  const GAP_FILL = "#5a6678";      // capture gaps (the input device was lost): darker than "no speech"

  const CAPTURE_BACKLOG_MAX = 1 << 20;  // bytes queued in the socket beyond which mic frames are dropped (~10 s)
  const CLOSE_UNKNOWN_SESSION = 4404;  // /ws?session=ID names no (longer) kept session
  const CAPTURE_REFUSED = [1007, 1008, 1011, 1013];  // the server's reasons to stop a capture: do not retry

  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  let sessionId = params.get("session");  // the session watched; null: the server's own stream
  const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;

  function viewerUrl() {
    const q = new URLSearchParams();
    if (token) q.set("token", token);
    if (sessionId) q.set("session", sessionId);
    return wsBase + "/ws" + (q.toString() ? "?" + q.toString() : "");
  }

  function captureUrl() {
    return wsBase + "/ws/capture" + (token ? "?token=" + encodeURIComponent(token) : "");
  }

  // ------------------------------------------------------------------ state
  const emo = { received: 0, predictions: 0, drawnPoints: 0, drawnVertices: 0, lastT: null, frames: 0, lastDrawMs: 0,
                session: null, sessions: [],
                capture: { state: "off", session: null, rate: null, processing: null, sentSamples: 0, droppedFrames: 0,
                           backlogDrops: 0, resets: 0 } };
  window.__emo = emo;

  let labels = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"];
  let colors = {};
  let windowS = 120;
  let paused = false;
  let last = null;                 // last prediction event
  let series = makeSeries(labels.length);
  let agg = makeAgg(labels.length);
  let dirty = false;
  let compareDirty = true;

  function makeSeries(k) {
    // Twice the capacity so appends stay contiguous; compacted by copyWithin when full.
    return {
      k, start: 0, end: 0,
      t: new Float64Array(2 * CAPACITY),
      speech: new Uint8Array(2 * CAPACITY),
      gap: new Uint8Array(2 * CAPACITY),
      p: new Float32Array(2 * CAPACITY * k),
    };
  }

  function makeAgg(k) {
    return Array.from({ length: k }, () => ({
      n: 0, pitchN: 0, pitch: 0, energy: 0, centroid: 0, mfccN: 0, mfcc: new Float64Array(20),
    }));
  }

  function pushPoint(s, t, speech, gap, probs) {
    if (s.end > s.start && t < s.t[s.end - 1]) { s.start = s.end = 0; }  // source restarted
    if (s.end === 2 * CAPACITY) {
      const keep = CAPACITY - 1;
      const from = s.end - keep;
      s.t.copyWithin(0, from, s.end);
      s.speech.copyWithin(0, from, s.end);
      s.gap.copyWithin(0, from, s.end);
      s.p.copyWithin(0, from * s.k, s.end * s.k);
      s.start = Math.max(0, s.start - from);
      s.end = keep;
    }
    const i = s.end++;
    s.t[i] = t;
    s.speech[i] = speech ? 1 : 0;
    s.gap[i] = gap ? 1 : 0;
    for (let k = 0; k < s.k; k++) s.p[i * s.k + k] = probs[k];
    while (s.t[s.start] < t - MAX_SPAN_S) s.start++;
    if (s.end - s.start > CAPACITY) s.start = s.end - CAPACITY;
  }

  function lowerBound(s, t) {
    let lo = s.start, hi = s.end;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s.t[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // ------------------------------------------------------------------ messages
  function onMessage(msg) {
    emo.received++;
    switch (msg && msg.type) {
      case "hello": onHello(msg); break;
      case "prediction": onPrediction(msg); break;
      case "stats": onStats(msg); break;
      case "end": setStreamState("stream ended"); break;
      case "sessions": onSessions(msg); break;
      case "capture": onCaptureAck(msg); break;
      default: break;  // unknown types are ignored (forward compatibility)
    }
  }

  function onHello(msg) {
    labels = Array.isArray(msg.labels) && msg.labels.length ? msg.labels.slice() : labels;
    colors = msg.colors || {};
    emo.session = msg.session || null;
    captureInfo = msg.capture || { enabled: false };
    updateMicButton();
    updateLanguages();
    // Every hello restarts the view: the server replays its history right after it.
    series = makeSeries(labels.length);
    agg = makeAgg(labels.length);
    last = null;
    emo.predictions = 0;
    setStreamState(null);
    buildLegend();
    buildBars();
    buildCompare();
    buildAbout(msg);
    if (msg.session_kind === "lobby") setStreamState("no stream of its own: pick a session or use your microphone");
    compareDirty = true;
    scheduleDraw();
  }

  function onPrediction(ev) {
    if (typeof ev.t !== "number") return;
    emo.predictions++;
    const probs = new Array(labels.length);
    const ep = ev.emotion_probs || {};
    for (let k = 0; k < labels.length; k++) {
      const v = ep[labels[k]];
      probs[k] = typeof v === "number" && isFinite(v) ? v : 0;
    }
    // Non-speech hops are gaps on the timeline whatever probabilities they carry.
    const speech = ev.speech === true && ev.emotion != null;
    pushPoint(series, ev.t, speech, ev.gap === true, probs);
    if (speech) { aggregate(ev); compareDirty = true; }
    last = ev;
    setStreamState(null);
    scheduleDraw();
  }

  function aggregate(ev) {
    const k = labels.indexOf(ev.emotion);
    const f = ev.features;
    if (k < 0 || !f) return;
    const a = agg[k];
    a.n++;
    if (typeof f.pitch_hz === "number" && isFinite(f.pitch_hz)) { a.pitch += f.pitch_hz; a.pitchN++; }
    if (typeof f.energy_db === "number" && isFinite(f.energy_db)) a.energy += f.energy_db;
    if (typeof f.centroid_hz === "number" && isFinite(f.centroid_hz)) a.centroid += f.centroid_hz;
    if (Array.isArray(f.mfcc) && f.mfcc.length >= 20) {
      for (let j = 0; j < 20; j++) a.mfcc[j] += f.mfcc[j];
      a.mfccN++;
    }
  }

  function onStats(msg) {
    const lat = msg.latency_ms || {};
    const ms = (v) => (typeof v === "number" ? v.toFixed(0) + " ms" : "–");
    const parts = [
      `viewers ${msg.viewers}`,
      lat.p50 == null && lat.p95 == null ? "latency idle" : `latency p50 ${ms(lat.p50)} · p95 ${ms(lat.p95)}`,
      `dropped windows ${msg.dropped_windows}`,
      `sent ${msg.sent}`,
    ];
    if (msg.overflows) parts.push(`overflows ${msg.overflows}`);
    // Every loss counter is shown once it is non-zero.
    if (msg.gaps) parts.push(`capture gaps ${msg.gaps} (${Number(msg.gap_seconds || 0).toFixed(1)} s)`);
    if (msg.overrun_seconds) parts.push(`capture overwritten ${Number(msg.overrun_seconds).toFixed(2)} s`);
    if (msg.events_dropped) parts.push(`events dropped ${msg.events_dropped}`);
    if (msg.slow_disconnects) parts.push(`slow viewers dropped ${msg.slow_disconnects}`);
    if (typeof msg.sessions === "number" && msg.sessions > 1) parts.push(`live sessions ${msg.sessions}`);
    if (msg.resets) parts.push(`capture reconnects ${msg.resets}`);
    const refused = Object.entries(msg.capture_refusals || {}).filter(([, n]) => n > 0);
    if (refused.length) parts.push("captures refused: " + refused.map(([k, n]) => `${k.replace(/_/g, " ")} ${n}`).join(", "));
    document.getElementById("stats").textContent = parts.join("  ·  ");
  }

  // ------------------------------------------------------------------ connection
  const statusEl = document.getElementById("status");
  const retryEl = document.getElementById("retry");
  let backoffMs = BACKOFF_MIN_MS;
  let retryTimer = null;

  function setStatus(s) {
    statusEl.textContent = s;
    statusEl.className = "pill " + s;
  }

  function setStreamState(text) {
    const el = document.getElementById("stream-state");
    el.hidden = !text;
    el.textContent = text || "";
  }

  // One connection at a time: a viewer of a session (/ws), or this page's own capture (/ws/capture),
  // which also brings its session's events back. `ws` is it; events of a replaced socket are ignored.
  let ws = null;

  function openSocket(url, { onOpen, onClose }) {
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      onClose({ code: 1006, reason: String(e) });
      return null;
    }
    sock.binaryType = "arraybuffer";
    ws = sock;
    sock.onopen = () => { if (sock === ws) onOpen(sock); };
    sock.onmessage = (e) => {
      if (sock !== ws || typeof e.data !== "string") return;
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }  // ignore malformed frames
      onMessage(msg);
    };
    sock.onclose = (e) => {
      if (sock !== ws) return;
      ws = null;
      onClose(e);
    };
    return sock;
  }

  function closeSocket() {
    const sock = ws;
    ws = null;
    if (sock) sock.close(1000);
  }

  function connect() {
    retryTimer = null;
    retryEl.textContent = "";
    if (capture) return;  // capturing: the capture socket is the page's connection
    setStatus("connecting");
    openSocket(viewerUrl(), {
      onOpen: () => { setStatus("connected"); backoffMs = BACKOFF_MIN_MS; },
      onClose: (e) => {
        setStatus("disconnected");
        if (e.code === CLOSE_UNKNOWN_SESSION) {  // expired: back to the server's own stream
          selectSession(null, { reconnect: false });
          connect();
          return;
        }
        scheduleReconnect();
      },
    });
  }

  function reconnectViewer() {
    if (retryTimer !== null) { clearTimeout(retryTimer); retryTimer = null; }
    closeSocket();
    backoffMs = BACKOFF_MIN_MS;
    connect();
  }

  function scheduleReconnect(fn = connect) {
    if (retryTimer !== null) return;
    const delay = backoffMs * (0.75 + 0.5 * Math.random());  // jitter spreads reconnect storms
    backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
    retryEl.textContent = `retry in ${(delay / 1000).toFixed(1)} s`;
    retryTimer = setTimeout(fn, delay);
  }

  // ------------------------------------------------------------------ sessions
  const sessionSelect = document.getElementById("session-select");

  function selectSession(id, { reconnect = true } = {}) {
    sessionId = id || null;
    const q = new URLSearchParams(location.search);
    if (sessionId) q.set("session", sessionId); else q.delete("session");
    history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q.toString() : ""));
    if (reconnect) reconnectViewer();
  }

  function sessionLabel(s) {
    const when = new Date(s.started * 1000).toLocaleTimeString();
    const what = s.kind === "source" ? `server ${s.source}` : "browser microphone";
    const mine = capture && s.id === capture.session ? " (this page)" : "";
    return `${what}${mine} · ${when} · ${s.live ? "live" : "ended"}`;
  }

  function onSessions(msg) {
    const list = Array.isArray(msg.sessions) ? msg.sessions : [];  // newest first, as sent
    emo.sessions = list.map((s) => s.id);
    const current = emo.session;
    const opts = d3.select(sessionSelect).selectAll("option").data(list, (s) => s.id);
    opts.join("option")
      .attr("value", (s) => s.id)
      .attr("data-kind", (s) => s.kind)
      .attr("data-live", (s) => String(s.live))
      .text(sessionLabel)
      .property("selected", (s) => s.id === current);
    d3.select(sessionSelect).selectAll("option").sort((a, b) => b.started - a.started);
    if (!list.some((s) => s.id === current)) sessionSelect.selectedIndex = -1;  // the lobby: nothing picked yet
  }

  sessionSelect.addEventListener("change", () => {
    if (capture) return;  // the select is disabled while capturing; belt and braces
    selectSession(sessionSelect.value);
  });

  // ------------------------------------------------------------------ microphone capture
  const micBtn = document.getElementById("mic-btn");
  const micProcessing = document.getElementById("mic-processing");
  const micStateEl = document.getElementById("mic-state");
  const languageSelect = document.getElementById("language-select");
  const LANGUAGE_NAMES = { any: "any language", en: "English" };
  let captureInfo = { enabled: false };
  let capture = null;  // {mic, session, key, acked, stopping, refused}

  function setMicState(state, detail) {
    emo.capture.state = state;
    micStateEl.textContent = detail ? `${state}: ${detail}` : state;
    micStateEl.dataset.state = state;
    micBtn.textContent = capture ? "Stop microphone" : "Use my microphone";
    micBtn.setAttribute("aria-pressed", String(!!capture));
    micBtn.classList.toggle("live", !!capture);
    sessionSelect.disabled = !!capture;
    micProcessing.disabled = !!capture;
    languageSelect.disabled = !!capture;  // a session keeps the language (the model) it started with
  }

  // The languages this server offers (each picks an emotion model), its default first; none: no choice.
  function updateLanguages() {
    const offered = Array.isArray(captureInfo.languages) ? captureInfo.languages : [];
    const keep = languageSelect.value;
    const opts = d3.select(languageSelect).selectAll("option").data(offered, (d) => d);
    opts.exit().remove();
    opts.enter().append("option").merge(opts)
      .attr("value", (d) => d).text((d) => LANGUAGE_NAMES[d] || d);
    if (offered.includes(keep)) languageSelect.value = keep;
    const show = captureInfo.enabled && offered.length > 1;
    languageSelect.hidden = !show;
    document.getElementById("language-label").hidden = !show;
  }
  window.EmoLanguage = () => (languageSelect.hidden ? null : languageSelect.value || null);

  function updateMicButton() {
    const needToken = captureInfo.token_required && !token;
    micBtn.hidden = !captureInfo.enabled;
    micBtn.disabled = !capture && needToken;
    micBtn.title = needToken ? "this server needs its token to capture: open the URL it printed (with ?token=...)" : "";
  }

  async function startCapture() {
    const c = capture = { mic: null, session: null, key: null, acked: false, stopping: false };
    setMicState("starting");
    let mic;
    try {
      mic = await window.EmoMic.start({ processing: micProcessing.checked, onFrame: sendFrame });
    } catch (err) {
      if (capture === c) {
        capture = null;
        setMicState("off", `microphone unavailable (${err && err.message ? err.message : err})`);
      }
      return;
    }
    if (capture !== c) { mic.stop(); return; }  // stopped while the browser was still asking for the microphone
    capture.mic = mic;
    emo.capture.rate = capture.mic.rate;
    emo.capture.processing = capture.mic.settings;
    openCapture();
  }

  function openCapture() {
    if (retryTimer !== null) { clearTimeout(retryTimer); retryTimer = null; }
    closeSocket();
    capture.acked = false;
    setStatus("connecting");
    openSocket(captureUrl(), {
      onOpen: (sock) => {
        setStatus("connected");
        const start = { type: "capture", v: 1, rate: capture.mic.rate, format: "f32le" };
        const language = window.EmoLanguage();
        if (language) start.language = language;  // a resumed session keeps its own
        if (capture.session) Object.assign(start, { session: capture.session, key: capture.key });  // resume
        sock.send(JSON.stringify(start));
      },
      onClose: onCaptureClosed,
    });
  }

  function onCaptureAck(msg) {
    if (!capture) return;
    if (capture.session && capture.session !== msg.session) emo.capture.resets = 0;
    else if (capture.session) emo.capture.resets++;
    capture.session = msg.session;
    capture.key = msg.key;
    capture.acked = true;
    backoffMs = BACKOFF_MIN_MS;
    emo.capture.session = msg.session;
    selectSession(msg.session, { reconnect: false });  // a reload, or a viewer given this URL, shows it
    setMicState("capturing", `${capture.mic.rate} Hz → ${msg.rate} Hz`);
  }

  function sendFrame(buf) {
    const sock = ws;
    if (!capture || !capture.acked || capture.stopping || !sock || sock.readyState !== WebSocket.OPEN) {
      emo.capture.droppedFrames++;  // not connected (yet): this audio is lost, the server sees a gap
      return;
    }
    if (sock.bufferedAmount > CAPTURE_BACKLOG_MAX) {  // connected, but the server is not reading
      emo.capture.droppedFrames++;
      emo.capture.backlogDrops++;
      return;
    }
    sock.send(buf);
    emo.capture.sentSamples += buf.byteLength / 4;
  }

  function stopCapture() {
    if (!capture) return;
    capture.stopping = true;
    if (ws && ws.readyState === WebSocket.OPEN && capture.acked) {
      ws.send(JSON.stringify({ type: "stop" }));  // the server ends the session and closes
    } else {
      finishCapture("off");
    }
  }

  function finishCapture(state, detail) {
    const c = capture;
    capture = null;
    if (c && c.mic) c.mic.stop();
    setMicState(state, detail);
    updateMicButton();
    reconnectViewer();  // go on watching: this page's session (its history) if it had one
  }

  function onCaptureClosed(e) {
    setStatus("disconnected");
    if (!capture) return;
    if (capture.stopping) { finishCapture("off", "stopped"); return; }
    const refused = CAPTURE_REFUSED.includes(e.code) || (!capture.acked && !capture.session);
    if (refused) {
      const why = e.reason || (e.code === 1006 ? "refused by the server (token missing or wrong?)" : `code ${e.code}`);
      finishCapture("refused", why);
      return;
    }
    setMicState("reconnecting", "connection lost; resuming the session");
    scheduleReconnect(openCapture);  // the same session, its pipeline restarted
  }

  micBtn.addEventListener("click", () => { if (capture) stopCapture(); else startCapture(); });

  // ------------------------------------------------------------------ controls
  document.querySelectorAll("[data-window]").forEach((btn) => {
    btn.addEventListener("click", () => {
      windowS = Number(btn.dataset.window);
      document.querySelectorAll("[data-window]").forEach((b) => b.classList.toggle("active", b === btn));
      scheduleDraw(true);
    });
  });
  const pauseBtn = document.getElementById("pause");
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    pauseBtn.setAttribute("aria-pressed", String(paused));
    scheduleDraw(true);
  });

  // ------------------------------------------------------------------ drawing
  let frameRequested = false;
  function scheduleDraw(force) {
    dirty = true;
    if (force) compareDirty = true;
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(frame);
    }
  }

  function frame() {
    frameRequested = false;
    if (!dirty) return;
    dirty = false;
    const started = performance.now();
    emo.frames++;
    drawTimeline();
    if (!paused) {  // paused: the timeline shows a "paused" tag; everything else is frozen
      drawNow();
      drawBars();
    }
    emo.lastDrawMs = performance.now() - started;
  }

  // The session means change slowly: redraw them on a timer, not per frame.
  setInterval(() => {
    if (compareDirty && !paused) {
      compareDirty = false;
      drawCompare();
    }
  }, COMPARE_REDRAW_MS);

  const color = (label) => colors[label] || "#888";

  function buildLegend() {
    const el = d3.select("#legend");
    el.selectAll("*").remove();
    const items = el.selectAll("span.item").data(labels).join("span").attr("class", "item");
    items.append("span").attr("class", "swatch").style("background", color);
    items.append("span").text((d) => d);
    const ns = el.append("span").attr("class", "item");
    ns.append("span").attr("class", "swatch nonspeech");
    ns.append("span").attr("class", "muted").text("no speech");
    const gp = el.append("span").attr("class", "item");
    gp.append("span").attr("class", "swatch").style("background", GAP_FILL);
    gp.append("span").attr("class", "muted").text("capture gap");
  }

  // Timeline: static skeleton built once; each frame only rewrites path "d" attributes.
  const tl = (() => {
    const svg = d3.select("#timeline");
    const margin = { top: 8, right: 12, bottom: 24, left: 38 };
    const root = svg.append("g");
    const grid = root.append("g");
    const band = root.append("path").attr("class", "nonspeech-band");
    const gapBand = root.append("path").attr("class", "gap-band").attr("fill", GAP_FILL).attr("fill-opacity", 0.55);
    const areas = root.append("g");
    const xAxis = root.append("g").attr("class", "axis");
    const yAxis = root.append("g").attr("class", "axis");
    const pausedTag = root.append("text").attr("class", "paused-tag").attr("text-anchor", "end")
      .attr("dy", "1em").text("paused").attr("display", "none");
    const empty = root.append("text").attr("class", "muted").attr("text-anchor", "middle")
      .style("fill", "var(--muted)").text("waiting for speech events…");
    return { svg, margin, root, grid, band, gapBand, areas, xAxis, yAxis, pausedTag, empty, width: 0, height: 0 };
  })();

  function layoutTimeline() {
    const node = tl.svg.node();
    const w = node.clientWidth, h = node.clientHeight;
    if (w === tl.width && h === tl.height) return false;
    tl.width = w; tl.height = h;
    const m = tl.margin;
    tl.innerW = Math.max(10, w - m.left - m.right);
    tl.innerH = Math.max(10, h - m.top - m.bottom);
    tl.root.attr("transform", `translate(${m.left},${m.top})`);
    tl.y = d3.scaleLinear([0, 1], [tl.innerH, 0]);
    tl.yAxis.call(d3.axisLeft(tl.y).ticks(4).tickFormat(d3.format(".0%")));
    tl.grid.selectAll("line").data(tl.y.ticks(4)).join("line").attr("class", "gridline")
      .attr("x1", 0).attr("x2", tl.innerW).attr("y1", tl.y).attr("y2", tl.y);
    tl.xAxis.attr("transform", `translate(0,${tl.innerH})`);
    tl.pausedTag.attr("x", tl.innerW - 4).attr("y", 4);
    tl.empty.attr("x", tl.innerW / 2).attr("y", tl.innerH / 2);
    return true;
  }

  function fmtClock(t) {
    const s = Math.max(0, t);
    const m = Math.floor(s / 60);
    const sec = Math.floor(s - 60 * m);
    return `${m}:${sec < 10 ? "0" : ""}${sec}`;
  }

  // Reduce the visible points to at most one vertex per 2 px: time buckets averaging the
  // speech points' probabilities; a bucket with no speech is a gap (non-speech band).
  function decimate(s, i0, i1, t0, t1, maxVertices) {
    const n = i1 - i0, k = s.k;
    const nb = Math.min(n, maxVertices);
    const vt = new Float64Array(nb), vs = new Uint8Array(nb), vg = new Uint8Array(nb), vp = new Float32Array(nb * k);
    if (n <= maxVertices) {
      for (let j = 0; j < n; j++) {
        const i = i0 + j;
        vt[j] = s.t[i]; vs[j] = s.speech[i]; vg[j] = s.gap[i];
        for (let c = 0; c < k; c++) vp[j * k + c] = s.p[i * k + c];
      }
      return { n: nb, t: vt, speech: vs, gap: vg, p: vp };
    }
    const cnt = new Uint32Array(nb), spc = new Uint32Array(nb);
    const dt = (t1 - t0) / nb || 1;
    for (let i = i0; i < i1; i++) {
      const b = Math.min(nb - 1, Math.max(0, Math.floor((s.t[i] - t0) / dt)));
      cnt[b]++; vt[b] += s.t[i];
      if (s.gap[i]) vg[b] = 1;  // a bucket with any gap point shows the gap (it must not vanish when zoomed out)
      if (s.speech[i]) {
        spc[b]++;
        for (let c = 0; c < k; c++) vp[b * k + c] += s.p[i * k + c];
      }
    }
    let m = 0;  // compact away empty buckets
    for (let b = 0; b < nb; b++) {
      if (!cnt[b]) continue;
      vt[m] = vt[b] / cnt[b];
      vs[m] = spc[b] * 2 >= cnt[b] ? 1 : 0;
      vg[m] = vg[b];
      for (let c = 0; c < k; c++) vp[m * k + c] = spc[b] ? vp[b * k + c] / spc[b] : 0;
      m++;
    }
    return { n: m, t: vt, speech: vs, gap: vg, p: vp };
  }

  function drawTimeline() {
    layoutTimeline();
    const s = series;
    const svgNode = tl.svg.node();
    tl.pausedTag.attr("display", paused ? null : "none");
    if (paused) return;
    const hasData = s.end > s.start;
    // Until the stream is longer than the window, fill it from the left instead of scrolling.
    const t0 = hasData ? s.t[s.start] : 0;
    const tEnd = hasData ? Math.max(s.t[s.end - 1], t0 + windowS) : windowS;
    const tStart = tEnd - windowS;
    const x = d3.scaleLinear([tStart, tEnd], [0, tl.innerW]);
    const ticks = Math.max(2, Math.floor(tl.innerW / 90));
    tl.xAxis.call(d3.axisBottom(x).ticks(ticks).tickFormat(fmtClock));
    const i0 = lowerBound(s, tStart), i1 = s.end;
    const v = decimate(s, i0, i1, tStart, tEnd, Math.max(2, Math.floor(tl.innerW / 2)));
    const k = s.k;

    // Cumulative sums per vertex give the stacked layers without d3.stack's object churn.
    const cum = new Float32Array(v.n * (k + 1));
    for (let j = 0; j < v.n; j++) {
      let acc = 0;
      for (let c = 0; c < k; c++) { acc += v.p[j * k + c]; cum[j * (k + 1) + c + 1] = acc; }
    }
    const idx = d3.range(v.n);
    const y = tl.y;
    tl.areas.selectAll("path").data(labels).join("path")
      .attr("fill", color).attr("fill-opacity", 0.88)
      .attr("d", (_, c) => d3.area()
        .defined((j) => v.speech[j] === 1)
        .x((j) => x(v.t[j]))
        .y0((j) => y(Math.min(1, cum[j * (k + 1) + c])))
        .y1((j) => y(Math.min(1, cum[j * (k + 1) + c + 1])))(idx));

    // Non-speech runs: one path of rectangles, from the first silent vertex to the next speech one.
    let d = "";
    for (let j = 0; j < v.n; j++) {
      if (v.speech[j]) continue;
      const a = j;
      while (j + 1 < v.n && !v.speech[j + 1]) j++;
      const xa = x(a > 0 ? (v.t[a - 1] + v.t[a]) / 2 : v.t[a]);
      const xb = x(j + 1 < v.n ? (v.t[j] + v.t[j + 1]) / 2 : v.t[j]);
      d += `M${xa.toFixed(1)},0H${Math.max(xb, xa + 1).toFixed(1)}V${tl.innerH}H${xa.toFixed(1)}Z`;
    }
    tl.band.attr("d", d || null);
    const gaps = gapRuns(v, x);
    tl.gapBand.attr("d", gaps.d || null);
    tl.empty.attr("display", hasData ? "none" : null);

    emo.drawnPoints = i1 - i0;
    emo.drawnVertices = v.n;
    emo.lastT = i1 > i0 ? s.t[i1 - 1] : null;
    svgNode.dataset.points = String(i1 - i0);
    svgNode.dataset.vertices = String(v.n);
    svgNode.dataset.gaps = String(gaps.runs);
    svgNode.dataset.lastT = emo.lastT === null ? "" : String(emo.lastT);
    svgNode.dataset.windowS = String(windowS);
  }

  // Capture gaps: runs of gap-flagged vertices, and jumps in t (a source that skips its outages).
  function gapRuns(v, x) {
    let d = "", runs = 0;
    const rect = (xa, xb) => {
      runs++;
      d += `M${xa.toFixed(1)},0H${Math.max(xb, xa + 2).toFixed(1)}V${tl.innerH}H${xa.toFixed(1)}Z`;
    };
    for (let j = 0; j < v.n; j++) {
      if (j > 0 && v.t[j] - v.t[j - 1] > GAP_JUMP_S && !v.gap[j] && !v.gap[j - 1]) rect(x(v.t[j - 1]), x(v.t[j]));
      if (!v.gap[j]) continue;
      const a = j;
      while (j + 1 < v.n && v.gap[j + 1]) j++;
      rect(x(a > 0 ? v.t[a - 1] : v.t[a]), x(v.t[j]));
    }
    return { d, runs };
  }

  // ------------------------------------------------------------------ current state
  function drawNow() {
    const ev = last;
    const emEl = document.getElementById("current-emotion");
    if (!ev) return;
    const speech = ev.speech === true && ev.emotion != null;
    // Uncertain: the calibrated probability is below the model's threshold; show the leading label as a guess.
    emEl.textContent = speech ? (ev.uncertain ? `uncertain (${ev.emotion}?)` : ev.emotion) : "—";
    emEl.style.color = speech && !ev.uncertain ? color(ev.emotion) : "var(--muted)";
    const conf = speech && ev.emotion_probs ? ev.emotion_probs[ev.emotion] : null;
    document.getElementById("confidence").textContent =
      typeof conf === "number" ? (100 * conf).toFixed(0) + " %" : "—";
    const gp = ev.gender_probs || {};
    document.getElementById("gender").textContent = ev.gender
      ? `${ev.gender}${typeof gp[ev.gender] === "number" ? " (" + (100 * gp[ev.gender]).toFixed(0) + " %)" : ""}`
      : "—";
    document.getElementById("speech").textContent = ev.gap ? "capture gap (device lost)" : (ev.speech ? "speech" : "no speech");
    document.getElementById("stream-t").textContent = `${fmtClock(ev.t)} (${ev.source || "?"})`;
    const lvl = typeof ev.level_dbfs === "number" ? ev.level_dbfs : null;
    document.getElementById("level-text").textContent = lvl === null ? "—" : `${lvl.toFixed(1)} dBFS`;
    const frac = lvl === null ? 0 : Math.min(1, Math.max(0, (lvl - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB));
    document.getElementById("level-bar").style.width = `${(100 * frac).toFixed(1)}%`;
  }

  const bars = { svg: d3.select("#bars") };
  function buildBars() {
    bars.svg.selectAll("*").remove();
    const w = bars.svg.node().clientWidth || 260;
    const rowH = 24, labelW = 78, valueW = 42;
    bars.svg.attr("height", labels.length * rowH + 4);
    bars.x = d3.scaleLinear([0, 1], [0, Math.max(20, w - labelW - valueW)]);
    const rows = bars.svg.selectAll("g").data(labels).join("g")
      .attr("transform", (_, i) => `translate(0,${i * rowH + 2})`);
    rows.append("text").attr("class", "label").attr("y", rowH / 2).attr("dy", "0.35em").text((d) => d);
    rows.append("rect").attr("class", "track").attr("x", labelW).attr("y", 4)
      .attr("height", rowH - 8).attr("width", bars.x(1)).attr("rx", 3);
    bars.fill = rows.append("rect").attr("x", labelW).attr("y", 4).attr("height", rowH - 8)
      .attr("rx", 3).attr("fill", color).attr("width", 0);
    bars.value = rows.append("text").attr("class", "value").attr("x", w).attr("text-anchor", "end")
      .attr("y", rowH / 2).attr("dy", "0.35em").text("–");
  }

  function drawBars() {
    if (!last || !bars.fill) return;
    const ep = last.speech && last.emotion != null ? (last.emotion_probs || {}) : {};
    const val = (d) => (typeof ep[d] === "number" ? ep[d] : 0);
    bars.fill.attr("width", (d) => bars.x(Math.min(1, val(d))))
      .attr("fill-opacity", (d) => (d === last.emotion ? 1 : 0.7));
    bars.value.text((d) => (typeof ep[d] === "number" ? (100 * ep[d]).toFixed(0) + "%" : "–"));
  }

  // ------------------------------------------------------------------ comparison view
  const cmp = {};
  function buildCompare() {
    for (const id of ["pitch", "energy", "centroid", "mfcc"]) {
      const svg = d3.select(`#cmp-${id}`);
      svg.selectAll("*").remove();
      const w = svg.node().clientWidth || 200, h = svg.node().clientHeight || 170;
      const m = { top: 14, right: 6, bottom: 22, left: 40 };
      const g = svg.append("g").attr("transform", `translate(${m.left},${m.top})`);
      const c = { svg, g, w: w - m.left - m.right, h: h - m.top - m.bottom };
      c.yAxis = g.append("g").attr("class", "axis");
      c.xAxis = g.append("g").attr("class", "axis").attr("transform", `translate(0,${c.h})`);
      if (id === "mfcc") {
        c.lines = g.append("g").selectAll("path").data(labels).join("path")
          .attr("class", "mfcc-line").attr("stroke", color);
      } else {
        c.x = d3.scaleBand(labels, [0, c.w]).padding(0.18);
        c.bars = g.append("g").selectAll("rect").data(labels).join("rect")
          .attr("x", (d) => c.x(d)).attr("width", c.x.bandwidth()).attr("fill", color).attr("rx", 2);
        c.values = g.append("g").selectAll("text").data(labels).join("text").attr("class", "value")
          .attr("text-anchor", "middle").attr("x", (d) => c.x(d) + c.x.bandwidth() / 2);
        c.xAxis.call(d3.axisBottom(c.x).tickFormat((d) => d.slice(0, 3)).tickSizeOuter(0));
      }
      cmp[id] = c;
    }
  }

  function drawBarGroup(c, means, fmt) {
    const vals = means.filter((v) => v !== null);
    if (!vals.length) {
      c.bars.attr("height", 0).attr("y", c.h);
      c.values.text("");
      return;
    }
    let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
    if (hi <= 0) { lo = Math.min(...vals) - 6; hi = Math.max(...vals) + 3; }  // dB: bars from a floor
    const pad = (hi - lo) * 0.12 || 1;
    const y = d3.scaleLinear([lo, hi + pad], [c.h, 0]);
    const base = y(lo < 0 && hi > 0 ? 0 : lo);
    c.yAxis.call(d3.axisLeft(y).ticks(4).tickSizeOuter(0));
    c.bars.attr("y", (_, i) => (means[i] === null ? base : Math.min(base, y(means[i]))))
      .attr("height", (_, i) => (means[i] === null ? 0 : Math.abs(base - y(means[i]))));
    c.values.attr("y", (_, i) => (means[i] === null ? base : Math.min(base, y(means[i]))) - 3)
      .text((_, i) => (means[i] === null ? "" : fmt(means[i])));
  }

  function drawCompare() {
    if (!cmp.pitch) return;
    const mean = (sum, n) => (n > 0 ? sum / n : null);
    drawBarGroup(cmp.pitch, agg.map((a) => mean(a.pitch, a.pitchN)), d3.format(".0f"));
    drawBarGroup(cmp.energy, agg.map((a) => mean(a.energy, a.n)), d3.format(".0f"));
    drawBarGroup(cmp.centroid, agg.map((a) => mean(a.centroid, a.n)), d3.format(".0f"));

    const c = cmp.mfcc;
    const profiles = agg.map((a) => (a.mfccN ? Array.from(a.mfcc, (v) => v / a.mfccN).slice(MFCC_FIRST) : null));
    const all = profiles.filter(Boolean).flat();
    const x = d3.scaleLinear([MFCC_FIRST, 19], [0, c.w]);
    c.xAxis.call(d3.axisBottom(x).ticks(Math.min(18, Math.floor(c.w / 28))).tickFormat((d) => `c${d}`));
    if (!all.length) { c.lines.attr("d", null); return; }
    const ext = d3.extent(all);
    const y = d3.scaleLinear([Math.min(ext[0], 0), Math.max(ext[1], 0)], [c.h, 0]).nice();
    c.yAxis.call(d3.axisLeft(y).ticks(4).tickSizeOuter(0));
    const line = d3.line().x((_, j) => x(j + MFCC_FIRST)).y((v) => y(v));
    c.lines.attr("d", (_, i) => (profiles[i] ? line(profiles[i]) : null));
  }

  function buildAbout(msg) {
    const el = d3.select("#about");
    el.selectAll("*").remove();
    el.text(null);
    const rows = [["server", msg.server_version], ["session", msg.session]];
    for (const [prefix, obj] of [["model", msg.model_card], ["config", msg.config]]) {
      for (const [k, v] of Object.entries(obj || {})) {
        rows.push([`${prefix}.${k}`, typeof v === "object" ? JSON.stringify(v) : String(v)]);
      }
    }
    for (const [k, v] of rows) {
      if (v === undefined) continue;
      el.append("span").attr("class", "k").text(k);
      el.append("span").attr("class", "v").text(v);
    }
  }

  window.addEventListener("resize", () => { buildBars(); buildCompare(); scheduleDraw(true); });

  buildLegend();
  buildBars();
  buildCompare();
  setMicState("off");
  connect();
})();
