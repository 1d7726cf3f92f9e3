// A browser player for tests that mix languages in one room: opens the whiteboard in
// headless Chromium, waits until `--players` players are on the board, draws one stroke with
// the mouse, and waits until it has received a stroke from every other player. Prints
// `{"me": id, "saw": [ids]}` as its last line and exits with status 0; on a failure or after
// `--timeout` seconds, prints why to stderr and exits with status 1.
//
//     node test/room-player.js --url http://127.0.0.1:8080/ [--players 3] [--name web] [--timeout 60]

import { parseArgs } from "node:util";

import { browserMissing, draw, drawers, launchBrowser, me, openBoard, wave, waitFor } from "./browser-support.js";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    players: { type: "string", default: "3" },
    name: { type: "string", default: "web" },
    timeout: { type: "string", default: "60" },
    screenshot: { type: "string" },
  },
});

async function play() {
  const missing = browserMissing();
  if (missing) {
    throw new Error(missing);
  }
  if (!values.url) {
    throw new Error("--url is required");
  }
  const players = Number(values.players);
  const ms = Number(values.timeout) * 1000;
  const browser = await launchBrowser();
  try {
    const page = await openBoard(browser.context, values.url, values.name ?? "web");
    const self = await me(page);
    const size = () => page.evaluate(() => /** @type {any} */ (window).whiteboard.players.size);
    await waitFor(page, `${players} players on the board`, async () => (await size()) >= players, ms);
    await draw(page, wave(200, 760, 520, 40, 3, 40));
    const saw = await waitFor(page, `strokes from ${players - 1} other players`, async (p) => {
      const ids = await drawers(p);
      return ids.length >= players - 1 ? ids : null;
    }, ms);
    if (values.screenshot) {
      await page.screenshot({ path: values.screenshot });
    }
    if (page.problems.length > 0) {
      throw new Error(page.problems.join("; "));
    }
    return { me: self.id, saw: saw.sort((a, b) => a - b) };
  } finally {
    await browser.close();
  }
}

play().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (error) => {
    console.error(`room player failed: ${error instanceof Error ? error.stack : error}`);
    process.exit(1);
  },
);
