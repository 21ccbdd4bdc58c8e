// Shared by the drawing page (app.js) and the Teach page (teach.js): the pad you draw on with a round
// pen, its drawing as the PNG the server reads, and the bars of class probabilities.
"use strict";

// The drawing is sent at half the pad's size (140 px for the 280 px pad): plenty for a 28x28 input, a
// quarter of the bytes.

// onStroke runs after every stroke segment, onLift when the pen leaves the pad.
function drawingPad(pad, { onStroke = () => {}, onLift = () => {} } = {}) {
  const ctx = pad.getContext("2d");
  let drawing = false, last = null;
  // version: bumped by every change to the drawing, so an answer for an older drawing is known as one.
  const api = { inked: false, version: 0 };

  api.clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    api.inked = false;
    api.version++;
  };

  function point(event) {
    const r = pad.getBoundingClientRect();
    return { x: (event.clientX - r.left) * pad.width / r.width, y: (event.clientY - r.top) * pad.height / r.height };
  }

  function stroke(to) {
    ctx.strokeStyle = "#111";
    ctx.lineWidth = Math.min(pad.width, pad.height) / 14;  // a thick, round pen, like a finger on a phone
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    last = to;
    api.inked = true;
    api.version++;
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

  // The drawing as a PNG at half size, as the server expects it, made at once: canvas.toBlob runs
  // as an idle task, and right after input Chromium gives it none until its one-second fallback;
  // toDataURL encodes in a few milliseconds (benchmarks/page_latency.py measures both).
  api.blob = () => {
    const small = document.createElement("canvas");
    small.width = Math.round(pad.width / 2);
    small.height = Math.round(pad.height / 2);
    small.getContext("2d").drawImage(pad, 0, 0, small.width, small.height);
    return dataUrlBlob(small.toDataURL("image/png"));
  };

  api.clear();
  return api;
}

function dataUrlBlob(url) {
  const bytes = atob(url.slice(url.indexOf(",") + 1));
  const array = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) array[i] = bytes.charCodeAt(i);
  return new Blob([array], { type: "image/png" });
}

// Reads the pad as you draw: a request after a pause within a stroke, at once when the pen lifts.
// One request at a time: a newer drawing waits for the answer in flight and then goes; an answer
// that comes back for an older drawing than the pad's is not shown (the newer one's follows).
// show(result) gets each answer worth showing, fail(message) a refusal or a lost server.
function readAsYouDraw(pad, { url, show, fail, debounceMs = 120 }) {
  let timer = null, inFlight = false, again = false;

  async function send() {
    clearTimeout(timer);
    if (!pad.inked) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    const version = pad.version;
    try {
      const form = new FormData();
      form.append("file", pad.blob(), "drawing.png");
      const response = await fetch(url, { method: "POST", body: form });
      const result = await response.json();
      if (version !== pad.version) return;  // stale: the pad changed while this one was read
      if (!response.ok) fail(result.detail || `Error ${response.status}`);
      else show(result);
    } catch (err) {
      if (version === pad.version) fail("Could not reach the server: " + err);
    } finally {
      inFlight = false;
      if (again) { again = false; send(); }
    }
  }

  return {
    schedule() { clearTimeout(timer); timer = setTimeout(send, debounceMs); },
    now: send,
  };
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
