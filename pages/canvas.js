// The Draw page's canvas: a plain <canvas> with pointer events, no drawing library.
// It sends its strokes (not a PNG) as the state value "drawing" (see explorer/inputs/strokes.py):
// while a stroke is drawn at most every LIVE_MS (final: false), and at once on pointer-up
// (final: true). Undo, Clear and the brush size live here, so they cost no rerun by themselves.
// window.__cnnCanvasLiveMs = 0 switches the live sends off (the benchmark compares both).
const LIVE_MS = 200;
// Drawing without a drag (WCAG 2.5.7): a click paints a dot, and the keyboard draws too.
const KEYS_HELP =
  "Drawing canvas. Click to paint a dot, or drag to draw. With the keyboard: arrow keys move " +
  "the pen, Shift with an arrow moves it further, Space puts the pen down or lifts it, " +
  "Enter paints a dot.";
// Canvas pixels an arrow moves the pen: 1/28 of the 280-px canvas. Not one input pixel: the
// drawing is cropped to its ink and scaled to 20 px, so a step's size in the input depends on
// how large the digit is drawn.
const KEY_STEP = 10;
const KEY_MOVES = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const size = (data && data.size) || 280;
  let root = parentElement.querySelector(".cnn-canvas");
  if (!root) {
    root = document.createElement("div");
    root.className = "cnn-canvas";
    root.innerHTML = `
      <div class="pad">
        <canvas class="ink" width="${size}" height="${size}" tabindex="0" role="application"
          aria-label="${KEYS_HELP}"></canvas>
        <div class="cursor" hidden></div>
      </div>
      <div class="tools">
        <label>Brush <input class="brush" type="range" min="8" max="40"
          value="${(data && data.brush) || 22}" aria-label="Brush size"></label>
        <button class="undo" type="button" aria-label="Undo">Undo</button>
        <button class="clear" type="button" aria-label="Clear">Clear</button>
      </div>`;
    parentElement.appendChild(root);
    // A drawing restored from a link: painted once, when the canvas is made; never sent by
    // itself (the page already has it), only with the strokes drawn after it.
    const initial = Array.isArray(data && data.initial) ? data.initial : [];
    const strokes = initial.map((s) => ({ width: Number(s.width), points: [...s.points] }));
    root.state = { strokes, seq: 0, drawing: null, lastSent: 0, timer: null };
    root.limits = (data && data.limits) || {};
    wire(root, size);
  }
  root.send = setStateValue; // the latest setter and options, for the handlers wired once
  root.live = !(data && data.live === false);
  if (data && data.limits) root.limits = data.limits;
}

function wire(root, size) {
  const canvas = root.querySelector("canvas");
  const brush = root.querySelector(".brush");
  const state = root.state;
  const scale = window.devicePixelRatio || 1;
  canvas.width = size * scale;
  canvas.height = size * scale;
  // At most size px wide, narrower on a narrow screen (point() scales back to canvas pixels).
  canvas.style.width = `min(${size}px, 100%)`;
  canvas.style.aspectRatio = "1";
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
  wireKeys(root, size, canvas, brush, paintStroke, send);
  repaint();
}

// The keyboard's pen: a visible cursor the arrows move; Space puts the pen down (the moves then
// draw a stroke) or lifts it, Enter paints a dot (or lifts a pen that is down), Escape lifts it.
function wireKeys(root, size, canvas, brush, paintStroke, send) {
  const state = root.state;
  const cursor = root.querySelector(".cursor");
  const at = { x: size / 2, y: size / 2 };
  // Whether a point at (x, y) (a new stroke's first when none is drawn) keeps the drawing within
  // the caps canvas.py sends from explorer/inputs/strokes.py (points, strokes, pixels of pen
  // travel). Past them the page refuses the drawing and its link loses it, so the keyboard's pen
  // stops at them. Travel is counted before strokes are cut to the margin: never less.
  const room = (x, y) => {
    const { points = Infinity, strokes = Infinity, length = Infinity } = root.limits;
    const all = state.drawing ? [...state.strokes, state.drawing] : state.strokes;
    if (!state.drawing && all.length + 1 > strokes) return false;
    let used = 1;
    let travel = 0;
    for (const stroke of all) {
      const p = stroke.points;
      used += p.length / 2;
      for (let i = 2; i < p.length; i += 2) travel += Math.hypot(p[i] - p[i - 2], p[i + 1] - p[i - 1]);
    }
    if (state.drawing) {
      const p = state.drawing.points;
      travel += Math.hypot(x - p[p.length - 2], y - p[p.length - 1]);
    }
    return used <= points && travel <= length;
  };
  const show = () => {
    const k = canvas.clientWidth / size || 1; // a narrow screen may show the canvas smaller
    const r = (Number(brush.value) / 2) * k;
    cursor.style.left = `${canvas.offsetLeft + at.x * k - r}px`;
    cursor.style.top = `${canvas.offsetTop + at.y * k - r}px`;
    cursor.style.width = cursor.style.height = `${2 * r}px`;
    cursor.classList.toggle("down", state.pointer === "keys" && state.drawing !== null);
  };
  const keysDrawing = () => state.drawing && state.pointer === "keys";
  const lift = () => {
    if (!keysDrawing()) return;
    state.strokes.push(state.drawing);
    state.drawing = null;
    send(true);
    show();
  };
  const start = () => {
    if (!room(at.x, at.y)) return false; // full: Undo or Clear makes room
    state.pointer = "keys";
    state.drawing = { width: Number(brush.value), points: [at.x, at.y] };
    paintStroke(state.drawing, 0);
    show();
    return true;
  };
  // The cursor is placed in the canvas's pixels as shown: follow the canvas when it is resized.
  new ResizeObserver(() => {
    if (!cursor.hidden) show();
  }).observe(canvas);
  canvas.addEventListener("focus", () => {
    cursor.hidden = false;
    show();
  });
  canvas.addEventListener("blur", () => {
    lift();
    cursor.hidden = true;
  });
  canvas.addEventListener("keydown", (event) => {
    const move = KEY_MOVES[event.key];
    if (move) {
      const step = event.shiftKey ? 3 * KEY_STEP : KEY_STEP;
      const x = Math.min(size, Math.max(0, at.x + move[0] * step));
      const y = Math.min(size, Math.max(0, at.y + move[1] * step));
      if (keysDrawing() && (x !== at.x || y !== at.y)) {
        if (room(x, y)) {
          const from = state.drawing.points.length;
          state.drawing.points.push(x, y);
          paintStroke(state.drawing, from);
        } else {
          lift(); // the drawing is full: the pen lifts and moves on without ink
        }
      }
      at.x = x;
      at.y = y;
      show();
    } else if (event.key === " ") {
      if (keysDrawing()) lift();
      else if (!state.drawing) start();
    } else if (event.key === "Enter") {
      if (keysDrawing()) lift();
      else if (!state.drawing && start()) lift();
    } else if (event.key === "Escape" && keysDrawing()) {
      lift();
    } else {
      return; // Tab and every other key keep their usual meaning
    }
    event.preventDefault();
  });
}
