// Clips panel: record a clip (microphone, up to 30 s), upload one (drag and drop or file picker) or pick a
// bundled sample; play it back; send the file's bytes over the /clip websocket (web/clips.py) and show the
// clip-level result (the same aggregation as `emotion-monitor predict`) with the clip's own timeline.
// Recording uses the capture worklet shared with the live capture (capture-worklet.js) and encodes a 16-bit
// PCM WAV at the browser's rate; the server decodes and resamples it with the loader of `emotion-monitor file`.
// Playback goes through Web Audio (decodeAudioData), so no blob: media source is needed under the page's CSP.
"use strict";
(() => {
  const MAX_RECORD_S = 30;
  const MAX_CLIP_BYTES = 16 * 1024 * 1024;   // web.clips.MAX_CLIP_BYTES: refused here before sending
  const token = new URLSearchParams(location.search).get("token");

  // Test hooks (tests/test_clips_browser.py) and a place to look from the console.
  const st = {
    recording: false, recordedSeconds: 0, recordRate: null, sent: 0, results: 0, errors: 0,
    lastResult: null, lastError: null, clipName: null, clipBytes: 0, clipKind: null,
    playing: false, playedSeconds: 0, playbackDuration: null, samples: 0,
  };
  window.__clips = st;

  const $ = (id) => document.getElementById(id);
  const ui = {
    panel: $("clips"), record: $("clip-record"), recTime: $("clip-rec-time"), file: $("clip-file"),
    drop: $("clip-drop"), samples: $("clip-samples"), play: $("clip-play"), name: $("clip-name"),
    status: $("clip-status"), result: $("clip-result"), emotion: $("clip-emotion"), gender: $("clip-gender"),
    speech: $("clip-speech"), dlClip: $("clip-dl-clip"), dlJson: $("clip-dl-json"),
  };
  if (!ui.panel) return;

  let clip = null;      // {bytes: ArrayBuffer, name, kind, type}
  let urls = [];        // object URLs of the current downloads, revoked when the clip changes
  let rec = null;       // the recording in progress
  let starting = false; // getUserMedia / worklet loading under way (a second click must not start another)
  let player = null;    // {ctx, source, started, duration}

  function setStatus(text, kind) {
    ui.status.textContent = text;
    ui.status.dataset.kind = kind || "";
  }

  function clipUrl(name) {
    const q = new URLSearchParams({ name });
    const language = window.EmoLanguage ? window.EmoLanguage() : null;  // app.js's language choice
    if (language) q.set("language", language);
    if (token) q.set("token", token);
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/clip?" + q.toString();
  }

  // ------------------------------------------------------------------ recording
  async function startRecording() {
    if (rec || starting) return;
    starting = true;
    try {
      await openRecorder();
    } finally {
      starting = false;
    }
  }

  async function openRecorder() {
    stopPlayback();
    let stream;
    try {
      // The browser's voice processing distorts pitch and level, the cues the models read: off.
      stream = await navigator.mediaDevices.getUserMedia({ audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
    } catch (err) {
      const why = window.isSecureContext ? err.message || err.name
        : "the page is not a secure context (open it via https or on localhost)";
      setStatus("microphone unavailable: " + why, "error");
      return;
    }
    const ctx = new AudioContext();
    try {
      await ctx.audioWorklet.addModule("capture-worklet.js");
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
      setStatus("cannot load the capture worklet: " + err.message, "error");
      return;
    }
    const node = new AudioWorkletNode(ctx, "capture-processor",
      { numberOfInputs: 1, numberOfOutputs: 0, processorOptions: { chunkMs: 50 } });
    rec = { ctx, stream, node, chunks: [], n: 0, rate: ctx.sampleRate, stopping: false };
    node.port.onmessage = (e) => onWorkletMessage(e.data);
    ctx.createMediaStreamSource(stream).connect(node);
    await ctx.resume();
    st.recording = true;
    st.recordedSeconds = 0;
    st.recordRate = rec.rate;
    ui.record.textContent = "■ Stop";
    ui.record.setAttribute("aria-pressed", "true");
    ui.panel.classList.add("is-recording");
    setStatus("recording… (stops by itself at " + MAX_RECORD_S + " s)", "busy");
  }

  function onWorkletMessage(msg) {
    if (!rec || !msg) return;
    if (msg.type === "chunk") {
      rec.rate = msg.rate;
      const room = MAX_RECORD_S * rec.rate - rec.n;
      if (room <= 0) return;
      const s = msg.samples.length > room ? msg.samples.subarray(0, room) : msg.samples;
      rec.chunks.push(s);
      rec.n += s.length;
      st.recordedSeconds = rec.n / rec.rate;
      ui.recTime.textContent = st.recordedSeconds.toFixed(1) + " / " + MAX_RECORD_S + " s";
      if (rec.n >= MAX_RECORD_S * rec.rate) stopRecording();
    } else if (msg.type === "flushed" && rec.stopping) {
      finishRecording();
    }
  }

  function stopRecording() {
    if (!rec || rec.stopping) return;
    rec.stopping = true;
    rec.node.port.postMessage({ type: "stop" });  // the worklet posts what it holds, then "flushed"
  }

  function finishRecording() {
    const r = rec;
    rec = null;
    r.node.disconnect();
    r.stream.getTracks().forEach((t) => t.stop());
    r.ctx.close();
    st.recording = false;
    ui.record.textContent = "● Record";
    ui.record.setAttribute("aria-pressed", "false");
    ui.panel.classList.remove("is-recording");
    if (r.n === 0) { setStatus("nothing was recorded", "error"); return; }
    const samples = new Float32Array(r.n);
    let at = 0;
    for (const c of r.chunks) { samples.set(c, at); at += c.length; }
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    useClip({ bytes: encodeWav(samples, r.rate), name: "recording-" + stamp + ".wav", kind: "recording",
      type: "audio/wav" }, { play: false });
  }

  function encodeWav(samples, rate) {
    const buf = new ArrayBuffer(44 + 2 * samples.length);
    const v = new DataView(buf);
    const ascii = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    ascii(0, "RIFF"); v.setUint32(4, 36 + 2 * samples.length, true); ascii(8, "WAVE");
    ascii(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
    ascii(36, "data"); v.setUint32(40, 2 * samples.length, true);
    for (let i = 0; i < samples.length; i++) {
      const x = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(44 + 2 * i, x < 0 ? Math.round(x * 32768) : Math.round(x * 32767), true);
    }
    return buf;
  }

  // ------------------------------------------------------------------ the current clip
  function useClip(c, { play }) {
    stopPlayback();
    clip = c;
    st.clipName = c.name; st.clipBytes = c.bytes.byteLength; st.clipKind = c.kind;
    st.playedSeconds = 0; st.playbackDuration = null;
    ui.name.textContent = c.name + " (" + (c.bytes.byteLength / 1024).toFixed(0) + " KiB)";
    ui.play.disabled = false;
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls = [];
    setDownload(ui.dlClip, new Blob([c.bytes], { type: c.type || "application/octet-stream" }), c.name);
    ui.dlJson.hidden = true;
    if (play) startPlayback();
    analyse(c);
  }

  function setDownload(a, blob, name) {
    const u = URL.createObjectURL(blob);
    urls.push(u);
    a.href = u;
    a.download = name;
    a.hidden = false;
  }

  // ------------------------------------------------------------------ playback (Web Audio)
  async function startPlayback() {
    if (!clip) return;
    stopPlayback();
    const ctx = new AudioContext();
    let audio;
    try {
      audio = await ctx.decodeAudioData(clip.bytes.slice(0));  // decodeAudioData detaches its argument
    } catch (err) {
      ctx.close();
      setStatus("this browser cannot play " + clip.name + " (the analysis does not need it)", "error");
      return;
    }
    const source = ctx.createBufferSource();
    source.buffer = audio;
    source.connect(ctx.destination);
    player = { ctx, source, duration: audio.duration };
    st.playing = true;
    st.playbackDuration = audio.duration;
    ui.play.textContent = "■ Stop";
    source.onended = () => { if (player && player.source === source) stopPlayback(); };
    await ctx.resume();
    player.started = ctx.currentTime;
    source.start();
    requestAnimationFrame(tickPlayback);
  }

  function tickPlayback() {
    if (!player || player.started === undefined) return;
    st.playedSeconds = Math.min(player.duration, player.ctx.currentTime - player.started);
    drawPlayhead(st.playedSeconds);
    requestAnimationFrame(tickPlayback);
  }

  function stopPlayback() {
    if (!player) return;
    const p = player;
    player = null;
    try { p.source.stop(); } catch (_) { /* not started yet */ }
    p.ctx.close();
    st.playing = false;
    ui.play.textContent = "▶ Play";
    drawPlayhead(null);
  }

  // ------------------------------------------------------------------ analysis over /clip
  function analyse(c) {
    if (c.bytes.byteLength > MAX_CLIP_BYTES) {
      fail("the clip is " + (c.bytes.byteLength / 1048576).toFixed(1) + " MiB; the limit is " +
        MAX_CLIP_BYTES / 1048576 + " MiB");
      return;
    }
    setStatus("analysing " + c.name + "…", "busy");
    ui.result.setAttribute("aria-busy", "true");
    const ws = new WebSocket(clipUrl(c.name));
    ws.binaryType = "arraybuffer";
    let answered = false;
    ws.onopen = () => { ws.send(c.bytes); st.sent++; };
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      if (clip !== c) return;  // a newer clip replaced this one meanwhile
      answered = true;
      if (msg.type === "clip_result") showResult(msg);
      else if (msg.type === "clip_error") fail(msg.reason);
    };
    ws.onclose = (e) => {
      ui.result.removeAttribute("aria-busy");
      if (answered || clip !== c) return;
      // A refused handshake (no token, foreign origin) reaches the page only as code 1006, without a reason.
      fail(e.reason || (e.code === 1006 ? "the server refused or dropped the connection (token missing or wrong?)"
        : "connection closed (" + e.code + ")"));
    };
  }

  function fail(reason) {
    st.errors++;
    st.lastError = reason;
    setStatus("not analysed: " + reason, "error");
  }

  // ------------------------------------------------------------------ result
  function showResult(msg) {
    st.results++;
    st.lastResult = msg;
    const r = msg.result;
    ui.result.hidden = false;
    ui.emotion.textContent = r.emotion || "no speech";
    const g = r.gender;
    ui.gender.textContent = g ? g + " " + (100 * r.gender_probs[g]).toFixed(0) + "%" : "—";
    ui.speech.textContent = r.speech_seconds.toFixed(1) + " s of " + msg.duration_s.toFixed(1) + " s";
    let note = r.emotion ? "" : ": no speech found";
    if (msg.clipped_fraction > 1e-3) {  // as `predict` warns: clipping distorts the features the models read
      note += " (" + (100 * msg.clipped_fraction).toFixed(1) + " % of samples clipped: less reliable)";
    }
    setStatus("analysed " + msg.name + note, "ok");
    const json = JSON.stringify({ name: msg.name, duration_s: msg.duration_s, result: r, events: msg.events }, null, 1);
    setDownload(ui.dlJson, new Blob([json], { type: "application/json" }),
      msg.name.replace(/\.[A-Za-z0-9]+$/, "") + ".emotion.json");
    drawBars(msg);
    drawTimeline(msg);
  }

  const colorOf = (msg, k) => (msg.colors && msg.colors[k]) || "#8d97a7";

  function drawBars(msg) {
    const svg = d3.select("#clip-bars");
    const labels = msg.labels || Object.keys(msg.result.emotion_probs);
    const probs = msg.result.emotion_probs || {};
    const w = svg.node().clientWidth || 300;
    const rowH = 24, labelW = 78, valueW = 52;
    const x = d3.scaleLinear([0, 1], [0, Math.max(20, w - labelW - valueW)]);
    svg.attr("height", labels.length * rowH + 4).selectAll("*").remove();
    const rows = svg.selectAll("g").data(labels).join("g").attr("class", "bar")
      .attr("data-label", (d) => d).attr("transform", (_, i) => `translate(0,${i * rowH + 2})`);
    rows.append("text").attr("class", "label").attr("y", rowH / 2).attr("dy", "0.35em").text((d) => d);
    rows.append("rect").attr("class", "track").attr("x", labelW).attr("y", 4).attr("height", rowH - 8)
      .attr("width", x(1)).attr("rx", 3);
    rows.append("rect").attr("class", "fill").attr("x", labelW).attr("y", 4).attr("height", rowH - 8).attr("rx", 3)
      .attr("fill", (d) => colorOf(msg, d)).attr("fill-opacity", (d) => (d === msg.result.emotion ? 1 : 0.7))
      .attr("width", (d) => x(Math.min(1, probs[d] || 0)));
    rows.append("text").attr("class", "value").attr("x", w).attr("text-anchor", "end").attr("y", rowH / 2)
      .attr("dy", "0.35em").text((d) => (typeof probs[d] === "number" ? (100 * probs[d]).toFixed(1) + "%" : "–"));
  }

  const tl = { margin: { top: 6, right: 8, bottom: 22, left: 36 } };
  function drawTimeline(msg) {
    const svg = d3.select("#clip-timeline");
    svg.selectAll("*").remove();
    const labels = msg.labels || [];
    const ev = msg.events || [];
    svg.attr("data-points", ev.length);
    const w = svg.node().clientWidth || 600, h = svg.node().clientHeight || 160, m = tl.margin;
    const iw = Math.max(10, w - m.left - m.right), ih = Math.max(10, h - m.top - m.bottom);
    const root = svg.append("g").attr("transform", `translate(${m.left},${m.top})`);
    const x = d3.scaleLinear([0, Math.max(msg.duration_s, 0.1)], [0, iw]);
    const y = d3.scaleLinear([0, 1], [ih, 0]);
    const speech = (e) => e.speech === true && e.emotion != null;
    // Non-speech hops: grey bands, as on the live timeline.
    const hop = ev.length > 1 ? ev[1].t - ev[0].t : 0.1;
    root.append("g").selectAll("rect").data(ev.filter((e) => !speech(e))).join("rect")
      .attr("class", "nonspeech-band").attr("x", (e) => x(e.t - hop)).attr("width", Math.max(1, x(hop) - x(0)))
      .attr("y", 0).attr("height", ih);
    const rows = ev.map((e) => {
      const p = speech(e) ? e.emotion_probs || {} : {};
      const row = { t: e.t, speech: speech(e) };
      labels.forEach((k) => { row[k] = typeof p[k] === "number" ? p[k] : 0; });
      return row;
    });
    const stacked = d3.stack().keys(labels)(rows);
    const area = d3.area().defined((d) => d.data.speech).curve(d3.curveStepBefore)
      .x((d) => x(d.data.t)).y0((d) => y(d[0])).y1((d) => y(d[1]));
    root.append("g").selectAll("path").data(stacked).join("path").attr("class", "clip-area")
      .attr("fill", (s) => colorOf(msg, s.key)).attr("d", area);
    root.append("g").attr("class", "axis").attr("transform", `translate(0,${ih})`)
      .call(d3.axisBottom(x).ticks(Math.max(2, Math.floor(iw / 80))).tickFormat((t) => t + " s"));
    root.append("g").attr("class", "axis").call(d3.axisLeft(y).ticks(3).tickFormat(d3.format(".0%")));
    tl.playhead = root.append("line").attr("class", "playhead").attr("y1", 0).attr("y2", ih).attr("display", "none");
    tl.x = x;
  }

  function drawPlayhead(t) {
    if (!tl.playhead) return;
    if (t === null) { tl.playhead.attr("display", "none"); return; }
    tl.playhead.attr("display", null).attr("x1", tl.x(t)).attr("x2", tl.x(t));
  }

  // ------------------------------------------------------------------ uploads and samples
  async function useFile(file) {
    if (!file) return;
    if (file.size > MAX_CLIP_BYTES) {
      fail(file.name + " is " + (file.size / 1048576).toFixed(1) + " MiB; the limit is " +
        MAX_CLIP_BYTES / 1048576 + " MiB");
      return;
    }
    useClip({ bytes: await file.arrayBuffer(), name: file.name, kind: "upload", type: file.type }, { play: false });
  }

  async function loadSamples() {
    let index;
    try {
      const r = await fetch("samples/index.json");
      if (!r.ok) return;
      index = await r.json();
    } catch (_) {
      return;  // no samples bundled: the gallery stays empty
    }
    const items = (index && index.samples) || [];
    d3.select(ui.samples).selectAll("button").data(items).join("button").attr("type", "button")
      .attr("class", "sample").attr("data-file", (d) => d.file).attr("title", (d) => '"' + d.text + '"')
      .html("").call((b) => {
        b.append("span").attr("class", "sample-title").text((d) => d.title);
        b.append("span").attr("class", "muted small").text((d) => d.seconds.toFixed(1) + " s");
      })
      .on("click", (_, d) => playSample(d));
    st.samples = items.length;
  }

  async function playSample(d) {
    setStatus("loading " + d.file + "…", "busy");
    const r = await fetch("samples/" + encodeURIComponent(d.file));
    if (!r.ok) { fail("cannot load sample " + d.file + " (" + r.status + ")"); return; }
    useClip({ bytes: await r.arrayBuffer(), name: d.file, kind: "sample", type: "audio/flac" }, { play: true });
  }

  // ------------------------------------------------------------------ wiring
  ui.record.addEventListener("click", () => (rec ? stopRecording() : startRecording()));
  ui.play.addEventListener("click", () => (player ? stopPlayback() : startPlayback()));
  ui.file.addEventListener("change", () => { useFile(ui.file.files[0]); ui.file.value = ""; });
  // The whole panel takes drops (a file dropped just beside the zone would otherwise open in the tab).
  ["dragenter", "dragover"].forEach((t) => ui.panel.addEventListener(t, (e) => {
    e.preventDefault();
    ui.drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => ui.panel.addEventListener(t, () => ui.drop.classList.remove("over")));
  ui.panel.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) useFile(f);
  });
  loadSamples();
})();
