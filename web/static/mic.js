// The page's microphone for live capture: getUserMedia -> capture-worklet.js -> float32 frames.
// window.EmoMic.start({processing, onFrame, onLevel}) resolves to {rate, settings, stop()} (settings: the
// echoCancellation, noiseSuppression and autoGainControl the browser applied):
//   processing: the browser's echo cancellation, noise suppression and auto gain (off by default: they
//               distort the voice cues the models read);
//   onFrame(ArrayBuffer): each 40 ms chunk as mono f32le at `rate` (the AudioContext's own rate; the
//               server resamples with soxr), ready for WebSocket.send. Float, not 16-bit: rounding to
//               16 bits alone moved the models' probabilities on quiet (-55 dBFS) speech by up to 0.16;
//               the cost is 4 bytes a sample (176 kB/s at 44.1 kHz);
//   onLevel(dbfs): the chunk's RMS level, for a meter.
"use strict";
(() => {
  // 40 ms frames: the server's fixed cost per frame (receive, checks, resampler call) is about 0.2 ms, so
  // 20 ms frames cost a session nearly twice the CPU; the 20 ms more of delay is a fifth of a hop.
  const CHUNK_MS = 40;

  function rmsDbfs(samples) {
    let s = 0;
    for (let i = 0; i < samples.length; i++) s += samples[i] * samples[i];
    return 10 * Math.log10(s / Math.max(1, samples.length) + 1e-12);
  }

  async function start({ processing = false, onFrame, onLevel }) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error(window.isSecureContext ? "this browser has no microphone access"
        : "the microphone needs https (or localhost): see 'Behind TLS' in web/README.md");
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing,
               channelCount: 1 },
    });
    let ctx;
    try {
      ctx = new AudioContext();
      await ctx.audioWorklet.addModule("capture-worklet.js");
      const source = ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(ctx, "capture-processor", {
        numberOfInputs: 1, numberOfOutputs: 0, processorOptions: { chunkMs: CHUNK_MS },
      });
      node.port.onmessage = (e) => {
        const d = e.data;
        if (!d || d.type !== "chunk") return;
        if (onLevel) onLevel(rmsDbfs(d.samples));
        onFrame(d.samples.buffer);  // little-endian on every platform browsers run on
      };
      source.connect(node);
      if (ctx.state === "suspended") await ctx.resume();
      const stop = () => {
        node.port.onmessage = null;
        try { source.disconnect(); } catch (err) { /* already disconnected */ }
        stream.getTracks().forEach((t) => t.stop());
        ctx.close();
      };
      const track = stream.getAudioTracks()[0];
      const applied = track && track.getSettings ? track.getSettings() : {};
      const settings = {};  // what the browser applied, for the page (and its tests) to show
      for (const k of ["echoCancellation", "noiseSuppression", "autoGainControl"]) settings[k] = applied[k];
      return { rate: Math.round(ctx.sampleRate), settings, stop };
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      if (ctx) ctx.close();
      throw err;
    }
  }

  window.EmoMic = { start };
})();
