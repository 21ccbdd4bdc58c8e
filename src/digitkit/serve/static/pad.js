// Shared by the drawing page (app.js) and the Teach page (teach.js): the pad you draw on with a round
// pen, its drawing as the PNG the server reads, and the bars of class probabilities.
"use strict";

const UPLOAD_SIZE = 140;  // half the 280 px pad: plenty for a 28x28 input, a quarter of the bytes

// onStroke runs after every stroke segment, onLift when the pen leaves the pad.
function drawingPad(pad, { onStroke = () => {}, onLift = () => {} } = {}) {
  const ctx = pad.getContext("2d");
  let drawing = false, last = null;
  const api = { inked: false };

  api.clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    api.inked = false;
  };

  function point(event) {
    const r = pad.getBoundingClientRect();
    return { x: (event.clientX - r.left) * pad.width / r.width, y: (event.clientY - r.top) * pad.height / r.height };
  }

  function stroke(to) {
    ctx.strokeStyle = "#111";
    ctx.lineWidth = pad.width / 14;  // a thick, round pen, like a finger on a phone
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    last = to;
    api.inked = true;
    onStroke();
  }

  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    stroke({ x: last.x + 0.01, y: last.y });  // a tap leaves a dot
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    // Pens and fast mice deliver several points per frame: draw them all, not just the last.
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) stroke(point(ev));
  });
  for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => { drawing = false; onLift(); });

  // The drawing as a PNG at UPLOAD_SIZE, as the server expects it.
  api.blob = () => {
    const small = document.createElement("canvas");
    small.width = small.height = UPLOAD_SIZE;
    small.getContext("2d").drawImage(pad, 0, 0, UPLOAD_SIZE, UPLOAD_SIZE);
    return new Promise((resolve) => small.toBlob(resolve, "image/png"));
  };

  api.clear();
  return api;
}

// One bar per class name, in a list element.
function buildBars(list, names) {
  list.replaceChildren();
  for (const name of names) {
    const li = document.createElement("li");
    li.dataset.label = name;
    const text = document.createElement("span");
    text.className = "name";
    text.textContent = name;
    li.append(text);
    li.insertAdjacentHTML("beforeend", '<span class="track"><span class="fill"></span></span><span class="pct">0%</span>');
    list.append(li);
  }
}

// Fill the bars with {label: probability} (null empties them); the most probable is marked "top".
function showBars(list, probabilities) {
  let best = null;
  if (probabilities) best = Object.keys(probabilities).reduce((a, b) => probabilities[a] >= probabilities[b] ? a : b);
  for (const li of list.children) {
    const p = probabilities ? probabilities[li.dataset.label] : 0;
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = `${(100 * p).toFixed(0)}%`;
    li.classList.toggle("top", li.dataset.label === best);
  }
}
