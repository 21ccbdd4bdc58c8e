// digitkit drawing page: strokes on a canvas, debounced prediction through POST /api/predict.
// The bars and the wording come from GET /api/model, so a model of any classes gets its own page.
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
  let what = "a digit";

  function buildBars(names) {
    bars.replaceChildren();
    for (const name of names) {
      const li = document.createElement("li");
      li.dataset.label = name;
      const text = document.createElement("span");
      text.className = "name";
      text.textContent = name;
      li.append(text);
      li.insertAdjacentHTML("beforeend", '<span class="track"><span class="fill"></span></span><span class="pct">0%</span>');
      bars.appendChild(li);
    }
  }

  function reset() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
    labelEl.textContent = "–";
    confEl.textContent = "";
    status.textContent = `Draw ${what} in the box.`;
    status.classList.remove("unsure");
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
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    // Pens and fast mice deliver several points per frame: draw them all, not just the last.
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) stroke(point(ev));
  });
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
      const p = probabilities ? probabilities[li.dataset.label] : 0;
      li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".pct").textContent = `${(100 * p).toFixed(0)}%`;
      li.classList.toggle("top", li.dataset.label === best);
    }
  }

  function show(result) {
    if (result.label === null) {
      labelEl.textContent = "–";
      confEl.textContent = "";
      status.textContent = `Nothing drawn yet: draw ${what} in the box.`;
      status.classList.remove("unsure");
      showBars(null);
      return;
    }
    labelEl.textContent = result.label;
    if (result.sure) {
      confEl.textContent = `${(100 * result.confidence).toFixed(1)}% sure`;
      status.textContent = "";
    } else {
      // Not sure: say so, and name the two best candidates.
      const [first, second] = result.top;
      confEl.textContent = "not sure";
      status.textContent = `Not sure: ${first[0]} (${(100 * first[1]).toFixed(0)}%) or ${second[0]} (${(100 * second[1]).toFixed(0)}%)?`;
    }
    status.classList.toggle("unsure", !result.sure);
    showBars(result.probabilities);
    const img = seen.createImageData(28, 28);
    result.normalized.flat().forEach((v, i) => {
      img.data.set([v, v, v, 255], i * 4);
    });
    seen.putImageData(img, 0, 0);
  }

  fetch("/api/model").then((r) => r.json()).then((m) => {
    const labels = m.labels;
    const digits = labels.length === 10 && labels.every((l, i) => l === String(i));
    what = digits ? "a digit" : `one of: ${labels.join(", ")}`;
    document.getElementById("title").textContent = digits ? "Draw a digit" : "Draw";
    document.getElementById("hint").textContent = digits
      ? "Write one digit, 0 to 9, anywhere in the box. The model reads it as you draw."
      : `Draw one of ${labels.length} classes (${labels.join(", ")}) anywhere in the box. The model reads it as you draw.`;
    const acc = m.test_accuracy ? ` (test accuracy ${(100 * m.test_accuracy).toFixed(2)}%)` : "";
    document.getElementById("model").textContent = m.name + acc;
    buildBars(labels);
    reset();
  }).catch(() => { status.textContent = "Could not load the model's description from the server."; });
  reset();
})();
