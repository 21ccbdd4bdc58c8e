// digitkit teach page: classes and their drawings (saved on the server), training with live progress
// (server-sent events), trying the trained model as you draw, downloads.
(() => {
  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 150;
  let selected = null, classes = [], state = {}, timer = null;

  // -- drawing ------------------------------------------------------------------------------------
  const pad = drawingPad($("pad"), {
    onStroke: () => { if (mode() === "try") { clearTimeout(timer); timer = setTimeout(tryModel, DEBOUNCE_MS); } },
  });
  $("clear").addEventListener("click", () => { pad.clear(); showAnswer(null); });

  const mode = () => document.querySelector('input[name="mode"]:checked').value;
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => { pad.clear(); showAnswer(null); render(); });
  }

  // -- the API ------------------------------------------------------------------------------------
  async function call(method, url, body) {
    const response = await fetch(url, { method, body, headers: body && !(body instanceof FormData) ? { "content-type": "application/json" } : {} });
    const text = await response.text();
    const data = text ? JSON.parse(text) : {};
    if (!response.ok) throw new Error(data.detail || `error ${response.status}`);
    return data;
  }

  async function refresh() {
    const project = await call("GET", "/api/teach");
    classes = project.classes;
    state = project.state;
    $("workspace").textContent = project.workspace;
    if (!selected || !classes.some((c) => c.name === selected)) selected = classes.length ? classes[0].name : null;
    render();
  }

  // -- classes ------------------------------------------------------------------------------------
  $("add-class").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("class-name").value.trim();
    try {
      await call("POST", "/api/teach/classes", JSON.stringify({ name }));
      $("class-name").value = "";
      $("class-message").textContent = "";
      selected = name;
      await refresh();
    } catch (err) {
      $("class-message").textContent = err.message;
    }
  });

  $("add-example").addEventListener("click", async () => {
    if (!selected) { $("class-message").textContent = "Add a class first."; return; }
    if (!pad.inked) { $("class-message").textContent = "Draw something first."; return; }
    const form = new FormData();
    form.append("file", await pad.blob(), "drawing.png");
    try {
      await call("POST", `/api/teach/classes/${encodeURIComponent(selected)}/examples`, form);
      $("class-message").textContent = "";
      pad.clear();
      await refresh();
    } catch (err) {
      $("class-message").textContent = err.message;
    }
  });

  function render() {
    const list = $("classes");
    list.replaceChildren();
    for (const c of classes) {
      const li = document.createElement("li");
      li.className = "class" + (c.name === selected ? " selected" : "");
      li.dataset.name = c.name;
      const head = document.createElement("button");
      head.type = "button";
      head.className = "class-name";
      head.textContent = `${c.name} (${c.count})`;
      head.title = "draw examples of this class";
      head.addEventListener("click", () => { selected = c.name; render(); });
      li.append(head);
      if (c.needs) {
        const need = document.createElement("span");
        need.className = "needs";
        need.textContent = `${c.needs} more to train`;
        li.append(need);
      }
      const thumbs = document.createElement("div");
      thumbs.className = "thumbs";
      for (const file of c.examples) {
        const item = document.createElement("span");
        item.className = "thumb";
        const img = document.createElement("img");
        img.src = `/api/teach/classes/${encodeURIComponent(c.name)}/examples/${file}`;
        img.alt = `${c.name} example`;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "remove";
        remove.textContent = "×";
        remove.title = "remove this example";
        remove.addEventListener("click", async () => {
          try {
            await call("DELETE", `/api/teach/classes/${encodeURIComponent(c.name)}/examples/${file}`);
            await refresh();
          } catch (err) { $("class-message").textContent = err.message; }
        });
        item.append(img, remove);
        thumbs.append(item);
      }
      li.append(thumbs);
      list.append(li);
    }
    $("target").textContent = selected || "…";
    $("add-example").disabled = !selected || mode() !== "teach";
    renderState();
  }

  // -- training -----------------------------------------------------------------------------------
  $("train").addEventListener("click", async () => {
    try {
      await call("POST", "/api/teach/train");
      $("train-status").textContent = "starting…";
    } catch (err) {
      $("train-status").textContent = err.message;
    }
  });
  $("cancel").addEventListener("click", async () => {
    try { await call("POST", "/api/teach/cancel"); } catch (err) { $("train-status").textContent = err.message; }
  });

  function renderState() {
    const busy = ["queued", "training"].includes(state.status);
    $("train").disabled = busy || state.status === "starting" || state.status === "exporting";
    $("cancel").hidden = !busy;
    const bar = $("progress");
    bar.hidden = !busy;
    if (state.epochs) { bar.max = state.epochs; bar.value = state.epoch || 0; }
    let text = state.message || "";
    if (state.status === "training" && state.epoch) {
      const acc = state.val_accuracy !== undefined ? `, validation accuracy ${(100 * state.val_accuracy).toFixed(1)}%` : "";
      text = `epoch ${state.epoch}/${state.epochs}: training accuracy ${(100 * state.accuracy).toFixed(1)}%${acc}`;
    } else if (state.run && !busy) {
      const acc = state.test_accuracy !== null && state.test_accuracy !== undefined ? ` (test accuracy ${(100 * state.test_accuracy).toFixed(1)}%)` : "";
      const took = state.ready_seconds ? ` in ${state.ready_seconds} s` : "";
      text = `${state.message && state.message !== "done" ? state.message + ". " : ""}Model ready${took}${acc}: switch to "Try the model" and draw.`;
    }
    $("train-status").textContent = text;
    $("try-status").textContent = state.onnx ? (mode() === "try" ? "Draw one of: " + (state.labels || []).join(", ") : 'Switch to "Try the model" to test it.') : "Train a model, then draw here in \"Try\" mode.";
    for (const [id, ready] of [["dl-coreml", state.coreml], ["dl-onnx", state.onnx]]) {
      $(id).classList.toggle("disabled", !ready);
      $(id).setAttribute("aria-disabled", String(!ready));
    }
  }

  function listen() {
    const source = new EventSource("/api/teach/events");
    source.onmessage = (event) => {
      const previous = state.run;
      state = JSON.parse(event.data);
      renderState();
      if (state.run !== previous) buildBars(bars, state.labels || []);
    };
    source.onerror = () => { $("train-status").textContent = "lost contact with the server; retrying…"; };
  }

  // -- trying the model ---------------------------------------------------------------------------
  const bars = $("bars");
  function showAnswer(result) {
    $("label").textContent = result && result.label !== null ? result.label : "–";
    $("confidence").textContent = !result || result.label === null ? "" :
      result.sure ? `${(100 * result.confidence).toFixed(1)}% sure` : `not sure: ${result.top[0][0]} or ${result.top[1][0]}?`;
    showBars(bars, result ? result.probabilities : null);
  }
  async function tryModel() {
    if (!pad.inked) return;
    const form = new FormData();
    form.append("file", await pad.blob(), "drawing.png");
    try {
      showAnswer(await call("POST", "/api/teach/predict", form));
    } catch (err) {
      $("try-status").textContent = err.message;
    }
  }

  refresh().then(() => { buildBars(bars, state.labels || []); listen(); });
})();
