// digitkit drawing page, number mode: write a whole number on a wide pad, or take a photo of one;
// POST /api/read answers the number and each digit's box, drawn over the ink (pad.js reads as you draw).
(() => {
  const $ = (id) => document.getElementById(id);
  const numberEl = $("number"), status = $("number-status"), boxes = $("boxes").getContext("2d");
  const PHOTO_SIDE = 1600;  // a phone photo is shrunk to this before it is sent (3-8 MB become ~0.3 MB)
  const pad = drawingPad($("wide-pad"), { onStroke: () => reader.schedule(), onLift: () => reader.now() });
  const reader = readAsYouDraw(pad, {
    url: "/api/read",
    show: (result) => {
      boxes.clearRect(0, 0, $("boxes").width, $("boxes").height);
      drawBoxes(boxes, result, $("boxes").width / result.width);
      showNumber(result);
    },
    fail: (message) => { status.textContent = message; },
  });

  function clear() {
    pad.clear();
    boxes.clearRect(0, 0, $("boxes").width, $("boxes").height);
    numberEl.textContent = "–";
    status.textContent = "Write a number, digits side by side, on one line.";
    $("photo-view").hidden = true;
  }
  $("clear-number").addEventListener("click", clear);

  // Each digit's box, its answer under it; an unsure digit in orange with a question mark.
  function drawBoxes(ctx, result, scale) {
    const k = ctx.canvas.width / (ctx.canvas.clientWidth || ctx.canvas.width);  // canvas pixels per CSS pixel
    ctx.font = `bold ${Math.round(16 * k)}px system-ui, sans-serif`;  // 16 px on screen, on a phone too
    ctx.lineWidth = 2 * k;
    for (const digit of result.digits) {
      const [x, y, w, h] = digit.box.map((v) => v * scale);
      const unsure = digit.verdict !== "sure" && digit.verdict !== "point";
      ctx.strokeStyle = ctx.fillStyle = unsure ? "#bf8700" : "#1a7f37";
      ctx.strokeRect(x - 3, y - 3, w + 6, h + 6);
      const text = unsure ? `${digit.label}?` : digit.label;
      ctx.fillText(text, x + w / 2 - ctx.measureText(text).width / 2, Math.min(ctx.canvas.height - 3 * k, y + h + 19 * k));
    }
  }

  function showNumber(result) {
    numberEl.replaceChildren();
    if (!result.number) {
      numberEl.textContent = "–";
      status.textContent = result.message || "No digits found.";
      return;
    }
    [...result.number].forEach((char, i) => {
      const span = document.createElement("span");
      span.textContent = char;
      if (result.unsure.includes(i)) span.className = "unsure";
      numberEl.append(span);
    });
    status.textContent = result.verdict === "sure" ? "Sure of every digit." : `Not sure: ${result.message}.`;
  }

  // A photo: shrunk (its EXIF orientation applied) and sent as JPEG; shown with its boxes.
  $("photo").addEventListener("change", async () => {
    const file = $("photo").files[0];
    if (!file) return;
    status.textContent = "Reading the photo…";
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      const scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
      const canvas = $("photo-canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const form = new FormData();
      form.append("file", dataUrlBlob(canvas.toDataURL("image/jpeg", 0.85)), "photo.jpg");
      const response = await fetch("/api/read", { method: "POST", body: form });
      const result = await response.json();
      if (!response.ok) { status.textContent = result.detail || `Error ${response.status}`; return; }
      drawBoxes(canvas.getContext("2d"), result, canvas.width / result.width);
      $("photo-view").hidden = false;
      showNumber(result);
    } catch (err) {
      status.textContent = "Could not read the photo: " + err;
    } finally {
      $("photo").value = "";
    }
  });

  // The mode switch: one digit (app.js) or a number (here).
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => {
      const number = radio.value === "number" && radio.checked;
      $("digit-mode").hidden = number;
      $("number-mode").hidden = !number;
      $("title").textContent = number ? "Write a number" : "Draw a digit";
      $("hint").textContent = number
        ? "Write a number (a year, an amount, a meter reading) on one line, or take a photo of one on paper."
        : "Write one digit, 0 to 9, anywhere in the box. The model reads it as you draw.";
    });
  }
})();
