// digitkit drawing page: strokes on a canvas, debounced prediction through POST /api/predict.
(() => {
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const seen = document.getElementById("seen").getContext("2d");
  const status = document.getElementById("status");
  const labelEl = document.getElementById("label");
  const confEl = document.getElementById("confidence");
  const bars = document.getElementById("bars");
  const DEBOUNCE_MS = 120;
  const UPLOAD_SIZE = 140;
  let drawing = false, inked = false, last = null, timer = null, inFlight = false, again = false;

  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.dataset.digit = String(d);
    li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
    bars.appendChild(li);
  }

  function reset() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
    labelEl.textContent = "–";
    confEl.textContent = "";
    status.textContent = "Draw a digit in the box.";
    showBars(null);
    seen.clearRect(0, 0, 28, 28);
  }

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
    inked = true;
    schedule();
  }

  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    stroke({ x: last.x + 0.01, y: last.y });  // a tap leaves a dot
  });
  pad.addEventListener("pointermove", (e) => { if (drawing) stroke(point(e)); });
  for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => { drawing = false; schedule(); });
  document.getElementById("clear").addEventListener("click", reset);

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(predict, DEBOUNCE_MS);
  }

  async function predict() {
    if (!inked) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      // Half resolution is plenty for a 28x28 model input, and a quarter of the bytes to send and decode.
      const small = document.createElement("canvas");
      small.width = small.height = UPLOAD_SIZE;
      small.getContext("2d").drawImage(pad, 0, 0, UPLOAD_SIZE, UPLOAD_SIZE);
      const blob = await new Promise((resolve) => small.toBlob(resolve, "image/png"));
      const form = new FormData();
      form.append("file", blob, "drawing.png");
      const response = await fetch("/api/predict", { method: "POST", body: form });
      const result = await response.json();
      if (!response.ok) { status.textContent = result.detail || `Error ${response.status}`; return; }
      show(result);
    } catch (err) {
      status.textContent = "Could not reach the server: " + err;
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(); }
    }
  }

  function showBars(probabilities) {
    let best = null;
    if (probabilities) best = Object.keys(probabilities).reduce((a, b) => probabilities[a] >= probabilities[b] ? a : b);
    for (const li of bars.children) {
      const p = probabilities ? probabilities[li.dataset.digit] : 0;
      li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".pct").textContent = `${(100 * p).toFixed(0)}%`;
      li.classList.toggle("top", li.dataset.digit === best);
    }
  }

  function show(result) {
    if (result.label === null) {
      labelEl.textContent = "–";
      confEl.textContent = "";
      status.textContent = "No digit found: draw a digit in the box.";
      showBars(null);
      return;
    }
    labelEl.textContent = result.label;
    confEl.textContent = `${(100 * result.confidence).toFixed(1)}% sure`;
    status.textContent = result.confidence < 0.5 ? "Not sure: try writing it more clearly." : "";
    showBars(result.probabilities);
    const img = seen.createImageData(28, 28);
    result.normalized.flat().forEach((v, i) => {
      img.data.set([v, v, v, 255], i * 4);
    });
    seen.putImageData(img, 0, 0);
  }

  fetch("/api/model").then((r) => r.json()).then((m) => {
    const acc = m.test_accuracy ? ` (test accuracy ${(100 * m.test_accuracy).toFixed(2)}%)` : "";
    document.getElementById("model").textContent = m.name + acc;
  }).catch(() => {});
  reset();
})();
