// Driving the whiteboard page in Debian's Chromium, headless, through playwright-core.

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

/** The browser: `$REPOD_CHROMIUM`, else Debian's `/usr/bin/chromium`. */
export const CHROMIUM = process.env.REPOD_CHROMIUM || "/usr/bin/chromium";

/** Why a browser cannot run here, or `null`. */
export function browserMissing() {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set REPOD_CHROMIUM)`;
}

/** The board's size in points (as in whiteboard.rs). */
const WIDTH = 960;

/**
 * Starts Chromium with a fresh profile; `close()` stops it and removes the profile.
 * Every page shares the one browser context (separate tabs, separate connections).
 */
export async function launchBrowser() {
  const profile = await mkdtemp(path.join(os.tmpdir(), "repod-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1240, height: 700 },
    timeout: 60_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the whiteboard as player `name` and waits (bounded) until it has joined. Errors the
 * page throws are collected in `page.problems`.
 */
export async function openBoard(context, url, name) {
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") {
      problems.push(`console error: ${message.text()}`);
    }
  });
  await page.goto(`${url}?name=${encodeURIComponent(name)}`);
  try {
    await page.waitForFunction(() => /** @type {any} */ (window).whiteboard?.status === "drawing", null, {
      timeout: 30_000,
    });
  } catch (error) {
    const status = await page.evaluate(() => /** @type {any} */ (window).whiteboard?.status);
    throw new Error(`${name} did not join (status ${status}; ${problems.join("; ")}): ${error}`);
  }
  return Object.assign(page, { problems });
}

/** The page's own player. */
export function me(page) {
  return page.evaluate(() => /** @type {any} */ (window).whiteboard.me);
}

/** Every stroke the page knows of player `id` (its own ones included), as point lists. */
export function strokesOf(page, id) {
  return page.evaluate(
    (id) => /** @type {any} */ (window).whiteboard.strokes.filter((s) => s.id === id).map((s) => s.points),
    id,
  );
}

/** The ids of every player whose strokes the page has, besides its own. */
export function drawers(page) {
  return page.evaluate(() => {
    const board = /** @type {any} */ (window).whiteboard;
    return [...new Set(board.strokes.map((s) => s.id))].filter((id) => id !== board.me.id);
  });
}

/** Waits (bounded) until `fn(page)` is truthy; polls. */
export async function waitFor(page, what, fn, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn(page);
    if (value) {
      return value;
    }
    if (Date.now() > end) {
      throw new Error(`${what}: not within ${ms} ms (${page.problems?.join("; ") ?? ""})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Draws a line through `points` (board coordinates) with the mouse: button down on the
 * first, moves through the others, up on the last.
 */
export async function draw(page, points) {
  const box = await page.locator("#board").boundingBox();
  if (!box) {
    throw new Error("no board on the page");
  }
  const scale = box.width / WIDTH;
  const at = ([x, y]) => [box.x + x * scale, box.y + y * scale];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const point of points.slice(1)) {
    await page.mouse.move(...at(point), { steps: 2 });
  }
  await page.mouse.up();
}

/** Points along a spiral around (cx, cy). */
export function spiral(cx, cy, turns, radius, n = 90) {
  return Array.from({ length: n }, (_, i) => {
    const t = i / (n - 1);
    const angle = t * turns * 2 * Math.PI;
    return [Math.round(cx + Math.cos(angle) * radius * t), Math.round(cy + Math.sin(angle) * radius * t)];
  });
}

/** Points along a sine wave from x0 to x1 around y. */
export function wave(x0, x1, y, amplitude, waves, n = 80) {
  return Array.from({ length: n }, (_, i) => {
    const t = i / (n - 1);
    return [Math.round(x0 + (x1 - x0) * t), Math.round(y + Math.sin(t * waves * 2 * Math.PI) * amplitude)];
  });
}
