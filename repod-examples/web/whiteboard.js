// @ts-check
// The whiteboard page: draw with the mouse (or a finger); everyone's strokes appear live in
// their colour. It speaks the protocol of repod-examples/src/whiteboard.rs, whose TypeScript
// declarations (whiteboard-protocol.d.ts) are generated from the Rust types: `tsc` checks
// this file against them.

import { connect } from "repod-client";

/** @typedef {import("./whiteboard-protocol").WhiteboardProtocol} WhiteboardProtocol */
/** @typedef {import("./whiteboard-protocol").Player} Player */
/** @typedef {import("./whiteboard-protocol").Drawn} Drawn */
/** @typedef {[number, number]} Point */

/** The board's size in points, as the server checks it (`WIDTH`, `HEIGHT`). */
const WIDTH = 960;
const HEIGHT = 600;
/** A stroke message carries at most this many points (`MAX_POINTS`). */
const MAX_POINTS = 256;
/** While the pen moves, what it drew is sent at least this often, in milliseconds. */
const SEND_EVERY_MS = 30;

const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws") ?? `ws://${location.hostname}:${document.body.dataset.wsPort}`;

const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById("board"));
const pen = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
const playerList = /** @type {HTMLUListElement} */ (document.getElementById("players"));
const logList = /** @type {HTMLOListElement} */ (document.getElementById("log"));
const statusLine = /** @type {HTMLElement} */ (document.getElementById("status"));

/** What the page knows, also for tests and the console: `window.whiteboard`. */
const board = {
  /** @type {Player | null} */
  me: null,
  /** @type {Map<number, Player>} */
  players: new Map(),
  /** Every stroke on the board, in the order it was drawn here (own strokes included).
   * @type {Drawn[]} */
  strokes: [],
  /** @type {string[]} */
  log: [],
  status: "connecting",
};
/** @type {any} */ (window).whiteboard = board;

/** @type {import("repod-client").Client<WhiteboardProtocol>} */
const client = connect(wsUrl);

client.on("connected", async () => {
  setStatus("joining");
  try {
    const welcome = await client.request("join", { name: params.get("name") ?? "" });
    board.me = welcome.you;
    for (const player of welcome.players) {
      board.players.set(player.id, player);
    }
    for (const stroke of welcome.strokes) {
      addStroke(stroke);
    }
    showPlayers();
    note(`you joined as ${welcome.you.name}`);
    setStatus("drawing");
  } catch (error) {
    setStatus(`could not join: ${error instanceof Error ? error.message : error}`);
  }
});

client.on("joined", ({ player }) => {
  board.players.set(player.id, player);
  showPlayers();
  note(`${player.name} joined`);
});

client.on("left", ({ id }) => {
  const player = board.players.get(id);
  board.players.delete(id);
  showPlayers();
  note(`${player ? player.name : `player ${id}`} left`);
});

client.on("drawn", (drawn) => addStroke({ id: drawn.id, color: drawn.color, points: drawn.points }));

client.on("error", ({ message }) => note(`error: ${message}`));

client.on("disconnected", ({ reason }) => setStatus(`disconnected (${reason})`));

// --- drawing ---

/** The points drawn since the last send. @type {Point[]} */
let unsent = [];
/** The last point sent, where the next piece of the line starts. @type {Point | null} */
let lastSent = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let sendTimer = null;
let drawing = false;

canvas.addEventListener("pointerdown", (event) => {
  if (!board.me || event.button !== 0) {
    return;
  }
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  lastSent = null;
  const point = toBoard(event);
  unsent = [point];
  line(board.me.color, [point]);
  scheduleSend();
});

canvas.addEventListener("pointermove", (event) => {
  if (!drawing || !board.me) {
    return;
  }
  const point = toBoard(event);
  const previous = unsent.at(-1) ?? lastSent;
  if (previous && previous[0] === point[0] && previous[1] === point[1]) {
    return;
  }
  line(board.me.color, previous ? [previous, point] : [point]);
  unsent.push(point);
  if (unsent.length >= MAX_POINTS - 1) {
    sendUnsent();
  } else {
    scheduleSend();
  }
});

for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (drawing) {
      drawing = false;
      sendUnsent();
    }
  });
}

function scheduleSend() {
  if (sendTimer === null) {
    sendTimer = setTimeout(sendUnsent, SEND_EVERY_MS);
  }
}

/** Sends what was drawn since the last send, starting at the last point sent. */
function sendUnsent() {
  if (sendTimer !== null) {
    clearTimeout(sendTimer);
    sendTimer = null;
  }
  if (!board.me || unsent.length === 0) {
    return;
  }
  /** @type {Point[]} */
  const points = lastSent ? [lastSent, ...unsent] : unsent;
  client.send("stroke", { points });
  board.strokes.push({ id: board.me.id, color: board.me.color, points });
  lastSent = points[points.length - 1];
  unsent = [];
}

/** A pointer position in board points (the canvas may be shown scaled). */
function toBoard(/** @type {PointerEvent} */ event) {
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * WIDTH) / rect.width;
  const y = ((event.clientY - rect.top) * HEIGHT) / rect.height;
  /** @type {Point} */
  const point = [clamp(Math.round(x), WIDTH), clamp(Math.round(y), HEIGHT)];
  return point;
}

function clamp(/** @type {number} */ value, /** @type {number} */ max) {
  return Math.min(Math.max(value, 0), max);
}

/** @param {Drawn} stroke */
function addStroke(stroke) {
  board.strokes.push(stroke);
  line(stroke.color, stroke.points);
}

/** Draws a polyline (a dot for a single point). */
function line(/** @type {string} */ color, /** @type {Point[]} */ points) {
  pen.strokeStyle = color;
  pen.fillStyle = color;
  pen.lineWidth = 4;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  if (points.length === 1) {
    pen.beginPath();
    pen.arc(points[0][0], points[0][1], 2, 0, 2 * Math.PI);
    pen.fill();
    return;
  }
  pen.beginPath();
  pen.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) {
    pen.lineTo(x, y);
  }
  pen.stroke();
}

// --- the side panel ---

function showPlayers() {
  const items = [...board.players.values()].map((player) => {
    const item = document.createElement("li");
    item.textContent = player.name;
    item.style.color = player.color;
    item.dataset.id = String(player.id);
    if (player.id === board.me?.id) {
      item.className = "me";
    }
    return item;
  });
  playerList.replaceChildren(...items);
}

function note(/** @type {string} */ text) {
  board.log.push(text);
  const item = document.createElement("li");
  item.textContent = text;
  logList.append(item);
  while (logList.children.length > 12) {
    logList.firstElementChild?.remove();
  }
}

function setStatus(/** @type {string} */ status) {
  board.status = status;
  statusLine.textContent = status;
}
