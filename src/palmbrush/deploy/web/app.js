// palmbrush in the browser: the site's style models on onnxruntime-web (vendored in ./ort/),
// the camera painted live, and an automation hook:
//   await window.palmbrush.ready
//   const painted = await window.palmbrush.stylize(imageData, "starry-night")  // same size
// The engine is WASM (SIMD; threads when the page is cross-origin isolated) unless WebGPU is
// chosen; what runs is always shown on the page and in window.palmbrush.engine.
"use strict";

const $ = (id) => document.getElementById(id);
const RUNTIMES = { wasm: "./ort/ort.wasm.min.mjs", webgpu: "./ort/ort.webgpu.min.mjs" };
const state = {
  ort: null, backend: "wasm", sessions: new Map(), styles: [], style: null, strength: 1,
  facing: "user", stream: null, running: false, webgpu: false,
};
const stats = { frames: 0, ms: [] };  // the camera loop's stylize time per frame

const messages = [];  // every message the page showed, newest last (window.palmbrush.messages)
function showError(text) {
  $("error").textContent = text;
  if (text) messages.push(text);
}

function threads() {
  return self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

async function useBackend(backend) {
  const ort = await import(RUNTIMES[backend]);
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  ort.env.wasm.numThreads = threads();
  const old = [...state.sessions.values()];
  state.sessions.clear();
  state.ort = ort;
  state.backend = backend;
  for (const entry of old) entry.session.then((s) => s.release()).catch(() => {});
  const where = backend === "webgpu" ? "WebGPU"
    : `WASM SIMD, ${threads()} thread${threads() > 1 ? "s" : ""}` +
      (self.crossOriginIsolated ? "" : " (not cross-origin isolated)");
  window.palmbrush.engine = where;
  $("engine").textContent = where;
  $("backend").value = backend;
}

// a style's session on the current backend (with the runtime it belongs to), made once; runs
// on one session are queued (onnxruntime-web runs one at a time per session)
function session(name) {
  const style = state.styles.find((s) => s.name === name);
  if (!style) return Promise.reject(new Error(`no style named ${JSON.stringify(name)}`));
  if (!state.sessions.has(name)) {
    const { ort, backend } = state;
    const entry = {
      ort,
      queue: Promise.resolve(),
      session: fetch(style.model).then((r) => r.arrayBuffer()).then((bytes) =>
        ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: [backend] })),
    };
    entry.session.catch(() => { if (state.sessions.get(name) === entry) state.sessions.delete(name); });
    state.sessions.set(name, entry);
  }
  return Promise.resolve(state.sessions.get(name));
}

// ImageData (RGBA) -> the style's painting as ImageData of the same size (alpha 255)
async function stylize(image, name = state.style) {
  const entry = await session(name);
  const model = await entry.session;
  const { width, height, data } = image;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    rgb[j] = data[i]; rgb[j + 1] = data[i + 1]; rgb[j + 2] = data[i + 2];
  }
  const frame = new entry.ort.Tensor("uint8", rgb, [1, height, width, 3]);
  const run = entry.queue.then(() => model.run({ [model.inputNames[0]]: frame }));
  entry.queue = run.catch(() => {});
  const results = await run;
  const out = results[model.outputNames[0]].data;
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; j < out.length; i += 4, j += 3) {
    pixels[i] = out[j]; pixels[i + 1] = out[j + 1]; pixels[i + 2] = out[j + 2]; pixels[i + 3] = 255;
  }
  return new ImageData(pixels, width, height);
}

// strength < 1: the painting blended with the frame, as palmbrush's camera does
function blend(frame, painted, strength) {
  if (strength >= 1) return painted;
  const a = frame.data, b = painted.data;
  for (let i = 0; i < b.length; i += 4) {
    for (let c = 0; c < 3; c++) b[i + c] = Math.round(a[i + c] + strength * (b[i + c] - a[i + c]));
  }
  return painted;
}

function choose(name) {
  state.style = name;
  document.querySelectorAll("#styles button").forEach(
    (b) => b.classList.toggle("active", b.dataset.style === name));
}

function showStyles() {
  for (const style of state.styles) {
    const button = document.createElement("button");
    const thumbnail = document.createElement("img");
    thumbnail.src = style.thumbnail;
    thumbnail.alt = "";
    button.dataset.style = style.name;
    button.title = style.credit;
    button.append(thumbnail, document.createTextNode(style.name));
    button.onclick = () => choose(style.name);
    $("styles").appendChild(button);
  }
  choose(state.styles[0].name);
}

let cameraTurn = Promise.resolve();
function startCamera() {  // one at a time: a second switch waits for the first
  cameraTurn = cameraTurn.catch(() => {}).then(async () => {
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: state.facing, width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    $("camera").srcObject = state.stream;
    if (!state.running) { state.running = true; paint(); }
  });
  return cameraTurn;
}

async function paint() {
  const video = $("camera"), output = $("output");
  const grab = document.createElement("canvas");
  const grabContext = grab.getContext("2d", { willReadFrequently: true });
  let shown = [];
  while (state.running) {
    if (video.videoWidth && state.ort) {
      const width = Math.min(Number($("size").value), video.videoWidth);
      const height = Math.round(video.videoHeight * width / video.videoWidth);
      grab.width = width; grab.height = height;
      grabContext.drawImage(video, 0, 0, width, height);
      const frame = grabContext.getImageData(0, 0, width, height);
      try {
        const start = performance.now();
        const painted = await stylize(frame);
        const ms = performance.now() - start;
        output.width = width; output.height = height;
        output.getContext("2d").putImageData(blend(frame, painted, state.strength), 0, 0);
        stats.frames += 1;
        stats.ms.push(ms);
        if (stats.ms.length > 300) stats.ms.shift();
        const now = performance.now();
        shown = shown.filter((t) => now - t < 2000).concat(now);
        $("fps").textContent = (shown.length / 2).toFixed(1);
        $("ms").textContent = ms.toFixed(0);
        $("snapshot").disabled = false;
        if (state.failing) { state.failing = false; showError(""); }
      } catch (err) {
        state.failing = true;
        showError(`stylizing failed: ${err.message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await new Promise((r) => requestAnimationFrame(r));
  }
}

async function chooseBackend(backend) {
  const before = state.backend;
  try {
    if (backend === "webgpu" && !state.webgpu) throw new Error("this browser has no WebGPU");
    await useBackend(backend);
    await (await session(state.style)).session;  // fails here, visibly, if it cannot run it
    showError("");
  } catch (err) {
    showError(`${backend} cannot run here (${err.message}); staying on ${before}`);
    await useBackend(before);
  }
}

async function start() {
  state.styles = await (await fetch("styles.json")).json();
  showStyles();
  await useBackend("wasm");
  await (await session(state.style)).session;
  // WebGPU needs an adapter, not just the API (a browser may expose it with no GPU behind it)
  state.webgpu = navigator.gpu ? Boolean(await navigator.gpu.requestAdapter().catch(() => null)) : false;
  if (!state.webgpu) {
    $("backend").querySelector("option[value=webgpu]").disabled = true;
    $("backend").title = "WebGPU: not in this browser";
  }
  $("backend").onchange = (e) => chooseBackend(e.target.value);
  $("strength").oninput = (e) => { state.strength = Number(e.target.value); };
  $("flip").onclick = () => {
    state.facing = state.facing === "user" ? "environment" : "user";
    startCamera().catch((err) => showError(`no camera: ${err.message}`));
  };
  $("snapshot").onclick = () => {
    const link = document.createElement("a");
    link.href = $("output").toDataURL("image/jpeg", 0.92);
    link.download = `palmbrush-${Date.now()}.jpg`;
    link.click();
  };
  if ("serviceWorker" in navigator) {
    // offline use; each load asks whether the site was rebuilt (the worker names its build)
    const updating = Boolean(navigator.serviceWorker.controller);
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (updating) showError("this site was updated: reload the page to use the new version");
    });
    navigator.serviceWorker.register("./sw.js")
      .then((registration) => registration.update())
      .catch((err) => showError(`offline use unavailable: ${err.message}`));
  }
}

window.palmbrush = {
  stylize: (image, name) => stylize(image, name),
  stats,
  messages,
  engine: "loading",
  styles: () => state.styles.map((s) => s.name),
  useBackend: chooseBackend,
};
window.palmbrush.ready = start();
window.palmbrush.ready
  .then(() => startCamera())
  .catch((err) => showError(err.name === "NotAllowedError" || err.name === "NotFoundError"
    ? `no camera: ${err.message}` : `${err.message}`));
