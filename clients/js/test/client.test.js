// The JavaScript client against a real repod server: the `echo-server` of repod-examples,
// started on free ports for these tests (build it with `cargo build -p repod-examples`, or
// point REPOD_ECHO_SERVER at it).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";

import { Client, RequestError, connect } from "../src/repod.js";
import { WebSocket, binary, next, skipOrFail, startServer, until, withDeadline } from "./support.js";

const bin = binary("REPOD_ECHO_SERVER", "echo-server");

/** A client of the test server, with the `ws` package on Node 20. */
function client(options = {}) {
  return connect(server.wsUrl, { WebSocket, ...options });
}

/** Connects and waits for the server's greeting. */
async function greeted(options) {
  const c = client(options);
  await next(c, "connected");
  return c;
}

/** Closes a client and waits for its `disconnected`. */
async function closed(c) {
  const done = next(c, "disconnected");
  c.close();
  return done;
}

let server;

describe("the JavaScript client against echo-server", { timeout: 120_000 }, () => {
  before(async (t) => {
    if (bin) {
      server = await startServer(bin);
    }
    void t;
  });

  after(async () => {
    await server?.stop();
  });

  test("connects, is greeted, sends and receives, and closes with disconnected last", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary (cargo build -p repod-examples)");
    const events = [];
    const c = client();
    for (const action of ["socketConnect", "connected", "echo", "error", "disconnected"]) {
      c.on(action, (message) => events.push([action, message]));
    }
    assert.equal(c.isConnected, false);
    await next(c, "connected");
    assert.equal(c.isConnected, true);
    assert.equal(c.isGreeted, true);
    assert.equal(c.send("echo", { text: "héllo 🎨" }), true);
    const echo = await next(c, "echo");
    assert.deepEqual(echo, { action: "echo", text: "héllo 🎨" });
    const gone = await closed(c);
    assert.deepEqual(gone, { action: "disconnected", reason: "closed by client" });
    assert.deepEqual(
      events.map(([action]) => action),
      ["socketConnect", "connected", "echo", "disconnected"],
    );
    assert.equal(c.isConnected, false);
    assert.equal(c.send("echo", { text: "too late" }), false);
  });

  test("messages sent before the connection opens are delivered, in order", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = client();
    const texts = [];
    const all = new Promise((resolve) =>
      c.on("echo", ({ text }) => {
        texts.push(text);
        if (texts.length === 50) resolve(undefined);
      }),
    );
    for (let i = 0; i < 50; i++) {
      assert.equal(c.send("echo", { text: `m${i}` }), true);
    }
    await withDeadline(all, 10_000, "not every echo came back");
    assert.deepEqual(texts, Array.from({ length: 50 }, (_, i) => `m${i}`));
    await closed(c);
  });

  test("each action goes to its handlers; actions without one go to the fallback", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    const fallback = [];
    c.onMessage((message) => fallback.push(message));
    const first = [];
    const second = [];
    c.on("echo", (m) => first.push(m.text));
    const off = c.on("echo", (m) => second.push(m.text));
    c.send("echo", { text: "a" });
    // The server answers an action it has no handler for with `unknown {name}`, which this
    // client has no handler for either.
    c.send("no_such_action", { x: 1 });
    const unknown = await until(() => fallback.find((m) => m.action === "unknown"), 10_000, "no fallback");
    assert.deepEqual(unknown, { action: "unknown", name: "no_such_action" });
    // Order is kept: the echo was sent first, so both handlers have it.
    assert.deepEqual(first, ["a"]);
    assert.deepEqual(second, ["a"]);
    off();
    c.send("echo", { text: "b" });
    await until(() => first.length === 2, 10_000, "no second echo");
    assert.deepEqual(first, ["a", "b"]);
    assert.deepEqual(second, ["a"]);
    assert.equal(fallback.filter((m) => m.action === "echo").length, 0);
    await closed(c);
  });

  test("an error message from the server reaches the error handlers", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    // A plain message whose body does not fit the handler's type.
    c.send("add", { a: "two", b: 3 });
    const error = await next(c, "error");
    assert.equal(error.action, "error");
    assert.equal(typeof error.message, "string");
    assert.ok(error.message.length > 0);
    assert.equal(c.isConnected, true);
    await closed(c);
  });

  test("broadcasts reach every client, with the sender's id", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const a = await greeted();
    const b = await greeted();
    const atA = next(a, "shouted");
    const atB = next(b, "shouted");
    a.send("shout", { text: "hi all" });
    const [x, y] = await Promise.all([atA, atB]);
    assert.equal(x.text, "hi all");
    assert.deepEqual(x, y);
    assert.equal(typeof x.from, "number");
    await Promise.all([closed(a), closed(b)]);
  });

  test("requests resolve with their replies, many in flight at once", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    assert.deepEqual(await c.request("add", { a: 2, b: 3 }), { sum: 5 });
    const sums = await Promise.all(
      Array.from({ length: 40 }, (_, i) => c.request("add", { a: i, b: -1000 })),
    );
    assert.deepEqual(
      sums.map((s) => s.sum),
      Array.from({ length: 40 }, (_, i) => i - 1000),
    );
    await closed(c);
  });

  test("values survive the trip: integers, floats, strings, lists, null, nested", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    const values = {
      small: 200,
      big: 2 ** 40 + 7,
      negative: -123456,
      float: 2.5,
      single: 1.5,
      text: "a ✏️ line",
      list: [0, 1, 65535],
      maybe: null,
      nested: { flag: true, pair: [-5, "five"] },
    };
    assert.deepEqual(await c.request("values", values), values);
    // A whole number where the server expects a float.
    assert.deepEqual(await c.request("values", { ...values, float: 3 }), { ...values, float: 3 });
    // `undefined` fields are left out: the server sees no `maybe` at all.
    assert.deepEqual(await c.request("values", { ...values, maybe: undefined }), values);
    await closed(c);
  });

  test("an error reply rejects with kind remote and the server's text", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    await assert.rejects(c.request("fail", { text: "no such room: attic" }), (error) => {
      assert.ok(error instanceof RequestError);
      assert.equal(error.kind, "remote");
      assert.equal(error.message, "no such room: attic");
      return true;
    });
    // A body that does not fit the request type: an error reply too.
    await assert.rejects(c.request("add", { a: "two", b: 3 }), (error) => error.kind === "remote");
    // An action without a handler: answered with an error, never left waiting.
    await assert.rejects(c.request("no_such_request", {}), (error) => error.kind === "remote");
    // The connection is still fine.
    assert.deepEqual(await c.request("add", { a: 1, b: 1 }), { sum: 2 });
    await closed(c);
  });

  test("a request without a reply times out; its late reply is dropped", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    const stray = [];
    c.onMessage((m) => stray.push(m));
    await assert.rejects(c.request("hold", {}, { timeout: 200 }), (error) => {
      assert.equal(error.kind, "timeout");
      return true;
    });
    // Another request is held too, then both are answered: the first reply is late.
    const held = c.request("hold", {}, { timeout: 20_000 });
    const other = await greeted();
    // `release` is handled after `hold` arrived, for both came from `c` before `add` did.
    assert.deepEqual(await c.request("add", { a: 0, b: 0 }), { sum: 0 });
    other.send("release");
    assert.equal(await held, 2);
    assert.deepEqual(await c.request("add", { a: 1, b: 2 }), { sum: 3 });
    assert.deepEqual(stray, [], "a late reply reached the fallback");
    await Promise.all([closed(c), closed(other)]);
  });

  test("the end of the connection fails waiting requests, then disconnected", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted();
    const order = [];
    const held = c.request("hold", {}).catch((error) => {
      order.push(`rejected ${error.kind}`);
      throw error;
    });
    const gone = next(c, "disconnected").then((m) => {
      order.push("disconnected");
      return m;
    });
    c.send("kick");
    await assert.rejects(held, (error) => error instanceof RequestError && error.kind === "disconnected");
    assert.equal((await gone).reason, "closed by peer");
    assert.deepEqual(order, ["rejected disconnected", "disconnected"]);
    await assert.rejects(c.request("add", { a: 1, b: 1 }), (error) => error.kind === "disconnected");
    // The held request's token was dropped with its channel; free the state anyway.
    const other = await greeted();
    other.send("release");
    await closed(other);
  });

  test("a connection that cannot be made raises error, then disconnected", async () => {
    // A port nobody listens on: bound, then closed.
    const port = await new Promise((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = /** @type {net.AddressInfo} */ (probe.address());
        probe.close(() => resolve(port));
      });
    });
    const c = connect(`ws://127.0.0.1:${port}`, { WebSocket });
    const events = [];
    c.onMessage((m) => events.push(m));
    const request = c.request("add", { a: 1, b: 1 });
    await assert.rejects(request, (error) => error.kind === "disconnected");
    await until(() => events.some((m) => m.action === "disconnected"), 10_000, "no disconnected");
    assert.deepEqual(
      events.map((m) => m.action),
      ["error", "disconnected"],
    );
    assert.match(events[0].message, /cannot connect/);
  });

  test("a malformed address raises error, then disconnected", async () => {
    const c = connect("not a url", { WebSocket });
    const events = [];
    c.onMessage((m) => events.push(m));
    assert.equal(c.send("echo", { text: "x" }), false);
    await until(() => events.some((m) => m.action === "disconnected"), 10_000, "no disconnected");
    assert.deepEqual(
      events.map((m) => m.action),
      ["error", "disconnected"],
    );
    assert.match(events[0].message, /cannot connect to not a url/);
  });

  test("bad arguments are refused before anything is sent", async (t) => {
    if (!server) return skipOrFail(t, "no echo-server binary");
    const c = await greeted({ maxPayload: 100 });
    assert.throws(() => c.send("echo", { rid: 1 }), TypeError);
    assert.throws(() => c.send("echo", { action: "other" }), TypeError);
    assert.throws(() => c.send("echo", /** @type {any} */ ([1, 2])), TypeError);
    assert.throws(() => c.send(/** @type {any} */ (7), {}), TypeError);
    assert.throws(() => c.send("echo", { text: "x".repeat(200) }), RangeError);
    await assert.rejects(c.request("echo", { text: "x".repeat(200) }), (error) => error.kind === "send");
    assert.throws(() => c.on("echo", /** @type {any} */ ("not a function")), TypeError);
    assert.throws(() => c.connect(server.wsUrl), /already connected/);
    // Still usable.
    c.send("echo", { text: "fine" });
    assert.equal((await next(c, "echo")).text, "fine");
    await closed(c);
  });

  test("a client needs a WebSocket implementation", () => {
    const saved = globalThis.WebSocket;
    try {
      // @ts-ignore
      globalThis.WebSocket = undefined;
      assert.throws(() => new Client(), /no WebSocket implementation/);
    } finally {
      // @ts-ignore
      globalThis.WebSocket = saved;
    }
  });
});
