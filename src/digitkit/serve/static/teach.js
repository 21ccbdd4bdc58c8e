// digitkit teach page: classes and their drawings (saved on the server), training with live progress
// (server-sent events), trying the trained model as you draw, downloads.
(() => {
  const $ = (id) => document.getElementById(id);
  let selected = null, classes = [], state = {};

  // -- drawing ------------------------------------------------------------------------------------
  const pad = drawingPad($("pad"), {
    onStroke: () => { if (mode() === "try") reader.schedule(); },
    onLift: () => { if (mode() === "try") reader.now(); },
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
    form.append("file", pad.blob(), "drawing.png");
    try {
      await call("POST", `/api/teach/classes/${encodeURIComponent(selected)}/examples`, form);
      $("class-message").textContent = "";
      pad.clear();
      await refresh();
    } catch (err) {
      $("class-message").textContent = err.message;
    }
  });

  // A removal can be undone: the drawing is kept here and sent again on Undo.
  let undo = null;
  async function removeExample(name, file) {
    const url = `/api/teach/classes/${encodeURIComponent(name)}/examples/${file}`;
    try {
      const blob = await (await fetch(`/api/teach/drawings/${encodeURIComponent(name)}/${file}`)).blob();
      await call("DELETE", url);
      undo = { name, blob };
      $("undo-text").textContent = `Removed a drawing of ${name}.`;
      $("undo-bar").hidden = false;
      await refresh();
    } catch (err) { $("class-message").textContent = err.message; }
  }
  $("undo").addEventListener("click", async () => {
    if (!undo) return;
    const form = new FormData();
    form.append("file", undo.blob, "drawing.png");
    try {
      await call("POST", `/api/teach/classes/${encodeURIComponent(undo.name)}/examples`, form);
      undo = null;
      $("undo-bar").hidden = true;
      await refresh();
    } catch (err) { $("class-message").textContent = err.message; }
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
        img.src = `/api/teach/drawings/${encodeURIComponent(c.name)}/${file}`;
        img.alt = `${c.name} example`;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "remove";
        remove.textContent = "×";
        remove.title = "remove this drawing";
        remove.setAttribute("aria-label", `remove this drawing of ${c.name}`);
        remove.addEventListener("click", () => removeExample(c.name, file));
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

  const seconds = (s) => s >= 90 ? `${Math.round(s / 60)} min` : `${Math.max(1, Math.round(s))} s`;
  const percent = (p) => `${(100 * p).toFixed(1)}%`;

  function renderState() {
    const busy = ["queued", "training"].includes(state.status);
    $("train").disabled = busy || ["starting", "exporting", "stopped"].includes(state.status);
    $("cancel").hidden = !busy;
    const bar = $("progress");
    bar.hidden = !busy;
    bar.max = 1;
    bar.value = state.fraction || 0;
    const tested = state.test_images ? ` on ${state.test_images} test drawing${state.test_images === 1 ? "" : "s"}` : "";
    const accuracy = state.test_accuracy !== null && state.test_accuracy !== undefined
      ? `test accuracy ${percent(state.test_accuracy)}${tested}` : "";
    let text = state.message || "";
    if (state.status === "queued") {
      text = "Starting the training…";
    } else if (state.status === "training") {
      const left = state.seconds_left ? `about ${seconds(state.seconds_left)} left` : "estimating the time left";
      const epoch = state.epoch ? `; after epoch ${state.epoch}/${state.epochs}: training accuracy ${percent(state.accuracy)}` +
        (state.val_accuracy != null ? `, validation accuracy ${percent(state.val_accuracy)}` : "") : "";
      text = `Training: ${Math.round(100 * (state.fraction || 0))}% done, ${left}${epoch}.`;
    } else if (state.status === "exporting") {
      text = `Trained in ${seconds(state.train_seconds)}${accuracy ? ` (${accuracy})` : ""}. Writing the Core ML file…`;
    } else if (state.run && state.status === "idle" && !state.message) {
      const facts = [state.train_seconds ? `trained in ${seconds(state.train_seconds)}` : "", accuracy].filter(Boolean);
      text = `Model ready${facts.length ? ` (${facts.join("; ")})` : ""}: switch to "Try the model" and draw.`;
    }
    $("train-status").textContent = text;
    $("notice").hidden = !state.notice;
    $("notice").textContent = state.notice || "";
    const previous = busy && state.onnx;  // a new model is on its way: what is here is the one before
    $("try-status").textContent = !state.onnx ? 'Train a model, then draw here in "Try" mode.'
      : mode() !== "try" ? 'Switch to "Try the model" to test it.'
      : (previous ? "Trying the previous model while the new one trains. " : "") + "Draw one of: " + (state.labels || []).join(", ");
    $("download-note").textContent = previous ? `These are the previous model's files (trained ${state.trained_at}); the new one replaces them when its training ends.`
      : state.status === "exporting" ? "The ONNX file is ready; the Core ML file is being written." : "";
    for (const [id, ready] of [["dl-coreml", state.coreml], ["dl-onnx", state.onnx]]) {
      $(id).classList.toggle("disabled", !ready);
      $(id).setAttribute("aria-disabled", String(!ready));
    }
  }

  function listen() {
    const source = new EventSource("/api/teach/events");
    let lost = null;  // EventSource reconnects by itself: only a lasting loss is worth a word
    source.onopen = () => {
      clearTimeout(lost);
      lost = null;
      // How many times the stream (re)connected: 1 for a page whose stream never dropped.
      document.body.dataset.streamOpens = String(Number(document.body.dataset.streamOpens || 0) + 1);
    };
    source.onmessage = (event) => {
      clearTimeout(lost);
      lost = null;
      const previous = state.run;
      state = JSON.parse(event.data);
      renderState();
      if (state.run !== previous) buildBars(bars, state.labels || []);
    };
    source.onerror = () => {
      if (lost === null) lost = setTimeout(() => { $("train-status").textContent = "Lost contact with the server; retrying…"; }, 3000);
    };
  }

  // -- trying the model ---------------------------------------------------------------------------
  const bars = $("bars");
  function showAnswer(result) {
    const none = result && result.verdict === "not a class";
    $("label").textContent = result && result.label !== null && !none ? result.label : "–";
    $("label").classList.toggle("long", $("label").textContent.length > 3);  // a word, not a digit
    $("confidence").textContent = !result || result.label === null ? "" : none ? result.message
      : result.sure ? `${(100 * result.confidence).toFixed(1)}% sure` : `not sure: ${result.top[0][0]} or ${result.top[1][0]}?`;
    showBars(bars, result && !none ? result.probabilities : null);
  }
  const reader = readAsYouDraw(pad, {
    url: "/api/teach/predict",
    show: showAnswer,
    fail: (message) => { $("try-status").textContent = message; },
  });

  refresh().then(() => { buildBars(bars, state.labels || []); listen(); });
})();
