// db-tf demo page: upload images, run a preset once per image, re-run only the post-processing when a
// slider moves (POST /api/postprocess on the server's cached maps). Plain JS, no build step, no network
// beyond this server. The server's API is described in db_tf/demo/server.py.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const MAP_TITLES = {
  probability: "probability map P",
  threshold: "threshold map T",
  binary: "binary map B = sigmoid(k (P - T))",
  bitmap: "P > thresh (what the boxes are traced from)",
};

const state = {
  presets: [],
  preset: null,
  maxUploadBytes: Infinity,
  settings: null,       // the tuned post-processing settings; null: the preset's own (until its first result)
  images: [],           // {id, name, result, forwardMs: {preset: ms}}
  selected: null,       // an entry of images
  busy: false,
  pending: false,       // a slider moved while a refresh was running
};

// ---------------------------------------------------------------------------------------- server calls
async function api(path, body, raw) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: raw ? raw.headers : { "Content-Type": "application/json" },
    body: raw ? body : JSON.stringify(body),
  };
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function setStatus(text) { $("status").textContent = text; }

// ---------------------------------------------------------------------------------------- images
async function addFiles(files) {
  showMessage("");
  const problems = [];
  for (const file of files) {
    if (file.size > state.maxUploadBytes) {
      problems.push(`${file.name}: ${(file.size / 2 ** 20).toFixed(1)} MB is more than the limit of ` +
                    `${(state.maxUploadBytes / 2 ** 20).toFixed(1)} MB`);
      continue;
    }
    setStatus(`uploading ${file.name}…`);
    try {
      const response = await api("/api/images", file, {
        headers: { "Content-Type": "application/octet-stream", "X-File-Name": encodeURIComponent(file.name) },
      });
      const info = await response.json();
      let image = state.images.find((entry) => entry.id === info.id);
      if (!image) {
        image = { id: info.id, name: info.name, result: null, forwardMs: {} };
        state.images.push(image);
      }
      state.selected = image;
      await detect(image);
    } catch (error) {
      problems.push(`${file.name}: ${error.message}`);
    }
  }
  setStatus("");
  showMessage(problems.join("\n"));
  render();
}

async function detect(image) {
  setStatus(`running ${state.preset} on ${image.name}…`);
  const response = await api("/api/detect", { id: image.id, preset: state.preset, settings: state.settings });
  accept(image, await response.json());
}

function accept(image, result) {
  image.result = result;
  if (result.timings.forward_ms !== null) image.forwardMs[result.preset] = result.timings.forward_ms;
  if (state.settings === null) {
    state.settings = { ...result.settings };
    showSettings();
  }
}

// Post-process every image with the current settings; slider events arriving meanwhile are folded into
// one more round, so the page always ends on the last position.
async function refresh() {
  if (state.busy) { state.pending = true; return; }
  state.busy = true;
  try {
    do {
      state.pending = false;
      const settings = { ...state.settings };
      const order = [state.selected, ...state.images.filter((image) => image !== state.selected)];
      for (const image of order) {
        if (!image || !image.result) continue;
        const request = { id: image.id, preset: state.preset, settings };
        let response;
        try {
          response = await api("/api/postprocess", request);
        } catch (error) {
          if (error.status !== 409) throw error;
          response = await api("/api/detect", request);   // maps evicted from the cache: forward again
        }
        accept(image, await response.json());
        if (image === state.selected) render();
      }
    } while (state.pending);
    showMessage("");
  } catch (error) {
    showMessage(error.message);
  } finally {
    state.busy = false;
    setStatus("");
    render();
  }
}

async function choosePreset(label) {
  state.preset = label;
  state.settings = null;
  const preset = state.presets.find((entry) => entry.label === label);
  $("preset-description").textContent = preset ? preset.description : "";
  const problems = [];
  for (const image of state.images) {
    try { await detect(image); } catch (error) { image.result = null; problems.push(`${image.name}: ${error.message}`); }
  }
  setStatus("");
  showMessage(problems.join("\n"));
  render();
}

// ---------------------------------------------------------------------------------------- controls
function unclipKey() { return state.settings && state.settings.polygon ? "poly_unclip_ratio" : "unclip_ratio"; }

function showSettings() {
  const settings = state.settings;
  $("tuning").disabled = settings === null;
  if (settings === null) return;
  $("thresh").value = settings.thresh;
  $("box-thresh").value = settings.box_thresh;
  $("unclip").value = settings[unclipKey()];
  $("unclip-name").textContent = unclipKey();
  document.querySelector(`input[name=mode][value=${settings.polygon ? "polygon" : "box"}]`).checked = true;
  showSliderValues();
}

function showSliderValues() {
  $("thresh-value").textContent = Number($("thresh").value).toFixed(2);
  $("box-thresh-value").textContent = Number($("box-thresh").value).toFixed(2);
  $("unclip-value").textContent = Number($("unclip").value).toFixed(2);
}

function readSettings() {
  state.settings.thresh = Number($("thresh").value);
  state.settings.box_thresh = Number($("box-thresh").value);
  state.settings[unclipKey()] = Number($("unclip").value);
  showSliderValues();
  refresh();
}

function readMode() {
  state.settings.polygon = document.querySelector("input[name=mode]:checked").value === "polygon";
  showSettings();   // the unclip slider now shows the other mode's ratio
  refresh();
}

async function download(format) {
  const items = state.images.filter((image) => image.result)
    .map((image) => ({ id: image.id, preset: state.preset, settings: state.settings }));
  try {
    const response = await api("/api/export", { format, items });
    const disposition = response.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || `detections.${format}`;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    showMessage(error.message);
  }
}

// ---------------------------------------------------------------------------------------- drawing
function render() {
  const image = state.selected;
  const result = image && image.result;
  $("stage").hidden = !result;
  $("empty").hidden = Boolean(result);
  $("download-json").disabled = $("download-icdar").disabled = !state.images.some((entry) => entry.result);
  renderList();
  if (!result) {
    $("maps").replaceChildren();
    $("count").textContent = $("forward-ms").textContent = $("post-ms").textContent = "–";
    return;
  }
  const [height, width] = result.image_size;
  const photoUrl = `/api/image?id=${encodeURIComponent(result.id)}`;
  if ($("photo").getAttribute("src") !== photoUrl) $("photo").src = photoUrl;
  $("photo-caption").textContent = `${result.name} (${width} × ${height}) · ${result.preset}`;
  drawPolygons(result, width, height);
  $("count").textContent = result.count;
  const forwardMs = image.forwardMs[result.preset];
  $("forward-ms").textContent = forwardMs === undefined ? "(maps cached)" :
    `${forwardMs.toFixed(0)} ms${result.timings.forward_ms === null ? " (maps cached)" : ""}`;
  $("post-ms").textContent = `${result.timings.postprocess_ms.toFixed(1)} ms`;
  renderMaps(result);
}

function drawPolygons(result, width, height) {
  const overlay = $("overlay");
  overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // the settings these detections were made with, for whoever reads the page (tests, screenshots)
  overlay.dataset.settings = JSON.stringify(result.settings);
  const shapes = result.polygons.map((points, index) => {
    const shape = document.createElementNS(SVG, "polygon");
    shape.setAttribute("points", points.map(([x, y]) => `${x},${y}`).join(" "));
    shape.setAttribute("class", `det ${result.settings.polygon ? "poly" : "box"}`);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `score ${result.scores[index].toFixed(3)}`;
    shape.appendChild(title);
    return shape;
  });
  overlay.replaceChildren(...shapes);
}

function renderMaps(result) {
  const figures = Object.entries(result.maps).map(([name, url]) => {
    const source = name === "bitmap" ? `${url}&thresh=${result.settings.thresh}` : url;
    let figure = document.querySelector(`#maps figure[data-map="${name}"]`);
    if (!figure) {
      figure = document.createElement("figure");
      figure.dataset.map = name;
      figure.append(document.createElement("img"), document.createElement("figcaption"));
      figure.lastChild.textContent = MAP_TITLES[name] || name;
    }
    const picture = figure.firstChild;
    if (picture.getAttribute("src") !== source) { picture.src = source; picture.alt = MAP_TITLES[name] || name; }
    return figure;
  });
  $("maps").replaceChildren(...figures);
}

function renderList() {
  const items = state.images.map((image) => {
    const item = document.createElement("li");
    item.classList.toggle("selected", image === state.selected);
    const name = document.createElement("span");
    name.textContent = image.name;
    const count = document.createElement("span");
    count.textContent = image.result ? `${image.result.count} texts` : "–";
    item.append(name, count);
    item.addEventListener("click", () => { state.selected = image; render(); });
    return item;
  });
  $("image-list").replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------- start
async function start() {
  try {
    const listing = await (await api("/api/presets")).json();
    state.presets = listing.presets;
    state.maxUploadBytes = listing.max_upload_bytes;
    $("preset").replaceChildren(...listing.presets.map(({ label }) => new Option(label, label)));
    $("preset").value = listing.default;
    state.preset = listing.default;
    const preset = listing.presets.find((entry) => entry.label === listing.default);
    $("preset-description").textContent = preset ? preset.description : "";
  } catch (error) {
    showMessage(`cannot reach the demo server: ${error.message}`);
  }
  $("files").addEventListener("change", (event) => { addFiles([...event.target.files]); event.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles([...event.dataTransfer.files]);
  });
  $("preset").addEventListener("change", (event) => choosePreset(event.target.value));
  for (const id of ["thresh", "box-thresh", "unclip"]) $(id).addEventListener("input", readSettings);
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", readMode);
  $("reset").addEventListener("click", () => choosePreset(state.preset));
  $("download-json").addEventListener("click", () => download("json"));
  $("download-icdar").addEventListener("click", () => download("icdar"));
  render();
}

start();
