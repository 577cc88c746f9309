// The SwiftAvatar page: a photo (file or camera) -> POST /v1/avatars -> the crop, the avatar
// and one control per schema parameter; edits re-render through POST /v1/render (debounced).
// Plain JS, no libraries; talks only to the server it came from.
"use strict";

const RENDER_DELAY_MS = 200;
const $ = (id) => document.getElementById(id);
const app = $("app");
const state = { models: new Map(), model: null, vector: null, avatar: null, photo: null,
                seq: 0, timer: null, inflight: null, stream: null };

function setState(name, status) {
  app.dataset.state = name;
  if (status !== undefined) $("status").textContent = status;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  setState("error", "");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// fetch, turning the API's {"error": message} (or a dead server) into an Error(message)
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error(`the server did not answer (${err.message}); is it still running?`);
  }
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch (_) { /* not JSON: keep the status line */ }
  throw new Error(message);
}

function pngBlob(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

function showImage(img, blob) {
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
}

function setAvatar(blob) {
  state.avatar = blob;
  showImage($("avatar"), blob);
  $("save-vector").disabled = false;
  $("save-png").disabled = false;
}

// ---- the controls ---------------------------------------------------------------------
function formatNumber(x) {
  return Number(x).toFixed(Math.abs(x) >= 10 ? 1 : 3);
}

function control(param, value) {
  const id = `param-${param.name}`;
  const box = document.createElement("div");
  box.className = "control";
  const row = document.createElement("div");
  row.className = "row";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = param.name.replaceAll("_", " ");
  label.title = param.doc || "";
  row.append(label);
  let input;
  if (param.kind === "continuous") {
    input = document.createElement("input");
    input.type = "range";
    input.min = param.low;
    input.max = param.high;
    input.step = (param.high - param.low) / 200;
    input.value = value;
    const out = document.createElement("output");
    out.htmlFor = id;
    out.textContent = formatNumber(value);
    row.append(out);
    input.addEventListener("input", () => {
      out.textContent = formatNumber(input.value);
      edit(param.name, Number(input.value));
    });
  } else {
    input = document.createElement("select");
    for (const option of param.options) input.add(new Option(option.replaceAll("_", " "), option));
    input.value = value;
    input.addEventListener("change", () => edit(param.name, input.value));
  }
  input.id = id;
  input.name = param.name;
  if (param.doc) input.setAttribute("aria-description", param.doc);
  box.append(row, input);
  return box;
}

function buildControls(model, vector) {
  for (const kind of ["continuous", "discrete"]) {
    const set = $(kind);
    set.querySelectorAll(".control").forEach((el) => el.remove());
    const params = model.parameters.filter((p) => p.kind === kind);
    for (const p of params) set.append(control(p, vector[p.name]));
    set.hidden = params.length === 0;
  }
  $("controls").hidden = false;
}

function edit(name, value) {
  state.vector[name] = value;
  clearTimeout(state.timer);
  state.timer = setTimeout(render, RENDER_DELAY_MS);
}

// ---- the API calls --------------------------------------------------------------------
async function loadModels() {
  try {
    const { models } = await (await api("/v1/models")).json();
    for (const m of models) {
      state.models.set(m.name, m);
      $("model").add(new Option(`${m.name} (engine ${m.engine})`, m.name));
    }
    setState("idle", "Pick a photo of a face.");
  } catch (err) {
    showError(err.message);
  }
}

async function predict() {
  if (!state.photo) return;
  clearTimeout(state.timer);
  if (state.inflight) state.inflight.abort();
  const seq = ++state.seq;
  const name = $("model").value;
  const form = new FormData();
  form.append("photo", state.photo, state.photo.name || "photo.jpg");
  form.append("model", name);
  clearError();
  setState("busy", "Finding the face and predicting the avatar…");
  try {
    const result = await (await api("/v1/avatars", { method: "POST", body: form })).json();
    if (seq !== state.seq) return;
    state.model = state.models.get(result.model.name);
    state.vector = result.vector;
    showImage($("crop"), pngBlob(result.crop_png));
    setAvatar(pngBlob(result.avatar_png));
    buildControls(state.model, state.vector);
    const face = result.face ? `face score ${result.face.score.toFixed(2)}` : "no face search";
    setState("ready", `${result.model.name}: ${face}. Adjust the parameters below.`);
  } catch (err) {
    if (seq === state.seq) showError(err.message);
  }
}

async function render() {
  if (state.inflight) state.inflight.abort();
  const controller = new AbortController();
  state.inflight = controller;
  const seq = ++state.seq;
  clearError();
  setState("busy", "Rendering…");
  try {
    const response = await api("/v1/render", {
      method: "POST", signal: controller.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: state.model.name, vector: state.vector }) });
    const blob = await response.blob();
    if (seq !== state.seq) return;
    setAvatar(blob);
    setState("ready", `${state.model.name}: rendered the edited vector.`);
  } catch (err) {
    if (err.name !== "AbortError" && seq === state.seq) showError(err.message);
  } finally {
    if (state.inflight === controller) state.inflight = null;
  }
}

// ---- downloads ------------------------------------------------------------------------
function save(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

$("save-vector").addEventListener("click", () => save(
  new Blob([JSON.stringify(state.vector, null, 2) + "\n"], { type: "application/json" }),
  `avatar-${state.model.name}.json`));
$("save-png").addEventListener("click", () => save(state.avatar, `avatar-${state.model.name}.png`));

// ---- the photo: a file or the camera ---------------------------------------------------
$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  if (file) { state.photo = file; predict(); }
});
$("model").addEventListener("change", predict);

async function showCameraButton() {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia || !media.enumerateDevices) return;
  try {
    const devices = await media.enumerateDevices();
    $("camera").hidden = !devices.some((d) => d.kind === "videoinput");
  } catch (_) { /* no camera to offer */ }
}

function stopCamera() {
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  $("camera-box").hidden = true;
}

$("camera").addEventListener("click", async () => {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" } });
    $("video").srcObject = state.stream;
    $("camera-box").hidden = false;
  } catch (err) {
    showError(`the camera is not available (${err.message}); pick a photo file instead`);
  }
});
$("camera-off").addEventListener("click", stopCamera);
$("capture").addEventListener("click", () => {
  const video = $("video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  stopCamera();
  canvas.toBlob((blob) => {
    state.photo = new File([blob], "camera.jpg", { type: "image/jpeg" });
    predict();
  }, "image/jpeg", 0.92);
});

showCameraButton();
loadModels();
