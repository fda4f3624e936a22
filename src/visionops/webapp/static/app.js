// Upload -> POST /api/detect (this app; it calls the endpoint with the key) -> SVG boxes over the image
// for a detector, or the top-k labels with probabilities (a list, and the top-1 caption) for a classifier.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa", "#ff2d55"];

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file");
const statusEl = document.getElementById("status");
const result = document.getElementById("result");
const preview = document.getElementById("preview");
const overlay = document.getElementById("overlay");

function setStatus(text, isError) {
  statusEl.textContent = text;
  statusEl.className = isError ? "error" : "";
}

function loadImage(file) {
  return new Promise((resolve, reject) => {
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.onload = () => resolve();
    preview.onerror = () => reject(new Error("the browser cannot display this file"));
    preview.src = URL.createObjectURL(file);
  });
}

function isClassification(pred) {
  return Array.isArray(pred.probabilities);
}

function showKind(classification) {
  document.getElementById("detections").hidden = classification;
  document.getElementById("classes").hidden = !classification;
  document.getElementById("count-title").textContent = classification ? "Top class" : "Detections";
}

function drawClassification(pred) {
  const w = pred.width, h = pred.height;
  overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
  overlay.replaceChildren();
  const list = document.getElementById("classes");
  list.replaceChildren();
  pred.labels.forEach((label, i) => {
    const p = pred.probabilities[i];
    const item = document.createElement("li");
    item.className = "class-label";
    item.dataset.label = label;
    item.dataset.probability = p.toFixed(4);
    item.dataset.classId = String(pred.class_ids[i]);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label;
    const value = document.createElement("span");
    value.className = "probability";
    value.textContent = `${(p * 100).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(p * 100, 0.5)}%`;
    bar.style.background = PALETTE[pred.class_ids[i] % PALETTE.length];
    item.append(name, value, bar);
    list.append(item);
  });
  if (pred.labels.length) {  // the top-1 label as a caption on the image
    const font = Math.max(w, h) / 14;
    const text = `${pred.labels[0]} ${(pred.probabilities[0] * 100).toFixed(0)}%`;
    const tag = document.createElementNS(SVG_NS, "rect");
    tag.setAttribute("x", 0);
    tag.setAttribute("y", 0);
    tag.setAttribute("width", Math.min(text.length * font * 0.6 + font * 0.4, w));
    tag.setAttribute("height", font * 1.3);
    tag.setAttribute("fill", PALETTE[pred.class_ids[0] % PALETTE.length]);
    tag.setAttribute("class", "tag");
    const caption = document.createElementNS(SVG_NS, "text");
    caption.setAttribute("x", font * 0.2);
    caption.setAttribute("y", font);
    caption.setAttribute("font-size", font);
    caption.setAttribute("class", "label caption");
    caption.textContent = text;
    overlay.append(tag, caption);
  }
}

function drawDetections(pred) {
  const w = pred.width, h = pred.height;
  overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
  overlay.replaceChildren();
  const font = Math.max(w, h) / 22;
  const tbody = document.querySelector("#detections tbody");
  tbody.replaceChildren();
  pred.boxes.forEach((box, i) => {
    const [x0, y0, x1, y1] = box;
    const label = pred.labels[i];
    const conf = pred.confidences[i];
    const colour = PALETTE[pred.class_ids[i] % PALETTE.length];

    const g = document.createElementNS(SVG_NS, "g");
    g.setAttribute("class", "detection");
    g.dataset.label = label;
    g.dataset.confidence = conf.toFixed(4);
    g.dataset.classId = String(pred.class_ids[i]);
    g.dataset.box = box.map((v) => v.toFixed(1)).join(",");

    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("x", x0);
    rect.setAttribute("y", y0);
    rect.setAttribute("width", Math.max(x1 - x0, 0));
    rect.setAttribute("height", Math.max(y1 - y0, 0));
    rect.setAttribute("stroke", colour);
    rect.setAttribute("class", "box");

    const text = `${label} ${(conf * 100).toFixed(0)}%`;
    const tag = document.createElementNS(SVG_NS, "rect");
    const ty = y0 > font * 1.3 ? y0 - font * 1.25 : y0;
    tag.setAttribute("x", x0);
    tag.setAttribute("y", ty);
    tag.setAttribute("width", text.length * font * 0.58 + font * 0.4);
    tag.setAttribute("height", font * 1.25);
    tag.setAttribute("fill", colour);
    tag.setAttribute("class", "tag");

    const caption = document.createElementNS(SVG_NS, "text");
    caption.setAttribute("x", x0 + font * 0.2);
    caption.setAttribute("y", ty + font);
    caption.setAttribute("font-size", font);
    caption.setAttribute("class", "label");
    caption.textContent = text;

    g.append(rect, tag, caption);
    overlay.append(g);

    const row = document.createElement("tr");
    row.className = "detection-row";
    for (const cell of [i + 1, label, conf.toFixed(3), box.map((v) => v.toFixed(1)).join(", ")]) {
      const td = document.createElement("td");
      td.textContent = cell;
      row.append(td);
    }
    tbody.append(row);
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) {
    setStatus("Choose an image first.", true);
    return;
  }
  setStatus(`Detecting objects in ${file.name}…`, false);
  const body = new FormData(form);
  let answer, response;
  try {
    response = await fetch("/api/detect", { method: "POST", body });
    answer = await response.json();
  } catch (err) {
    setStatus(`Request failed: ${err.message}`, true);
    return;
  }
  if (!response.ok) {
    const e = answer.error || {};
    setStatus(`Error ${response.status} (${e.code || "error"}): ${e.message || "unknown error"}`, true);
    result.hidden = true;
    return;
  }
  try {
    await loadImage(file);
  } catch (err) {
    setStatus(err.message, true);
    return;
  }
  result.hidden = false;
  const pred = answer.prediction;
  const classification = isClassification(pred);
  showKind(classification);
  if (classification) drawClassification(pred);
  else drawDetections(pred);
  const m = answer.model || {};
  document.getElementById("model-version").textContent = `${m.name} v${m.version} (${m.runtime})`;
  document.getElementById("latency").textContent =
    `${answer.latency_ms.toFixed(0)} ms round trip, ${Number(answer.inference_ms).toFixed(1)} ms inference`;
  if (classification) {
    const top = pred.labels.length ? `${pred.labels[0]} (${(pred.probabilities[0] * 100).toFixed(1)}%)` : "none";
    document.getElementById("count").textContent = top;
    setStatus(`${answer.filename} classified as ${top}.`, false);
  } else {
    const n = pred.boxes.length;
    document.getElementById("count").textContent = String(n);
    setStatus(`${n} object${n === 1 ? "" : "s"} found in ${answer.filename}.`, false);
  }
  document.body.dataset.state = "done";
});
