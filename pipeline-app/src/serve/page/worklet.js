// The AudioWorklet processor of steno's captions page, served at /worklet.js: it hands the
// page the microphone's samples in blocks of BLOCK frames at the AudioContext's own rate.
// The node is created with one input channel (channelCountMode "explicit"), so Web Audio has
// already mixed the microphone down to mono; resampling to 16 kHz and encoding happen in the
// page (captions.js), off the audio thread.
//
// Messages from the page: "flush" posts what is collected so far, then "flushed".

/** Frames per block posted to the page: about 43 ms at 48 kHz (128-frame render quanta x 16). */
const BLOCK = 2048;

class StenoCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.post();
        this.port.postMessage("flushed");
      }
    };
  }

  /** Sends the collected samples (if any) to the page, handing over their buffer. */
  post() {
    if (this.filled === 0) return;
    const samples = this.block.slice(0, this.filled);
    this.port.postMessage(samples, [samples.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    // No channel while the input is not connected or has ended: nothing to collect.
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let read = 0;
      while (read < channel.length) {
        const count = Math.min(channel.length - read, BLOCK - this.filled);
        this.block.set(channel.subarray(read, read + count), this.filled);
        this.filled += count;
        read += count;
        if (this.filled === BLOCK) this.post();
      }
    }
    return true;
  }
}

registerProcessor("steno-capture", StenoCapture);
