// The /board demo in two real Chromium pages: sign in by name, a card added with inline
// validation, a card moved in one page moves in the other (and what travels is the order, not
// the board), a details panel opened by the page survives server updates, signing out closes
// the user's other tabs, and a form's typed values come back after a reconnect.
import assert from "node:assert/strict";
import { test } from "node:test";
import zlib from "node:zlib";
import { demo, newPage, startProxy } from "./harness.mjs";

async function board(browser, url) {
  const page = await newPage(browser);
  await page.goto(url);
  await page.locator('#lh-view[lh-state="open"]').waitFor();
  return page;
}

async function signIn(page, name) {
  await page.fill("#signin-name", name);
  await Promise.all([page.waitForNavigation(), page.click("#signin button")]);
  await page.locator('#lh-view[lh-state="open"]').waitFor();
  await page.locator("#who strong", { hasText: name }).waitFor();
}

const order = (page, col) => page.$$eval(`#col-${col} > li`, (items) => items.map((li) => li.id));

test("board: cards added and moved in one page move in the other, as a new order", async (t) => {
  const { browser, server } = await demo(t, "board");
  if (!browser) return;
  const ann = await board(browser, `${server.url}/board`);
  const bob = await board(browser, `${server.url}/board`);
  await signIn(ann, "Ann");
  await ann.locator("#viewers", { hasText: "Ann" }).waitFor();
  await bob.locator("#viewers", { hasText: "Ann" }).waitFor();
  await ann.locator("#stats", { hasText: "people changed cards" }).waitFor();

  // Validation while typing: the error shows up, and what is typed stays as typed.
  await ann.click("#card-title");
  await ann.keyboard.type("x".repeat(81));
  await ann.locator("#title-error", { hasText: "At most 80 characters (81 now)" }).waitFor();
  assert.equal(await ann.inputValue("#card-title"), "x".repeat(81));
  await ann.fill("#card-title", "Review the board");
  await ann.locator("#title-error:empty").waitFor({ state: "attached" });
  await ann.selectOption("#card-column", "doing");
  await ann.click("#add-card");
  for (const page of [ann, bob]) await page.locator("#col-doing li", { hasText: "Review the board" }).waitFor();
  // Taken: the form is empty again.
  await ann.waitForFunction(() => /** @type {HTMLInputElement} */ (document.getElementById("card-title")).value === "");

  // A guest's move is refused with a message; nothing moves.
  const before = await order(bob, "todo");
  await bob.click('#card-2 button[title="Move up"]');
  await bob.locator("#lh-flash", { hasText: "Sign in to change the board" }).waitFor();
  assert.deepEqual(await order(bob, "todo"), before);

  // Ann moves card 2 up: Bob's page moves it, and what it received for the column is the new
  // order (the card that did not change is not resent, nor are the other columns).
  const frames = bob.frames.length;
  await ann.click('#card-2 button[title="Move up"]');
  await bob.waitForFunction(() => document.querySelector("#col-todo > li")?.id === "card-2");
  assert.deepEqual(await order(bob, "todo"), ["card-2", "card-1"]);
  const received = bob.frames.slice(frames).join("");
  assert.match(received, /lh-order="card-2 card-1"/);
  assert.ok(!received.includes('id="card-1"') && !received.includes("col-done"), received);
  // Across columns too.
  await ann.click('#card-2 button[title="Move right"]');
  await bob.locator("#col-doing #card-2").waitFor();
  assert.deepEqual(await order(bob, "todo"), ["card-1"]);
  await bob.locator("#card-2 .by", { hasText: "by Ann" }).waitFor();
  assert.deepEqual([...ann.errors, ...bob.errors], []);
});

test("board: an opened details panel survives updates; signing out closes the user's other tabs", async (t) => {
  const { browser, server } = await demo(t, "board");
  if (!browser) return;
  const context = await browser.newContext();
  t.after(() => context.close());
  const tab1 = await board(context, `${server.url}/board`);
  await signIn(tab1, "Cy");
  const tab2 = await board(context, `${server.url}/board`);
  await tab2.locator("#who strong", { hasText: "Cy" }).waitFor();

  await tab2.click('#card-1 button:has-text("Details")');
  assert.equal(await tab2.isVisible("#details-1"), true);
  // Card 1 changes on the server (moved down, then back): the panel stays open.
  await tab1.click('#card-1 button[title="Move down"]');
  await tab2.waitForFunction(() => document.querySelector("#col-todo > li")?.id === "card-2");
  assert.equal(await tab2.isVisible("#details-1"), true);

  // Signing out in tab 1: tab 2's view is closed and the page reloads, signed out.
  await Promise.all([tab1.waitForNavigation(), tab1.click("#signout")]);
  await tab2.locator("#signin-name").waitFor();
  await tab1.locator("#signin-name").waitFor();
});

test("board: after a reconnect that remounts the view, the card form's typed values come back to the server", async (t) => {
  const { browser, server } = await demo(t, "board", ["--view-grace-ms", "0"]);
  if (!browser) return;
  const proxy = await startProxy(t, server.addr);
  const page = await board(browser, `${proxy.url}/board`);
  await page.fill("#card-title", "y".repeat(90));
  await page.locator("#title-error", { hasText: "90 now" }).waitFor();
  await page.evaluate(() => {
    window.resynced = new Promise((resolve) => document.addEventListener("lh:resynced", resolve, { once: true }));
  });
  proxy.cut();
  await page.evaluate(() => window.resynced);
  // The new view knew nothing of the form; the page sent it again, and the error is back.
  assert.equal(await page.inputValue("#card-title"), "y".repeat(90));
  await page.locator("#title-error", { hasText: "90 now" }).waitFor();
  assert.deepEqual(page.errors, []);
});

/** A valid PNG of noise, `width` × `height` pixels, stored without compression (so its size
 * is about 3 × width × height bytes). */
function png(width, height) {
  const row = 1 + width * 3;
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) crypto.getRandomValues(raw.subarray(y * row + 1, (y + 1) * row));
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw, { level: 0 })), chunk("IEND", Buffer.alloc(0))]);
}

test("board: a 5 MB image uploads over the socket with progress and shows on the card; a too-big one is refused", async (t) => {
  const { browser, server } = await demo(t, "board");
  if (!browser) return;
  const ann = await board(browser, `${server.url}/board`);
  const bob = await board(browser, `${server.url}/board`);
  await signIn(ann, "Ann");
  await ann.click('#card-1 button:has-text("Details")');

  const image = png(1300, 1300);
  assert.ok(image.length > 5_000_000, `${image.length} bytes`);
  const frames = ann.frames.length;
  await ann.setInputFiles('#details-1 input[type="file"]', { name: "photo.png", mimeType: "image/png", buffer: image });
  // It shows in both pages, loaded.
  for (const page of [ann, bob]) {
    await page.locator("#card-1 img.thumb").waitFor();
    await page.waitForFunction(() => /** @type {HTMLImageElement} */ (document.querySelector("#card-1 img.thumb")).naturalWidth === 1300);
  }
  // Its progress was shown on the way (the server renders it from what arrived).
  const progress = ann.frames.slice(frames).filter((f) => f.includes("<progress"));
  assert.ok(progress.length >= 10, `${progress.length} progress updates`);
  assert.ok(progress.some((f) => /photo\.png <progress value="\d+" max="\d+">[1-9]\d?%/.test(f)), progress[0]);
  await ann.locator("#activity li", { hasText: "Ann attached an image" }).waitFor();

  // Too big: refused before any byte is sent, with a message in the page.
  const sent = ann.sentFrames.length;
  await ann.setInputFiles('#details-1 input[type="file"]', { name: "huge.png", mimeType: "image/png", buffer: Buffer.alloc(9_000_000) });
  await ann.locator("#uploads .error", { hasText: "huge.png: too big (9.0 MB; at most 8.0 MB)" }).waitFor();
  assert.equal(ann.sentFrames.slice(sent).filter((f) => !f.startsWith("{")).length, 0, "no file bytes sent");
  // A type it does not take.
  await ann.setInputFiles('#details-1 input[type="file"]', { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hi") });
  await ann.locator("#uploads .error", { hasText: "notes.txt: not a type this takes" }).waitFor();
  assert.deepEqual([...ann.errors, ...bob.errors], []);
});

test("board: over Server-Sent Events, an image uploads by POSTs and shows on the card", async (t) => {
  const { browser, server } = await demo(t, "board");
  if (!browser) return;
  const page = await board(browser, `${server.url}/board`);
  await signIn(page, "Di");
  await page.goto(`${server.url}/board?transport=sse`);
  await page.locator('#lh-view[lh-state="open"][lh-transport="sse"]').waitFor();
  await page.click('#card-1 button:has-text("Details")');
  await page.setInputFiles('#details-1 input[type="file"]', { name: "small.png", mimeType: "image/png", buffer: png(300, 300) });
  await page.waitForFunction(() => /** @type {HTMLImageElement | null} */ (document.querySelector("#card-1 img.thumb"))?.naturalWidth === 300);
  assert.deepEqual(page.errors, []);
});
