// The demo lobby: one server message updates three regions at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { binary, launch, newPage, startServer, tempDir } from "./harness.mjs";

test("one message updates the player list, the status line and the log", async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  t.after(() => browser.close());
  const server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", tempDir("livehtml-lobby-"), "--presence-grace-ms", "300"]);
  t.after(() => server.stop("SIGKILL"));

  // Alice's browser (its tabs share the lobby's cookie: one player).
  const aliceBrowser = await browser.newContext();
  t.after(() => aliceBrowser.close());
  const alice = await newPage(aliceBrowser);
  const bob = await newPage(browser);
  for (const page of [alice, bob]) {
    await page.goto(`${server.url}/lobby`);
    await page.locator('[lh-state="open"]').waitFor();
  }

  await alice.fill("#join input[name=name]", "Alice");
  await alice.click("#join button");
  await alice.locator("#ready").waitFor();
  // Bob joins; his join is seen on Alice's page, so both pages are now in the room.
  await bob.fill("#join input[name=name]", "Bob <i>");
  await bob.click("#join button");
  await alice.locator("#chat-log", { hasText: "Bob <i> has joined the lobby." }).waitFor();
  await bob.locator("#ready").waitFor();

  const framesBefore = bob.frames.length;
  await alice.click("#ready");
  await bob.locator("#chat-log p", { hasText: "Alice is ready." }).waitFor();

  assert.deepEqual(await bob.locator("#player-list .player").allTextContents(), ["Alice (Ready)", "Bob <i> (Not Ready)"]);
  assert.equal((await bob.textContent("#game-status")).trim(), "2 players connected — waiting for all to be ready");
  assert.equal(await bob.locator("#player-list i").count(), 0, "names are escaped");

  // All three regions came in one WebSocket message.
  const update = bob.frames.slice(framesBefore).find((f) => f.includes("Alice is ready."));
  for (const id of ["player-list", "game-status", "chat-log"]) {
    assert.ok(update.includes(`id="${id}" hx-swap-oob=`), `${id} in the same message`);
  }

  await bob.click("#ready");
  await alice.locator("#game-status", { hasText: "2 players connected — all ready, starting!" }).waitFor();

  // A second tab of Alice's browser is the same player: it can toggle her ready, and closing
  // it is no leave while her first tab is open.
  const aliceAgain = await newPage(aliceBrowser);
  await aliceAgain.goto(`${server.url}/lobby`);
  await aliceAgain.locator("#ready").waitFor();
  assert.deepEqual(await aliceAgain.locator("#player-list .player").allTextContents(), ["Alice (Ready)", "Bob <i> (Ready)"]);
  await aliceAgain.close();

  // Leaving (closing the page; the server gives a page 300 ms to come back) updates the others.
  await bob.close();
  await alice.locator("#chat-log", { hasText: "Bob <i> has left the lobby." }).waitFor();
  assert.deepEqual(await alice.locator("#player-list .player").allTextContents(), ["Alice (Ready)"]);
  assert.deepEqual(alice.errors, []);
});
