// Helpers of the tests: the WebSocket implementation, repod servers run as child processes,
// and waiting for conditions with a deadline.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import WS from "ws";

/** The repository's root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Node 22 has a WebSocket of its own; Node 20 gets the `ws` package's. */
export const WebSocket = /** @type {any} */ (globalThis).WebSocket ?? WS;

/** Whether tests must run rather than skip when something they need is missing. */
export const REQUIRED = ["REPOD_REQUIRE_BROWSER", "REPOD_REQUIRE_JS"].some((name) => {
  const value = process.env[name];
  return value !== undefined && value !== "" && value !== "0" && value !== "false";
});

/**
 * The path of a binary of repod-examples: `$env` when set, else the debug build under
 * target/. `null` when there is none (the caller skips, or fails under REQUIRED).
 */
export function binary(env, name) {
  const candidates = [process.env[env], path.join(ROOT, "target", "debug", name)];
  for (const candidate of candidates) {
    if (candidate && existsSync(candidate)) {
      return candidate;
    }
  }
  return null;
}

/** Skips test `t` with `why`, or fails it when tests are required. */
export function skipOrFail(t, why) {
  if (REQUIRED) {
    throw new Error(`${why} (required by REPOD_REQUIRE_BROWSER/REPOD_REQUIRE_JS)`);
  }
  process.stderr.write(`warning: skipping "${t.name}": ${why}\n`);
  t.skip(why);
}

/**
 * Starts a repod server binary on free ports and waits (bounded) until it printed its
 * addresses: `listening on A`, `websocket on ws://B`, and `open http://C/ …` if `http`.
 * Stopped by its PID with `stop()`.
 */
export async function startServer(bin, { http = false, args = [] } = {}) {
  const argv = ["--addr", "127.0.0.1:0", "--ws", "127.0.0.1:0", ...(http ? ["--http", "127.0.0.1:0"] : []), ...args];
  const child = spawn(bin, argv, { stdio: ["ignore", "pipe", "inherit"] });
  const lines = [];
  const server = {
    child,
    lines,
    tcpPort: 0,
    wsUrl: "",
    httpUrl: "",
    async stop() {
      await stopProcess(child);
    },
  };
  const ready = new Promise((resolve, reject) => {
    const reader = createInterface({ input: child.stdout });
    reader.on("line", (line) => {
      lines.push(line);
      let m;
      if ((m = /^listening on .*:(\d+)$/.exec(line))) {
        server.tcpPort = Number(m[1]);
      } else if ((m = /^websocket on (ws:\/\/\S+)$/.exec(line))) {
        server.wsUrl = m[1];
      } else if ((m = /^open (http:\/\/\S+) /.exec(line))) {
        server.httpUrl = m[1];
      }
      if (server.tcpPort && server.wsUrl && (!http || server.httpUrl)) {
        resolve(undefined);
      }
    });
    child.on("exit", (code, signal) => reject(new Error(`${bin} exited early (${code ?? signal}): ${lines.join("\n")}`)));
    child.on("error", reject);
  });
  try {
    await withDeadline(ready, 30_000, `${bin} did not print its addresses`);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return server;
}

/** Ends a child process by its PID: SIGTERM, then SIGKILL if it lingers; waits (bounded). */
export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs a child process to its end (bounded by `limit` ms); resolves with its status and output. */
export function run(bin, args, limit = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${bin} did not finish within ${limit} ms:\n${stdout}\n${stderr}`));
    }, limit);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Rejects with `what` if `promise` does not settle within `ms`. */
export async function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the first message of `action` the client receives (bounded). */
export function next(client, action, ms = 10_000) {
  return withDeadline(
    new Promise((resolve) => {
      const off = client.on(action, (message) => {
        off();
        resolve(message);
      });
    }),
    ms,
    `no "${action}" arrived`,
  );
}

/** Polls `check` until it returns a truthy value (bounded); resolves with that value. */
export async function until(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() > end) {
      throw new Error(`${what}: not within ${ms} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
