// digitkit drawing page: strokes on a canvas, read as you draw through POST /api/predict (pad.js).
// The bars and the wording come from GET /api/model, so a model of any classes gets its own page.
(() => {
  const seen = document.getElementById("seen").getContext("2d");
  const status = document.getElementById("status");
  const labelEl = document.getElementById("label");
  const confEl = document.getElementById("confidence");
  const bars = document.getElementById("bars");
  let what = "a digit";
  const pad = drawingPad(document.getElementById("pad"), { onStroke: () => reader.schedule(), onLift: () => reader.now() });
  const reader = readAsYouDraw(pad, {
    url: "/api/predict", show,
    fail: (message) => { status.textContent = message; },
  });

  function reset() {
    pad.clear();
    labelEl.textContent = "–";
    confEl.textContent = "";
    status.textContent = `Draw ${what} in the box.`;
    status.classList.remove("unsure");
    showBars(bars, null);
    seen.clearRect(0, 0, 28, 28);
  }
  document.getElementById("clear").addEventListener("click", reset);

  function show(result) {
    if (result.label === null) {
      labelEl.textContent = "–";
      confEl.textContent = "";
      status.textContent = `Nothing drawn yet: draw ${what} in the box.`;
      status.classList.remove("unsure");
      showBars(bars, null);
      return;
    }
    if (result.verdict === "not a class") {  // a heart, a scribble, a dot: no digit at all
      labelEl.textContent = "?";
      confEl.textContent = "";
      status.textContent = result.message;
      status.classList.add("unsure");
      showBars(bars, result.probabilities);
      showSeen(result.normalized);
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
    showBars(bars, result.probabilities);
    showSeen(result.normalized);
  }

  function showSeen(pixels) {
    const img = seen.createImageData(28, 28);
    pixels.flat().forEach((v, i) => {
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
    buildBars(bars, labels);
    reset();
  }).catch(() => { status.textContent = "Could not load the model's description from the server."; });
  reset();
})();
