// A repod client for browsers and Node: WebSocket transport, MessagePack payloads.
//
// The model is Python repod's: every message is a map whose "action" key names it and whose
// other keys are its fields. `send(action, fields)` sends one; handlers registered with
// `on(action, handler)` receive them; actions nobody handles go to the fallback
// (`onMessage`), as Python's `network_received`. A request carries a `"rid"` key and is
// answered by `{"action": "reply", "rid": N, "ok": value}` or `{..., "error": "text"}`.
//
// One binary WebSocket message carries one MessagePack payload (no length prefix).

import { encode, decode } from "@msgpack/msgpack";

/** The default deadline of a request, in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The default maximum payload length, sent or received (a repod server's default too). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** How many messages `send` keeps while the connection is being opened. */
export const DEFAULT_MAX_PENDING = 1024;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** Why a request failed; `kind` tells the cases apart. */
export class RequestError extends Error {
  /**
   * @param {"timeout" | "remote" | "disconnected" | "send"} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.name = "RequestError";
    this.kind = kind;
  }
}

/**
 * One connection to a repod server.
 *
 * Create it with `connect(url, options)` (or `new Client(options)` then `client.connect(url)`)
 * and register handlers before the connection opens: events are dispatched as they arrive,
 * from the WebSocket's own event callbacks.
 */
export class Client {
  /** @param {object} [options] */
  constructor(options = {}) {
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WebSocketImpl !== "function") {
      throw new TypeError(
        "no WebSocket implementation: pass one as options.WebSocket (for example the `ws` package)",
      );
    }
    this._WebSocket = WebSocketImpl;
    this._requestTimeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this._maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this._maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** @type {Function | null} */
    this._fallback = null;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any}>} */
    this._waiting = new Map();
    /** @type {Uint8Array[]} */
    this._pending = [];
    this._socket = null;
    this._nextRid = 1;
    this._closing = false;
    this._finished = false;
    this._opened = false;
    this._greeted = false;
  }

  /**
   * Opens the connection to `url` (`ws://host:port` or `wss://…`). Events follow:
   * `socketConnect` when the WebSocket is open, `connected` when the server's greeting
   * arrives, `error` and `disconnected` when it fails or ends. A client connects once.
   * @param {string | URL} url
   * @returns {this}
   */
  connect(url) {
    if (this._socket || this._finished) {
      throw new Error("this client has already connected; create a new one to connect again");
    }
    let socket;
    try {
      socket = new this._WebSocket(url);
    } catch (error) {
      // A malformed URL: report it as a failed connection, on a later turn like any other.
      this._socket = { readyState: CLOSED, close() {} };
      queueMicrotask(() => {
        this._raise("error", { message: `cannot connect to ${url}: ${describe(error)}` });
        this._finish(`cannot connect to ${url}`);
      });
      return this;
    }
    socket.binaryType = "arraybuffer";
    this._socket = socket;
    this._url = String(url);
    socket.addEventListener("open", () => this._onOpen());
    socket.addEventListener("message", (event) => this._onMessage(event.data));
    // The WebSocket's own error event carries no reason; the close event that always
    // follows it says what happened. (Listening keeps Node's `ws` from throwing it.)
    socket.addEventListener("error", () => {});
    socket.addEventListener("close", (event) => this._onClose(event));
    return this;
  }

  /** Whether the WebSocket is open (from `socketConnect` until the connection ends). */
  get isConnected() {
    return !!this._socket && this._socket.readyState === OPEN && !this._finished;
  }

  /** Whether the server's `connected` greeting has arrived on this connection. */
  get isGreeted() {
    return this._greeted;
  }

  /**
   * Registers a handler for `action` (a server message or a built-in event: `socketConnect`,
   * `connected`, `error`, `disconnected`). Several handlers may share an action; they run in
   * the order they were added. Returns a function that removes this handler.
   * @param {string} action
   * @param {(message: any, client: Client) => void} handler
   * @returns {() => void}
   */
  on(action, handler) {
    if (typeof handler !== "function") {
      throw new TypeError("a handler must be a function");
    }
    let set = this._handlers.get(action);
    if (!set) {
      set = new Set();
      this._handlers.set(action, set);
    }
    // Wrap, so the same function may be added twice and removed once per `on`.
    const entry = (/** @type {any} */ message) => handler(message, this);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this._handlers.get(action) === set) {
        this._handlers.delete(action);
      }
    };
  }

  /**
   * Sets the fallback: it receives every message and event whose action has no handler
   * (Python repod's `network_received`). A message that is not a map, or a map without an
   * `"action"` string, arrives here with the action `""`. `null` removes it.
   * @param {((message: any, client: Client) => void) | null} handler
   */
  onMessage(handler) {
    if (handler !== null && typeof handler !== "function") {
      throw new TypeError("the fallback must be a function or null");
    }
    this._fallback = handler;
  }

  /**
   * Sends a message: a map with `action` first, then `fields`. Returns `true` if it was
   * queued (on the open WebSocket, or to be sent when it opens), `false` if the connection is
   * over or the queue of a connection still opening is full.
   *
   * Throws a `TypeError` when `fields` is not a plain object or holds `action` or `rid` (both
   * belong to the envelope), and a `RangeError` when the payload would exceed `maxPayload`.
   * @param {string} action
   * @param {object} [fields]
   * @returns {boolean}
   */
  send(action, fields = {}) {
    return this._queue(this._encode(action, fields, undefined));
  }

  /**
   * Sends `fields` as a request for `action` and resolves with the server's reply value.
   *
   * Rejects with a `RequestError` whose `kind` is `"remote"` (the server answered with an
   * error; `message` is its text), `"timeout"` (no reply within `timeout` ms: default 10 s; a
   * late reply is dropped), `"disconnected"` (the connection ended first, or was over) or
   * `"send"` (the request could not be encoded, was too large, or the queue of a connection
   * still opening is full).
   * @param {string} action
   * @param {object} [fields]
   * @param {{timeout?: number}} [options]
   * @returns {Promise<any>}
   */
  request(action, fields = {}, options = {}) {
    const timeout = options.timeout ?? this._requestTimeout;
    if (this._finished || this._closing) {
      return Promise.reject(new RequestError("disconnected", "the connection is closed"));
    }
    const rid = this._nextRid++;
    let payload;
    try {
      payload = this._encode(action, fields, rid);
    } catch (error) {
      return Promise.reject(new RequestError("send", describe(error)));
    }
    return new Promise((resolve, reject) => {
      if (!this._queue(payload)) {
        reject(new RequestError("send", "the request could not be queued"));
        return;
      }
      const timer = setTimeout(() => {
        if (this._waiting.delete(rid)) {
          reject(new RequestError("timeout", `no reply to "${action}" within ${timeout} ms`));
        }
      }, timeout);
      this._waiting.set(rid, { resolve, reject, timer });
    });
  }

  /**
   * Closes the connection after what was sent is written. `disconnected` follows (reason
   * `"closed by client"`), and waiting requests fail with `"disconnected"`.
   */
  close() {
    if (this._finished || this._closing) {
      return;
    }
    this._closing = true;
    const socket = this._socket;
    if (!socket) {
      this._finish("closed by client");
      return;
    }
    if (socket.readyState === CONNECTING || socket.readyState === OPEN) {
      socket.close(1000);
    }
  }

  // --- internals ---

  _encode(action, fields, rid) {
    if (typeof action !== "string") {
      throw new TypeError("an action must be a string");
    }
    if (fields === null || fields === undefined) {
      fields = {};
    }
    if (typeof fields !== "object" || Array.isArray(fields)) {
      throw new TypeError(`the fields of "${action}" must be an object`);
    }
    /** @type {Record<string, unknown>} */
    const map = { action };
    if (rid !== undefined) {
      map.rid = rid;
    }
    for (const key of Object.keys(fields)) {
      if (key === "action" || key === "rid") {
        throw new TypeError(`"${key}" is not a field: the envelope sets it`);
      }
      map[key] = /** @type {Record<string, unknown>} */ (fields)[key];
    }
    // `ignoreUndefined` leaves out fields set to `undefined`, as JSON does.
    const payload = encode(map, { ignoreUndefined: true });
    if (payload.byteLength > this._maxPayload) {
      throw new RangeError(
        `"${action}" encodes to ${payload.byteLength} bytes, more than the maximum of ${this._maxPayload}`,
      );
    }
    return payload;
  }

  _queue(payload) {
    if (this._finished || this._closing || !this._socket) {
      return false;
    }
    if (this._socket.readyState === OPEN) {
      this._socket.send(payload);
      return true;
    }
    if (this._socket.readyState === CONNECTING && this._pending.length < this._maxPending) {
      this._pending.push(payload);
      return true;
    }
    return false;
  }

  _onOpen() {
    if (this._finished) {
      return;
    }
    this._opened = true;
    this._raise("socketConnect", {});
    const pending = this._pending;
    this._pending = [];
    for (const payload of pending) {
      if (this._socket.readyState !== OPEN) {
        break;
      }
      this._socket.send(payload);
    }
  }

  _onMessage(data) {
    if (this._finished) {
      return;
    }
    if (typeof data === "string") {
      this._raise("error", { message: "the server sent a text message; repod uses binary messages" });
      return;
    }
    let bytes;
    if (data instanceof ArrayBuffer) {
      bytes = new Uint8Array(data);
    } else if (ArrayBuffer.isView(data)) {
      bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else {
      this._raise("error", { message: "the server sent a message of an unknown kind" });
      return;
    }
    if (bytes.byteLength > this._maxPayload) {
      this._raise("error", {
        message: `a message of ${bytes.byteLength} bytes exceeds the maximum of ${this._maxPayload}`,
      });
      return;
    }
    let value;
    try {
      value = decode(bytes);
    } catch (error) {
      this._raise("error", { message: `cannot decode a message: ${describe(error)}` });
      return;
    }
    if (!isMap(value)) {
      this._dispatch("", { action: "", value });
      return;
    }
    const message = /** @type {Record<string, any>} */ (value);
    const action = typeof message.action === "string" ? message.action : "";
    if (action === "reply" && isRequestId(message.rid) && ("ok" in message || "error" in message)) {
      this._settle(message);
      return;
    }
    if (action === "connected") {
      this._greeted = true;
    }
    this._dispatch(action, action === message.action ? message : { ...message, action });
  }

  _settle(reply) {
    const waiting = this._waiting.get(reply.rid);
    if (!waiting) {
      return; // late (timed out) or unknown: nobody waits for it
    }
    this._waiting.delete(reply.rid);
    clearTimeout(waiting.timer);
    if ("error" in reply) {
      const text = typeof reply.error === "string" ? reply.error : show(reply.error);
      waiting.reject(new RequestError("remote", text));
    } else {
      waiting.resolve(reply.ok);
    }
  }

  _onClose(event) {
    if (this._finished) {
      return;
    }
    let reason;
    if (this._closing) {
      reason = "closed by client";
    } else if (!this._opened) {
      const detail = event.reason ? `: ${event.reason}` : "";
      this._raise("error", { message: `cannot connect to ${this._url}${detail}` });
      reason = `cannot connect to ${this._url}`;
    } else if (event.code === 1000 || event.code === 1001 || event.code === 1005) {
      // 1005: the server closed without a status code, as a repod server does.
      reason = "closed by peer";
    } else if (event.code === 1006) {
      reason = "connection lost";
    } else {
      reason = `closed by peer (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`;
    }
    this._finish(reason);
  }

  _finish(reason) {
    this._finished = true;
    this._pending = [];
    const waiting = [...this._waiting.values()];
    this._waiting.clear();
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(new RequestError("disconnected", `the connection ended: ${reason}`));
    }
    this._dispatch("disconnected", { action: "disconnected", reason });
  }

  _raise(action, fields) {
    this._dispatch(action, { action, ...fields });
  }

  _dispatch(action, message) {
    const set = this._handlers.get(action);
    if (set && set.size > 0) {
      for (const handler of [...set]) {
        runHandler(handler, message);
      }
    } else if (this._fallback) {
      runHandler(this._fallback, message, this);
    }
  }
}

/**
 * Creates a client and connects it to `url`.
 * @param {string | URL} url
 * @param {object} [options]
 * @returns {Client}
 */
export function connect(url, options) {
  return new Client(options).connect(url);
}

/** Runs a handler; an exception is reported without stopping the other handlers. */
function runHandler(handler, message, client) {
  try {
    handler(message, client);
  } catch (error) {
    // Reported like an uncaught exception (the console, `window.onerror`, Node's
    // `uncaughtException`), but only after the other handlers have run.
    setTimeout(() => {
      throw error;
    }, 0);
  }
}

function isMap(value) {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    !ArrayBuffer.isView(value) &&
    !(value instanceof Map)
  );
}

function isRequestId(rid) {
  return (typeof rid === "number" && Number.isInteger(rid) && rid >= 0) || (typeof rid === "bigint" && rid >= 0n);
}

function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

function show(value) {
  try {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  } catch {
    return String(value);
  }
}
