// The Draw page's canvas: a plain <canvas> with pointer events, no drawing library.
// It sends its strokes (not a PNG) as the state value "drawing" (see explorer/inputs/strokes.py):
// while a stroke is drawn at most every LIVE_MS (final: false), and at once on pointer-up
// (final: true). Undo, Clear and the brush size live here, so they cost no rerun by themselves.
// window.__cnnCanvasLiveMs = 0 switches the live sends off (the benchmark compares both).
const LIVE_MS = 200;

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const size = (data && data.size) || 280;
  let root = parentElement.querySelector(".cnn-canvas");
  if (!root) {
    root = document.createElement("div");
    root.className = "cnn-canvas";
    root.innerHTML = `
      <canvas class="ink" width="${size}" height="${size}" aria-label="Drawing canvas"></canvas>
      <div class="tools">
        <label>Brush <input class="brush" type="range" min="8" max="40"
          value="${(data && data.brush) || 22}" aria-label="Brush size"></label>
        <button class="undo" type="button" aria-label="Undo">Undo</button>
        <button class="clear" type="button" aria-label="Clear">Clear</button>
      </div>`;
    parentElement.appendChild(root);
    root.state = { strokes: [], seq: 0, drawing: null, lastSent: 0, timer: null };
    wire(root, size);
  }
  root.send = setStateValue; // the latest setter and options, for the handlers wired once
  root.live = !(data && data.live === false);
}

function wire(root, size) {
  const canvas = root.querySelector("canvas");
  const brush = root.querySelector(".brush");
  const state = root.state;
  const scale = window.devicePixelRatio || 1;
  canvas.width = size * scale;
  canvas.height = size * scale;
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const pen = canvas.getContext("2d");
  pen.scale(scale, scale);

  const paintBackground = () => {
    pen.fillStyle = "#000";
    pen.fillRect(0, 0, size, size);
  };
  const paintStroke = (stroke, from) => {
    const p = stroke.points;
    pen.strokeStyle = "#fff";
    pen.fillStyle = "#fff";
    pen.lineWidth = stroke.width;
    pen.lineCap = "round";
    pen.lineJoin = "round";
    if (p.length === 2) {
      pen.beginPath();
      pen.arc(p[0], p[1], stroke.width / 2, 0, 2 * Math.PI);
      pen.fill();
      return;
    }
    pen.beginPath();
    const start = Math.max(0, from - 2);
    pen.moveTo(p[start], p[start + 1]);
    for (let i = start + 2; i < p.length; i += 2) pen.lineTo(p[i], p[i + 1]);
    pen.stroke();
  };
  const repaint = () => {
    paintBackground();
    for (const stroke of state.strokes) paintStroke(stroke, 0);
  };
  const send = (final) => {
    clearTimeout(state.timer);
    state.timer = null;
    state.seq += 1;
    state.lastSent = performance.now();
    const strokes = state.drawing ? [...state.strokes, state.drawing] : state.strokes;
    root.send("drawing", { size: [size, size], seq: state.seq, final, strokes });
  };
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) * size) / box.width;
    const y = ((event.clientY - box.top) * size) / box.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  };

  // One pen at a time: a second finger, or a right or middle button, never starts a stroke.
  const mine = (event) => state.drawing && event.pointerId === state.pointer;
  canvas.addEventListener("pointerdown", (event) => {
    if (state.drawing || !event.isPrimary || event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    state.pointer = event.pointerId;
    state.drawing = { width: Number(brush.value), points: point(event) };
    paintStroke(state.drawing, 0);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!mine(event)) return;
    const from = state.drawing.points.length;
    state.drawing.points.push(...point(event));
    paintStroke(state.drawing, from);
    // Live: a send at most every LIVE_MS while the pen moves; the last one is the pointer-up.
    const every = root.live ? window.__cnnCanvasLiveMs ?? LIVE_MS : 0;
    if (state.timer === null && every > 0) {
      const wait = Math.max(0, every - (performance.now() - state.lastSent));
      state.timer = setTimeout(() => state.drawing && send(false), wait);
    }
  });
  const finish = (event) => {
    if (!mine(event)) return;
    state.strokes.push(state.drawing);
    state.drawing = null;
    send(true);
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  root.querySelector(".undo").addEventListener("click", () => {
    if (!state.strokes.length) return;
    state.strokes.pop();
    repaint();
    send(true);
  });
  root.querySelector(".clear").addEventListener("click", () => {
    state.strokes = [];
    repaint();
    send(true);
  });
  paintBackground();
}
