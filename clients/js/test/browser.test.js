// The whiteboard in a real browser: two pages in headless Chromium draw with the mouse and
// each sees the other's strokes; Rust bots (over TCP and over WebSocket) draw too and their
// strokes appear on both pages; joins and leaves are shown. A screenshot is saved to
// target/whiteboard.png.
//
// Needs the whiteboard-server and whiteboard-bots binaries (cargo build -p repod-examples, or
// REPOD_WHITEBOARD_SERVER / REPOD_WHITEBOARD_BOTS) and Chromium (REPOD_CHROMIUM, default
// /usr/bin/chromium).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";

import { ROOT, binary, run, skipOrFail, startServer } from "./support.js";
import { browserMissing, draw, launchBrowser, me, openBoard, spiral, strokesOf, waitFor, wave } from "./browser-support.js";

const serverBin = binary("REPOD_WHITEBOARD_SERVER", "whiteboard-server");
const botsBin = binary("REPOD_WHITEBOARD_BOTS", "whiteboard-bots");

/** The text of every entry of the page's player list and event log. */
function panel(page) {
  return page.evaluate(() => ({
    players: [...document.querySelectorAll("#players li")].map((li) => li.textContent),
    log: [...document.querySelectorAll("#log li")].map((li) => li.textContent),
  }));
}

/** Runs one bot of whiteboard-bots to its end; returns its id and how many strokes it drew. */
async function runBot(addr, name) {
  const out = await run(botsBin, ["--addr", addr, "--bots", "1", "--seconds", "2", "--rate", "25", "--name", name]);
  assert.equal(out.code, 0, `whiteboard-bots failed:\n${out.stdout}\n${out.stderr}`);
  const joined = new RegExp(`^${name}-1 joined as player (\\d+) in (#[0-9a-f]{6})$`, "m").exec(out.stdout);
  const drew = /^1 bots drew (\d+) strokes .* 0 dropped by the server$/m.exec(out.stdout);
  assert.ok(joined && drew, `unexpected output of whiteboard-bots:\n${out.stdout}`);
  assert.ok(Number(drew[1]) > 0, "the bot drew nothing");
  return { id: Number(joined[1]), color: joined[2], strokes: Number(drew[1]) };
}

test("two browser players and Rust bots draw on one whiteboard", { timeout: 240_000 }, async (t) => {
  const missing = browserMissing() ?? (!serverBin || !botsBin ? "no whiteboard-server/whiteboard-bots binaries (cargo build -p repod-examples)" : null);
  if (missing) {
    return skipOrFail(t, missing);
  }
  const server = await startServer(serverBin, { http: true });
  const browser = await launchBrowser();
  try {
    const ada = await openBoard(browser.context, server.httpUrl, "ada");
    const bob = await openBoard(browser.context, server.httpUrl, "bob");
    const [adaMe, bobMe] = [await me(ada), await me(bob)];
    assert.equal(adaMe.name, "ada");
    assert.equal(bobMe.name, "bob");
    assert.notEqual(adaMe.color, bobMe.color);
    // Ada saw Bob join; both list both players.
    await waitFor(ada, "ada sees bob join", async () => (await panel(ada)).log.includes("bob joined"));
    for (const page of [ada, bob]) {
      assert.deepEqual((await panel(page)).players.sort(), ["ada", "bob"]);
    }

    // Each draws with the mouse.
    await draw(ada, spiral(250, 300, 3, 170));
    await draw(bob, wave(480, 920, 120, 60, 2.5));
    await draw(bob, spiral(700, 420, 2, 120));

    // Each sees every stroke the other sent, in order, point for point.
    for (const [viewer, drawer] of [
      [ada, bobMe],
      [bob, adaMe],
    ]) {
      const sent = await strokesOf(drawer === bobMe ? bob : ada, drawer.id);
      assert.ok(sent.length > 0, `${drawer.name} sent no stroke`);
      await waitFor(viewer, `${drawer.name}'s strokes reach the other page`, async (page) => {
        const seen = await strokesOf(page, drawer.id);
        return seen.length === sent.length;
      });
      assert.deepEqual(await strokesOf(viewer, drawer.id), sent);
    }

    // Rust bots: one over TCP, one over WebSocket. Their strokes reach both pages.
    const bots = [
      await runBot(`127.0.0.1:${server.tcpPort}`, "tcpbot"),
      await runBot(server.wsUrl, "wsbot"),
    ];
    for (const bot of bots) {
      for (const page of [ada, bob]) {
        await waitFor(page, `the strokes of bot ${bot.id}`, async (p) => (await strokesOf(p, bot.id)).length === bot.strokes);
      }
      const colors = await ada.evaluate(
        (id) => [.../** @type {any} */ (window).whiteboard.strokes.filter((s) => s.id === id).map((s) => s.color)],
        bot.id,
      );
      assert.ok(colors.every((c) => c === bot.color));
    }
    // The bots came and went, and the pages said so.
    await waitFor(ada, "the bots' leaving shown", async (p) => {
      const { log } = await panel(p);
      return ["tcpbot-1 joined", "tcpbot-1 left", "wsbot-1 joined", "wsbot-1 left"].every((line) => log.includes(line));
    });

    const dir = path.join(ROOT, "target");
    mkdirSync(dir, { recursive: true });
    await ada.screenshot({ path: path.join(dir, "whiteboard.png") });

    // Bob closes his tab: Ada sees him leave.
    await bob.close();
    await waitFor(ada, "bob's leaving shown", async (p) => (await panel(p)).log.includes("bob left"));
    assert.deepEqual((await panel(ada)).players, ["ada"]);
    assert.deepEqual(ada.problems, []);
    assert.deepEqual(bob.problems, []);
  } finally {
    await browser.close();
    await server.stop();
  }
});
