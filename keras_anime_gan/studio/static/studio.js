// keras-anime-gan studio: the page keeps the settings, the server draws them (POST /api/render).
"use strict";

const $ = (id) => document.getElementById(id);
const GRID_SIZE = 16;

const state = {
  seed: 0, base: "seed", plane_seeds: [], plane: [0.5, 0.5], projection: null,
  psi: 1.0, cutoff: null, noise: "const",
  mix: { on: false, seed: 1, crossover: "coarse" },
  directions: { method: null, layers: "all", k: 8, amounts: {} },
};
let info = null;
let gridStart = 0;
let selectedDirection = 0;
let inFlight = false, dirty = false, renders = 0;

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

async function api(path, body, raw) {
  const options = body === undefined ? {} : { method: "POST", body: raw ? body : JSON.stringify(body),
    headers: raw ? {} : { "Content-Type": "application/json" } };
  const response = await fetch(path, options);
  if (!response.ok) {
    let text = `${response.status} ${response.statusText}`;
    try { text = (await response.json()).error || text; } catch (e) { /* not JSON */ }
    throw new Error(text);
  }
  return response;
}

// -- drawing: one request at a time, the newest settings win

function requestRender() {
  dirty = true;
  if (!inFlight) renderNow();
}

async function renderNow() {
  inFlight = true;
  dirty = false;
  document.body.dataset.busy = "1";
  const started = performance.now();
  try {
    const answer = await (await api("/api/render", state)).json();
    $("picture").src = "data:image/png;base64," + answer.image;
    $("command").value = answer.command
      || "(no command line: explore needs a run folder, a .keras file or an NVIDIA .pkl)";
    $("latency").textContent = `${Math.round(performance.now() - started)} ms`;
    $("status").textContent = describe();
    renders += 1;
    document.body.dataset.renders = String(renders);
    showMessage("");
  } catch (error) {
    showMessage(error.message);
    document.body.dataset.errors = String(Number(document.body.dataset.errors || 0) + 1);
  }
  inFlight = false;
  if (dirty) renderNow(); else document.body.dataset.busy = "0";
}

function describe() {
  const at = state.plane.map((x) => x.toFixed(2)).join(", ");
  const base = state.base === "plane" ? `plane of ${state.plane_seeds.join(", ")} at (${at})`
    : state.base === "projection" ? `projection ${state.projection}` : `seed ${state.seed}`;
  const edits = Object.values(state.directions.amounts).filter((a) => a !== 0).length;
  return `${base} · psi ${state.psi.toFixed(2)}`
    + (state.mix.on ? ` · mixed with ${state.mix.seed} (${state.mix.crossover})` : "")
    + (edits ? ` · ${edits} direction${edits > 1 ? "s" : ""}` : "");
}

// -- controls

function disable(fieldset, reason, reasonId) {
  $(fieldset).disabled = true;
  const p = $(reasonId);
  p.textContent = "disabled: " + reason;
  p.hidden = false;
}

function setSeed(seed) {
  state.seed = Math.max(0, Math.min(2147483647, Math.floor(Number(seed) || 0)));
  $("seed").value = state.seed;
  $("seed-slider").value = Math.min(state.seed, 999);
  if (state.base !== "plane" || !$("plane-on").checked) state.base = "seed";
  markGrid();
  requestRender();
}

async function loadGrid() {
  const seeds = Array.from({ length: GRID_SIZE }, (_, i) => gridStart + i);
  $("grid-range").textContent = `seeds ${seeds[0]}–${seeds[seeds.length - 1]}`;
  try {
    const answer = await (await api("/api/grid", { seeds, psi: state.psi })).json();
    const grid = $("grid");
    grid.innerHTML = "";
    answer.images.forEach((image, i) => {
      const cell = document.createElement("div");
      cell.className = "thumb";
      cell.dataset.seed = seeds[i];
      cell.title = `seed ${seeds[i]}`;
      cell.innerHTML = `<img alt="seed ${seeds[i]}" src="data:image/png;base64,${image}">`
        + `<span class="seed-label">${seeds[i]}</span>`;
      const add = document.createElement("button");
      add.className = "add";
      add.type = "button";
      add.textContent = "+";
      add.title = "add to the interpolation plane";
      add.addEventListener("click", (event) => { event.stopPropagation(); addPlaneSeed(seeds[i]); });
      cell.appendChild(add);
      cell.addEventListener("click", () => setSeed(seeds[i]));
      grid.appendChild(cell);
    });
    markGrid();
  } catch (error) { showMessage(error.message); }
}

function markGrid() {
  for (const cell of document.querySelectorAll(".thumb")) {
    cell.classList.toggle("current", Number(cell.dataset.seed) === state.seed && state.base === "seed");
    cell.classList.toggle("in-plane", state.plane_seeds.includes(Number(cell.dataset.seed)));
  }
}

function addPlaneSeed(seed) {
  if (state.plane_seeds.includes(seed) || state.plane_seeds.length >= 4) return;
  state.plane_seeds.push(seed);
  updatePlane();
  if (state.plane_seeds.length >= 2) { $("plane-on").checked = true; state.base = "plane"; requestRender(); }
}

function updatePlane() {
  const names = ["A", "B", "C", "D"];
  $("plane-seeds").textContent = state.plane_seeds.length
    ? state.plane_seeds.map((s, i) => `${names[i]}=${s}`).join("  ") : "no seeds: + 2–4 from the grid";
  $("pad-dot").style.left = `${state.plane[0] * 100}%`;
  $("pad-dot").style.top = `${(state.plane_seeds.length === 2 ? 0.5 : state.plane[1]) * 100}%`;
  markGrid();
}

function padMove(event) {
  const box = $("pad").getBoundingClientRect();
  state.plane = [Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
                 Math.min(1, Math.max(0, (event.clientY - box.top) / box.height))];
  updatePlane();
  if (state.plane_seeds.length >= 2) { state.base = "plane"; $("plane-on").checked = true; requestRender(); }
}

async function loadDirections() {
  const method = state.directions.method;
  const sliders = $("sliders");
  sliders.innerHTML = "";
  state.directions.amounts = {};
  if (!method) return;
  try {
    const request = { method, layers: state.directions.layers, k: state.directions.k };
    const answer = await (await api("/api/directions", request)).json();
    const label = method === "sefa" ? "eigenvalue" : "variance";
    answer.values.forEach((value, i) => {
      const row = document.createElement("div");
      row.className = "slider-row" + (i === selectedDirection ? " selected" : "");
      const title = `${label} ${value.toPrecision(4)}; click to pick for the walk GIF`;
      row.innerHTML = `<label class="walk" title="${title}">#${i} ${value.toPrecision(3)}</label>`
        + `<input type="range" min="-5" max="5" step="0.1" value="0" data-index="${i}" aria-label="direction ${i}">`
        + `<output>0.0</output>`;
      const input = row.querySelector("input");
      input.addEventListener("input", () => {
        state.directions.amounts[i] = Number(input.value);
        row.querySelector("output").textContent = Number(input.value).toFixed(1);
        selectDirection(i);
        requestRender();
      });
      row.querySelector("label").addEventListener("click", () => selectDirection(i));
      sliders.appendChild(row);
    });
    sliders.dataset.method = method;
    sliders.dataset.count = String(answer.values.length);
  } catch (error) { showMessage(error.message); }
}

function selectDirection(i) {
  selectedDirection = i;
  document.querySelectorAll(".slider-row").forEach((row, j) => row.classList.toggle("selected", i === j));
}

// -- downloads

async function download(path, body, name) {
  try {
    const blob = await (await api(path, body)).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    showMessage("");
  } catch (error) { showMessage(error.message); }
}

// -- projection

let projection = null;

async function startProjection() {
  const file = $("upload").files[0];
  if (!file) { showMessage("choose an image file to project first"); return; }
  if (file.size > info.max_upload) {
    const limit = Math.round(info.max_upload / 1048576);
    showMessage(`an uploaded image may be at most ${limit} MiB; ${file.name} has ${file.size.toLocaleString()} bytes`);
    return;
  }
  const space = $("proj-space").value;
  const steps = Number($("proj-steps").value) || 300;
  try {
    const path = `/api/project?space=${encodeURIComponent(space)}&steps=${steps}`;
    const answer = await (await api(path, file, true)).json();
    projection = answer.id;
    $("proj-stop").disabled = false;
    $("proj-use").disabled = true;
    document.body.dataset.projection = "running";
    showMessage("");
    pollProjection(answer.id);
  } catch (error) { showMessage(error.message); }
}

async function pollProjection(id) {
  if (id !== projection) return;
  try {
    const job = await (await api(`/api/project/${id}`)).json();
    $("proj-progress").value = job.steps ? job.step / job.steps : 0;
    $("proj-status").textContent = `${job.step}/${job.steps}`
      + (job.loss !== null ? ` · loss ${job.loss.toFixed(4)}` : "")
      + (job.psnr ? ` · PSNR ${job.psnr.toFixed(1)} dB` : "");
    $("proj-target").src = "data:image/png;base64," + job.target;
    if (job.preview) $("proj-preview").src = "data:image/png;base64," + job.preview;
    if (job.done) {
      $("proj-stop").disabled = true;
      if (job.error) { showMessage(job.error); document.body.dataset.projection = "failed"; return; }
      document.body.dataset.projection = "done";
      $("proj-use").disabled = false;
      useProjection(id);
      return;
    }
  } catch (error) { showMessage(error.message); return; }
  setTimeout(() => pollProjection(id), 300);
}

function useProjection(id) {
  state.base = "projection";
  state.projection = id;
  $("plane-on").checked = false;
  markGrid();
  requestRender();
}

// -- start

async function start() {
  try {
    info = await (await api("/api/info")).json();
  } catch (error) { showMessage(error.message); return; }
  $("source").textContent = info.label;
  $("kind").textContent = `${info.kind} · ${info.resolution} px`;
  const off = info.disabled || {};
  if (off.psi) disable("fs-truncation", off.psi, "reason-psi");
  if (off.cutoff) {
    $("cutoff").disabled = true;
    $("reason-cutoff").textContent = "cutoff disabled: " + off.cutoff;
    $("reason-cutoff").hidden = false;
  }
  if (off.noise) disable("fs-noise", off.noise, "reason-noise");
  if (off.mixing) disable("fs-mixing", off.mixing, "reason-mixing");
  if (off.directions) disable("fs-directions", off.directions, "reason-directions");
  if (off.projection) disable("fs-projection", off.projection, "reason-projection");
  if (off.directions) { $("dl-walk").disabled = true; $("dl-plane").disabled = true; }
  if (info.style) {
    $("cutoff").max = info.num_ws;
    $("cutoff").value = info.num_ws;
    for (const [name, layers] of Object.entries(info.groups)) {
      $("mix-layers").add(new Option(`${name} (${layers[0]}–${layers[layers.length - 1]})`, name));
      $("dir-layers").add(new Option(`${name} (${layers[0]}–${layers[layers.length - 1]})`, name));
    }
    $("dir-layers").add(new Option(`all (0–${info.num_ws - 1})`, "all"), 0);
    $("dir-layers").value = "all";
  } else {
    $("dir-layers").add(new Option("z (all)", "all"));
    $("dir-layers").disabled = true;
  }
  for (const method of info.methods) $("dir-method").add(new Option(method === "sefa" ? "SeFa" : "GANSpace", method));
  for (const space of info.spaces) $("proj-space").add(new Option(space.toUpperCase(), space));
  state.directions.method = info.methods[0] || null;
  state.directions.k = Math.min(8, info.latent_dim);

  $("seed").addEventListener("input", () => setSeed($("seed").value));
  $("seed-slider").addEventListener("input", () => setSeed($("seed-slider").value));
  $("seed-random").addEventListener("click", () => setSeed(Math.floor(Math.random() * 100000)));
  $("grid-prev").addEventListener("click", () => { gridStart = Math.max(0, gridStart - GRID_SIZE); loadGrid(); });
  $("grid-next").addEventListener("click", () => { gridStart += GRID_SIZE; loadGrid(); });
  $("plane-clear").addEventListener("click", () => {
    state.plane_seeds = []; $("plane-on").checked = false; state.base = "seed"; updatePlane(); requestRender();
  });
  $("plane-on").addEventListener("change", () => {
    state.base = $("plane-on").checked && state.plane_seeds.length >= 2 ? "plane" : "seed";
    if ($("plane-on").checked && state.plane_seeds.length < 2) {
      $("plane-on").checked = false;
      showMessage("add 2 to 4 seeds to the plane first (+ on the grid)");
    }
    requestRender();
  });
  const pad = $("pad");
  pad.addEventListener("pointerdown", (event) => { pad.setPointerCapture(event.pointerId); padMove(event); });
  pad.addEventListener("pointermove", (event) => { if (event.buttons) padMove(event); });
  $("psi").addEventListener("input", () => {
    state.psi = Number($("psi").value); $("psi-value").textContent = state.psi.toFixed(2); requestRender();
  });
  $("psi").addEventListener("change", loadGrid);
  $("cutoff").addEventListener("input", () => {
    const value = Number($("cutoff").value);
    state.cutoff = info.style && value < info.num_ws ? value : null;
    $("cutoff-value").textContent = state.cutoff === null ? "all" : `< ${value}`;
    requestRender();
  });
  for (const radio of document.querySelectorAll("input[name=noise]")) {
    radio.addEventListener("change", () => { state.noise = radio.value; requestRender(); });
  }
  $("mix-on").addEventListener("change", () => { state.mix.on = $("mix-on").checked; requestRender(); });
  $("mix-seed").addEventListener("input", () => {
    state.mix.seed = Math.max(0, Number($("mix-seed").value) || 0);
    if (state.mix.on) requestRender();
  });
  $("mix-layers").addEventListener("change", () => {
    state.mix.crossover = $("mix-layers").value;
    if (state.mix.on) requestRender();
  });
  if ($("mix-layers").options.length) state.mix.crossover = $("mix-layers").value;
  $("dir-method").addEventListener("change", async () => {
    state.directions.method = $("dir-method").value;
    await loadDirections();
    requestRender();
  });
  $("dir-layers").addEventListener("change", async () => {
    state.directions.layers = $("dir-layers").value;
    await loadDirections();
    requestRender();
  });
  $("dir-k").max = Math.min(32, info.style ? info.w_dim : info.latent_dim);
  $("dir-k").value = state.directions.k;
  $("dir-k").addEventListener("change", async () => {
    state.directions.k = Math.max(1, Math.min(Number($("dir-k").max), Number($("dir-k").value) || 1));
    $("dir-k").value = state.directions.k;
    await loadDirections(); requestRender();
  });
  $("dir-reset").addEventListener("click", async () => { await loadDirections(); requestRender(); });
  $("dl-png").addEventListener("click", () => download("/api/download/png", state, "studio.png"));
  $("dl-latent").addEventListener("click", () => download("/api/download/latent", state, "studio-latent.npy"));
  $("dl-walk").addEventListener("click", () => download("/api/download/gif",
    { state, gif: "walk", direction: selectedDirection }, "studio-walk.gif"));
  $("dl-plane").addEventListener("click", () => download("/api/download/gif", { state, gif: "plane" },
    "studio-plane.gif"));
  $("proj-go").addEventListener("click", startProjection);
  $("proj-stop").addEventListener("click", () => {
    if (projection) api(`/api/project/${projection}/stop`, {}).catch(() => {});
  });
  $("proj-use").addEventListener("click", () => { if (projection) useProjection(projection); });

  updatePlane();
  await Promise.all([loadGrid(), loadDirections()]);
  document.body.dataset.ready = "1";
  requestRender();
}

start();
