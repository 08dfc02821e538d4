// AudioWorklet processor "capture-processor": the page's microphone tap, shared by the live
// capture (app.js) and the clip recorder. It only copies and batches; conversion and sending
// happen on the main thread.
//
// Load and create:
//   await ctx.audioWorklet.addModule("capture-worklet.js");
//   const node = new AudioWorkletNode(ctx, "capture-processor",
//     { numberOfInputs: 1, numberOfOutputs: 0, processorOptions: { chunkMs: 20 } });
//   source.connect(node);          // a MediaStreamAudioSourceNode (any channel count)
//
// Messages posted on node.port (main thread receives them as event.data):
//   {type: "chunk", samples: Float32Array, rate: <int Hz>, start: <int>}
//       mono audio (channels averaged), at the AudioContext's own rate `rate`, values in
//       [-1, 1] as the browser delivers them; `start` counts the samples posted before this
//       chunk since the node was created (contiguous: the next chunk's start is start +
//       samples.length). Each chunk holds round(rate * chunkMs / 1000) samples (default 20 ms),
//       except the one posted by "flush"/"stop", which may be shorter (never empty).
//       The buffer is transferred, so the receiver owns it.
//   {type: "flushed", samples: <int>}   after a "flush" or "stop" request: everything captured
//       up to that request has been posted; `samples` is the running total.
// Messages it accepts on node.port:
//   {type: "flush"}   post the partial chunk now, then "flushed"
//   {type: "stop"}    as flush, then the processor ends (disconnect the node afterwards)
"use strict";

const DEFAULT_CHUNK_MS = 20;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    const chunkMs = Number.isFinite(opts.chunkMs) && opts.chunkMs > 0 ? opts.chunkMs : DEFAULT_CHUNK_MS;
    this.rate = Math.round(sampleRate);  // the AudioWorkletGlobalScope's context rate
    this.size = Math.max(128, Math.round(this.rate * chunkMs / 1000));
    this.buf = new Float32Array(this.size);
    this.fill = 0;
    this.posted = 0;
    this.running = true;
    this.port.onmessage = (e) => this.command(e.data);
  }

  command(msg) {
    if (!msg || (msg.type !== "flush" && msg.type !== "stop")) return;
    this.post(this.fill);
    this.port.postMessage({ type: "flushed", samples: this.posted });
    if (msg.type === "stop") this.running = false;
  }

  post(n) {
    if (n <= 0) return;
    const samples = this.buf.slice(0, n);  // a copy of exactly n samples, then transferred
    this.port.postMessage({ type: "chunk", samples, rate: this.rate, start: this.posted },
      [samples.buffer]);
    this.posted += n;
    this.fill = 0;
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true;  // not connected yet: keep the node alive
    const channels = input.length;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let v = 0;
      for (let c = 0; c < channels; c++) v += input[c][i];
      this.buf[this.fill++] = channels === 1 ? v : v / channels;
      if (this.fill === this.size) this.post(this.size);
    }
    return true;
  }
}

registerProcessor("capture-processor", CaptureProcessor);
