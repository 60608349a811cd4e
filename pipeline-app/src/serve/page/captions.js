// The script of steno's live-captions page (index.html), served at /captions.js.
//
// Live captions: the microphone (getUserMedia) feeds an AudioWorklet (worklet.js) that posts
// blocks of mono samples at the AudioContext's rate; here they are resampled to 16 kHz,
// encoded (s16le or f32) and sent as binary frames over the WebSocket
// /v1/stream?encoding=...&rate=16000&interim=true. The server answers with one JSON event per
// message: each final is appended as a line; the current partial is shown below them, its
// stable words in normal text and the rest dimmed, until the final of its chunk replaces it.
// Stop sends END_OF_AUDIO; the server then sends the run report and closes the socket.
//
// Transcribe a file: the form posts multipart/form-data to /v1/audio/transcriptions.
//
// The token (its field is pre-filled from #token=SECRET in the page's address) goes on the
// WebSocket URL as ?token= (browsers cannot set a WebSocket's headers) and on HTTP requests as
// Authorization: Bearer.
"use strict";

(() => {
  /** The rate the page sends: Whisper's. */
  const RATE = 16000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    token: $("token"),
    start: $("start"),
    encoding: $("encoding"),
    liveStatus: $("live-status"),
    liveError: $("live-error"),
    captions: $("captions"),
    finals: $("finals"),
    partial: $("partial"),
    report: $("report"),
    upload: $("upload"),
    file: $("file"),
    responseFormat: $("response-format"),
    uploadButton: $("upload-button"),
    uploadStatus: $("upload-status"),
    uploadError: $("upload-error"),
    uploadResult: $("upload-result"),
  };
  const partialStable = ui.partial.querySelector(".stable");
  const partialUnstable = ui.partial.querySelector(".unstable");

  // ---- Token and errors -------------------------------------------------------------------

  // The token has a form of its own (browsers expect a password field in one); Enter in it
  // must not reload the page.
  $("settings").addEventListener("submit", (event) => event.preventDefault());
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("token")) ui.token.value = fragment.get("token");

  const token = () => ui.token.value.trim();
  const bearer = () => (token() ? { Authorization: `Bearer ${token()}` } : {});

  function showError(box, message) {
    box.textContent = message;
    box.hidden = false;
  }

  function clearError(box) {
    box.textContent = "";
    box.hidden = true;
  }

  /** The message of an HTTP error response: OpenAI's `{"error":{"message"}}`, or its text. */
  async function errorText(response) {
    const text = await response.text();
    try {
      return JSON.parse(text).error.message;
    } catch {
      return text || response.statusText;
    }
  }

  // ---- Resampling and encoding ------------------------------------------------------------

  /** Zero crossings of the sinc on each side of the resampler's kernel. */
  const ZERO_CROSSINGS = 32;
  /** Points per input sample in the resampler's kernel table. */
  const PHASES = 256;

  /**
   * A streaming windowed-sinc resampler for mono audio: from the AudioContext's rate (usually
   * 48 kHz, sometimes 44.1 kHz) to 16 kHz.
   *
   * Why windowed sinc: going down to 16 kHz folds everything above 8 kHz back into the speech
   * band unless it is filtered out first. Linear interpolation alone barely filters (from
   * 48 kHz it lets the 8-24 kHz hiss and sibilants alias down onto the speech), so a low-pass
   * filter is needed anyway, and a windowed sinc is the low-pass and the interpolation in one.
   * It costs about 200 multiply-adds per output sample: nothing for a browser.
   *
   * The filter: cutoff at 95% of the lower Nyquist frequency, 32 zero crossings each side,
   * Blackman window. From 48 kHz that is flat to 7 kHz (the sibilants Whisper listens to
   * reach 8 kHz), -6 dB at 7.6 kHz, and below -60 dB from 8.2 kHz, so almost nothing aliases
   * onto the speech. The kernel is tabulated at PHASES points per input sample and
   * interpolated linearly, so any ratio (44.1 kHz too) works without a sin() per tap. Each
   * output is divided by the sum of its weights, so a constant passes unchanged. The audio is
   * delayed by half the kernel (about 2 ms).
   *
   * (Asking for `new AudioContext({sampleRate: 16000})` instead is not portable: Firefox
   * refuses to connect a microphone to a context whose rate differs from the device's.)
   */
  class Resampler {
    constructor(fromRate, toRate) {
      /** Input samples per output sample. */
      this.step = fromRate / toRate;
      const cutoff = 0.475 * Math.min(1, toRate / fromRate); // cycles per input sample
      this.halfWidth = Math.ceil(ZERO_CROSSINGS / (2 * cutoff)); // in input samples
      // h(x) for x = i / PHASES input samples from the centre; the scale does not matter, as
      // outputs are normalised by their weights. Past halfWidth the window is 0.
      this.table = new Float32Array(this.halfWidth * PHASES + 2);
      for (let i = 0; i < this.table.length; i++) {
        const x = i / PHASES;
        const u = Math.min(1, x / this.halfWidth);
        const blackman = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
        const phase = Math.PI * 2 * cutoff * x;
        this.table[i] = (phase === 0 ? 1 : Math.sin(phase) / phase) * blackman;
      }
      // The input not consumed yet, starting with half a kernel of silence before the first
      // sample, and where the next output sample falls in it (in input samples).
      this.buffer = new Float32Array(8192);
      this.length = this.halfWidth;
      this.time = this.halfWidth;
    }

    /** The output samples that `input` (the next input samples) completes. */
    push(input) {
      if (this.step === 1) return input.slice();
      if (this.length + input.length > this.buffer.length) {
        const grown = new Float32Array(2 * (this.length + input.length));
        grown.set(this.buffer.subarray(0, this.length));
        this.buffer = grown;
      }
      this.buffer.set(input, this.length);
      this.length += input.length;

      const half = this.halfWidth;
      const table = this.table;
      const buffer = this.buffer;
      const out = new Float32Array(Math.max(0, Math.ceil((this.length - half - this.time) / this.step) + 1));
      let n = 0;
      while (this.time + half <= this.length - 1) {
        const t = this.time;
        let sum = 0;
        let weights = 0;
        for (let k = Math.ceil(t - half), last = Math.floor(t + half); k <= last; k++) {
          const p = Math.abs(t - k) * PHASES;
          const i = Math.floor(p);
          const w = table[i] + (p - i) * (table[i + 1] - table[i]);
          sum += w * buffer[k];
          weights += w;
        }
        out[n++] = sum / weights;
        this.time += this.step;
      }
      // Forget the input that no later output sample reaches.
      const done = Math.floor(this.time - half);
      if (done > 0) {
        buffer.copyWithin(0, done, this.length);
        this.length -= done;
        this.time -= done;
      }
      return out.subarray(0, n);
    }

    /** The output samples still held back at the end of the input. */
    flush() {
      return this.step === 1 ? new Float32Array(0) : this.push(new Float32Array(this.halfWidth));
    }
  }

  /** `samples` in [-1, 1] as the bytes of one binary frame: little-endian s16le or f32. */
  function encode(samples, encoding) {
    const width = encoding === "f32" ? 4 : 2;
    const bytes = new ArrayBuffer(samples.length * width);
    const view = new DataView(bytes);
    for (let i = 0; i < samples.length; i++) {
      const sample = Math.max(-1, Math.min(1, samples[i]));
      if (width === 4) view.setFloat32(4 * i, sample, true);
      else view.setInt16(2 * i, Math.round(sample * 32767), true);
    }
    return bytes;
  }

  // ---- Captions ---------------------------------------------------------------------------

  /** The highest chunk whose final is shown: its partials, if late, are not shown again. */
  let lastFinalChunk = -1;

  // Test hook, read by pipeline-app/tests/serve_browser.rs: how many partials were shown, and
  // how many of them with both a stable and an unstable part, counted from the spans as
  // rendered (a partial can come and go between two looks of a test).
  function countPartial() {
    ui.captions.dataset.partialsShown = Number(ui.captions.dataset.partialsShown) + 1;
    if (partialStable.textContent !== "" && partialUnstable.textContent !== "") {
      ui.captions.dataset.partialsSplit = Number(ui.captions.dataset.partialsSplit) + 1;
    }
  }

  function clearCaptions() {
    ui.finals.replaceChildren();
    hidePartial();
    ui.report.hidden = true;
    lastFinalChunk = -1;
  }

  function hidePartial() {
    ui.partial.hidden = true;
    partialStable.textContent = "";
    partialUnstable.textContent = "";
    delete ui.partial.dataset.chunk;
  }

  function scrollDown() {
    ui.captions.scrollTop = ui.captions.scrollHeight;
  }

  function showFinal(event) {
    const line = document.createElement("p");
    line.className = "final";
    line.dataset.chunk = event.chunk;
    line.title = `${event.start.toFixed(1)}-${event.end.toFixed(1)} s`;
    line.textContent = event.text;
    ui.finals.append(line);
    lastFinalChunk = Math.max(lastFinalChunk, event.chunk);
    if (ui.partial.dataset.chunk !== undefined && Number(ui.partial.dataset.chunk) <= event.chunk) {
      hidePartial();
    }
    scrollDown();
  }

  function showPartial(event) {
    if (event.chunk <= lastFinalChunk) return;
    if (event.text === "") {
      hidePartial();
      return;
    }
    // `stable` is a prefix of `text` that later partials keep; the rest may still change.
    const stable = event.text.startsWith(event.stable) ? event.stable : "";
    partialStable.textContent = stable;
    partialUnstable.textContent = event.text.slice(stable.length);
    ui.partial.dataset.chunk = event.chunk;
    ui.partial.hidden = false;
    countPartial();
    scrollDown();
  }

  function showReport(report) {
    const p95 = (summary) => (summary ? `${Math.round(summary.p95)} ms` : "none (no captions)");
    $("report-audio").textContent = `${report.audio_seconds.toFixed(1)} s`;
    $("report-segments").textContent = String(report.segments);
    $("report-latency").textContent = p95(report.latency_ms);
    $("report-speech-latency").textContent = p95(report.speech_end_latency_ms);
    ui.report.hidden = false;
  }

  // ---- The live stream --------------------------------------------------------------------

  /**
   * The stream being captured or finished, or null: its socket, microphone, audio graph and
   * resampler, and what became of it.
   */
  let live = null;

  const liveStatus = (text) => (ui.liveStatus.textContent = text);

  function setButton(label, disabled) {
    ui.start.textContent = label;
    ui.start.disabled = disabled;
  }

  ui.start.addEventListener("click", () => (live ? stop() : start()));

  async function start() {
    clearError(ui.liveError);
    clearCaptions();
    setButton("Starting…", true);
    const session = { encoding: ui.encoding.value, reported: false, failed: false };
    live = session;
    try {
      if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
        throw new Error(
          "this browser gives the microphone only to pages on https:// or on localhost: open " +
            "the page through localhost (an SSH tunnel, say) or put the server behind HTTPS. " +
            "Transcribing a file works here.",
        );
      }
      liveStatus("Asking for the microphone…");
      session.microphone = await openMicrophone();
      liveStatus("Connecting…");
      // Capture starts while the socket opens, so the first words are not lost: the audio
      // waits in `pending` until the socket is open.
      session.pending = [];
      await Promise.all([openSocket(session), startCapture(session)]);
      liveStatus("Listening. Press Stop when you are done.");
      setButton("Stop", false);
    } catch (error) {
      fail(session, error.message);
    }
  }

  async function openMicrophone() {
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      const why = {
        NotAllowedError:
          "the microphone was not allowed: allow it for this page (see the address bar) and press Start again",
        NotFoundError: "no microphone was found",
        NotReadableError: "the microphone could not be opened: is another program using it?",
      }[error.name];
      throw new Error(why || `the microphone could not be opened: ${error.name}: ${error.message}`);
    }
  }

  /** Opens the session's /v1/stream socket and wires it to the captions; or says why not. */
  function openSocket(session) {
    const query = new URLSearchParams({ encoding: session.encoding, rate: RATE, interim: "true" });
    if (token()) query.set("token", token());
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/stream?${query}`);
    socket.binaryType = "arraybuffer";
    session.socket = socket;
    return new Promise((resolve, reject) => {
      socket.onopen = () => {
        socket.onmessage = (message) => received(session, message.data);
        socket.onclose = (event) => closed(session, event);
        session.pending.forEach((frame) => socket.send(frame));
        session.pending = [];
        resolve();
      };
      // A refused upgrade reaches the page as a bare close: ask the server why.
      socket.onclose = async () => reject(new Error(await whyRefused()));
    });
  }

  async function whyRefused() {
    try {
      const response = await fetch("/v1/models", { headers: bearer() });
      if (response.status === 401) return await errorText(response);
      return (
        "the server refused the stream: it may be transcribing as many streams as it takes " +
        "(try again shortly); its log says why"
      );
    } catch (error) {
      return `the server cannot be reached: ${error.message}`;
    }
  }

  async function startCapture(session) {
    const context = new AudioContext();
    session.context = context;
    await context.audioWorklet.addModule("/worklet.js");
    const node = new AudioWorkletNode(context, "steno-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
    });
    session.node = node;
    session.resampler = new Resampler(context.sampleRate, RATE);
    node.port.onmessage = (message) => {
      if (message.data instanceof Float32Array) {
        sendAudio(session, session.resampler.push(message.data));
      } else if (message.data === "flushed" && session.flushed) {
        session.flushed();
      }
    };
    context.createMediaStreamSource(session.microphone).connect(node);
    // The node writes silence; connecting it to the output keeps every browser running it.
    node.connect(context.destination);
    await context.resume();
  }

  function sendAudio(session, samples) {
    if (samples.length === 0 || session.ended) return;
    const frame = encode(samples, session.encoding);
    if (session.socket.readyState === WebSocket.OPEN) session.socket.send(frame);
    else if (session.socket.readyState === WebSocket.CONNECTING) session.pending.push(frame);
  }

  function received(session, data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      showError(ui.liveError, `the server sent something that is not JSON: ${String(data).slice(0, 80)}`);
      return;
    }
    switch (event.type) {
      case "final":
        showFinal(event);
        break;
      case "partial":
        showPartial(event);
        break;
      case "report":
        session.reported = true;
        showReport(event);
        break;
      case "error":
        session.failed = true;
        showError(ui.liveError, event.message);
        break;
    }
  }

  /** Stop: the last audio, then END_OF_AUDIO; the report and the close follow. */
  async function stop() {
    const session = live;
    setButton("Finishing…", true);
    liveStatus("Finishing: the last words are being transcribed…");
    if (session.node) {
      // What the worklet holds, then what the resampler holds.
      await new Promise((resolve) => {
        session.flushed = resolve;
        session.node.port.postMessage("flush");
        setTimeout(resolve, 500);
      });
      sendAudio(session, session.resampler.flush());
    }
    if (session.socket.readyState === WebSocket.OPEN) session.socket.send("END_OF_AUDIO");
    session.ended = true;
    stopAudio(session);
  }

  function closed(session, event) {
    if (live !== session) return;
    if (!session.reported && !session.failed) {
      const reason = event.reason ? `: ${event.reason}` : "";
      showError(ui.liveError, `the connection closed (code ${event.code}${reason}) before the stream ended`);
    }
    live = null;
    stopAudio(session);
    setButton("Start", false);
    liveStatus(session.reported ? "Stopped." : "Stopped: the stream did not finish.");
  }

  function fail(session, message) {
    showError(ui.liveError, message);
    if (live === session) live = null;
    stopAudio(session);
    if (session.socket && session.socket.readyState <= WebSocket.OPEN) session.socket.close();
    setButton("Start", false);
    liveStatus("Stopped.");
  }

  /** Releases the microphone and the audio graph. */
  function stopAudio(session) {
    if (session.audioStopped) return;
    session.audioStopped = true;
    if (session.microphone) session.microphone.getTracks().forEach((track) => track.stop());
    if (session.node) session.node.port.onmessage = null;
    if (session.context) session.context.close();
  }

  // ---- Transcribe a file ------------------------------------------------------------------

  ui.upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = ui.file.files[0];
    if (!file) return;
    const format = ui.responseFormat.value;
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("response_format", format);
    clearError(ui.uploadError);
    ui.uploadResult.hidden = true;
    ui.uploadButton.disabled = true;
    ui.uploadStatus.textContent = `Transcribing ${file.name}…`;
    const started = performance.now();
    try {
      const response = await fetch("/v1/audio/transcriptions", { method: "POST", headers: bearer(), body });
      if (!response.ok) throw new Error(`HTTP ${response.status}: ${await errorText(response)}`);
      const text = await response.text();
      if (format === "json") ui.uploadResult.textContent = JSON.parse(text).text;
      else if (format === "verbose_json") ui.uploadResult.textContent = JSON.stringify(JSON.parse(text), null, 2);
      else ui.uploadResult.textContent = text;
      ui.uploadResult.hidden = false;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      ui.uploadStatus.textContent = `${file.name}: transcribed in ${seconds} s.`;
    } catch (error) {
      ui.uploadStatus.textContent = "";
      showError(ui.uploadError, `${file.name} was not transcribed: ${error.message}`);
    } finally {
      ui.uploadButton.disabled = false;
    }
  });
})();
