// Live views in real Chromium: SPA navigation over one socket, live comments, typed input that
// survives updates, the counter and its clock, and a plain htmx page driving a live view.
import assert from "node:assert/strict";
import { test } from "node:test";
import fs from "node:fs";
import path from "node:path";
import { binary, demo, launch, newPage, root, startProxy, startServer, tempDir, watchBack } from "./harness.mjs";

async function open(browser, url) {
  const page = await newPage(browser);
  await page.goto(url);
  await page.locator('#lh-view[lh-state="open"]').waitFor();
  return page;
}

test("blog: list → article → back without a page load; a reload renders the same page", async (t) => {
  const { browser, server } = await demo(t, "views");
  if (!browser) return;
  const page = await open(browser, `${server.url}/blog`);
  let loads = 0;
  page.on("load", () => loads++);
  await page.evaluate(() => { window.marker = "still here"; });

  await page.click('#articles a[href="/article/2"]');
  await page.locator("#title", { hasText: "Why a live view keeps its state on the server" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/article/2");
  assert.equal(await page.title(), "Why a live view keeps its state on the server");

  await page.click("#back");
  await page.locator("#articles").waitFor();
  assert.equal(new URL(page.url()).pathname, "/blog");
  assert.equal(await page.title(), "Blog");

  await page.goBack();
  await page.locator("#title", { hasText: "Why a live view" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/article/2");
  await page.goForward();
  await page.locator("#articles").waitFor();
  assert.equal(new URL(page.url()).pathname, "/blog");

  assert.equal(await page.evaluate(() => window.marker), "still here", "no page load while navigating");
  assert.equal(loads, 0);
  assert.deepEqual(page.errors, []);

  // A full reload of an article URL renders it over HTTP.
  await page.goto(`${server.url}/article/2`);
  assert.equal(await page.evaluate(() => window.marker), undefined);
  assert.equal(await page.textContent("#title"), "Why a live view keeps its state on the server");
});

test("blog: a comment posted in one page shows in a second page; typed text and focus stay", async (t) => {
  const { browser, server } = await demo(t, "views");
  if (!browser) return;
  const writer = await open(browser, `${server.url}/article/1`);
  const reader = await open(browser, `${server.url}/article/1`);

  // The reader is halfway through a comment of their own, caret in the middle.
  await reader.fill("#author", "Rita");
  await reader.fill("#comment-body", "half-typed thought");
  await reader.focus("#comment-body");
  await reader.evaluate(() => document.getElementById("comment-body").setSelectionRange(4, 4));

  await writer.fill("#author", "Walt");
  await writer.fill("#comment-body", "<i>first!</i>");
  await writer.click("#post");

  for (const page of [writer, reader]) {
    await page.locator("#comments li", { hasText: "Walt: <i>first!</i>" }).waitFor();
    assert.equal(await page.locator("#comments li i").count(), 0, "escaped");
    await page.locator("#comment-count", { hasText: "(1)" }).waitFor();
  }
  // The reader's form was re-sent (its button counts comments) and morphed, not replaced.
  await reader.locator("#comment-form .hint", { hasText: "comment #2" }).waitFor();
  // (Without hx-swap-oob: livehtml.js morphs it.)
  assert.ok(reader.frames.some((f) => f.includes('<form id="comment-form" lh-submit') && !f.includes("hx-swap-oob")),
    "the form region travelled");
  assert.equal(await writer.inputValue("#comment-body"), "", "the writer's box is cleared");
  assert.equal(await reader.inputValue("#comment-body"), "half-typed thought");
  assert.equal(await reader.inputValue("#author"), "Rita");
  assert.equal(await reader.evaluate(() => document.activeElement?.id), "comment-body");
  assert.deepEqual(await reader.evaluate(() => {
    const el = document.getElementById("comment-body");
    return [el.selectionStart, el.selectionEnd];
  }), [4, 4]);

  // An empty comment is refused with a message, and nothing breaks.
  await writer.click("#post");
  await writer.locator("#lh-flash", { hasText: "Write a comment first." }).waitFor();
  assert.deepEqual([...writer.errors, ...reader.errors], []);
});

test("blog: lh-keyup with lh-debounce searches once typing pauses; lh-change reorders", async (t) => {
  const { browser, server } = await demo(t, "views");
  if (!browser) return;
  const page = await open(browser, `${server.url}/blog`);
  // Keys as fast as the browser takes them: all six well inside the 200 ms debounce window,
  // even on a loaded machine (with 20 ms between keys, a stall split the search in CI).
  await page.type("#search", "reconn");
  await page.locator("#articles li").first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#articles li").length === 1);
  assert.equal(await page.textContent("#articles li a"), "Reconnecting without a silent gap");
  // Six key-ups within the debounce window made one search event.
  const searches = page.sentFrames.filter((f) => f.includes('"LH-Event":"search"'));
  assert.equal(searches.length, 1, searches.join("\n"));
  assert.ok(searches[0].includes('"q":"reconn"'));

  await page.fill("#search", "");
  await page.press("#search", "Backspace");
  await page.waitForFunction(() => document.querySelectorAll("#articles li").length === 3);
  await page.selectOption("#order", "newest");
  await page.waitForFunction(() => document.querySelector("#articles li a").textContent === "Reconnecting without a silent gap");
  assert.deepEqual(page.errors, []);
});

test("counter: per-page and shared counters, and the server clock ticks", async (t) => {
  const { browser, server } = await demo(t, "views");
  if (!browser) return;
  const a = await open(browser, `${server.url}/counter`);
  const b = await open(browser, `${server.url}/counter`);

  await a.click("#inc");
  await a.click("#inc");
  await a.click("#dec");
  await a.click("#inc");
  await a.locator("#mine", { hasText: "2" }).waitFor();
  assert.equal(await b.textContent("#mine"), "0", "the other page has its own count");

  // lh-value-by: the button sends by=5 with its event.
  await a.click("#add5");
  await a.locator("#mine", { hasText: "7" }).waitFor();
  // lh-throttle="1000": five quick clicks send the first at once and one more at the end.
  const sentBefore = a.sentFrames.length;
  for (let i = 0; i < 5; i++) await a.click("#slow");
  await a.locator("#mine", { hasText: "9" }).waitFor();
  const throttled = a.sentFrames.slice(sentBefore).filter((f) => f.includes('"LH-Event":"inc"'));
  assert.equal(throttled.length, 2, throttled.join("\n"));

  await b.click("#shared-inc");
  await a.locator("#shared", { hasText: "1" }).waitFor();
  await b.locator("#shared", { hasText: "1" }).waitFor();

  const before = await a.textContent("#clock");
  await a.waitForFunction((prev) => document.getElementById("clock").textContent !== prev, before, { timeout: 5000 });
  assert.match(await a.textContent("#clock"), /^\d\d:\d\d:\d\d$/);
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test("counter: a button shows its loading state while its slow event runs; a toggled panel survives server updates", async (t) => {
  const { browser, server } = await demo(t, "views");
  if (!browser) return;
  const page = await open(browser, `${server.url}/counter`);
  await page.click("#save");
  // In flight: marked, disabled, relabelled (the server takes a second).
  await page.locator('#save[lh-loading][disabled]', { hasText: "Saving…" }).waitFor();
  await page.locator("#saved", { hasText: "1 saved" }).waitFor();
  await page.locator("#save:not([lh-loading]):not([disabled])", { hasText: "Save" }).waitFor();

  // Opened by the page alone: no event sent.
  const sent = page.sentFrames.length;
  assert.equal(await page.isVisible("#details"), false);
  await page.click("#toggle-details");
  assert.equal(await page.isVisible("#details"), true);
  assert.equal(page.sentFrames.length, sent, "no round trip");
  // The server re-renders the panel every second (it still says `hidden`): it stays open.
  const before = await page.textContent("#details");
  await page.waitForFunction((prev) => document.getElementById("details").textContent !== prev, before, { timeout: 5000 });
  assert.equal(await page.isVisible("#details"), true);
  await page.click("#toggle-details");
  assert.equal(await page.isVisible("#details"), false);
  assert.deepEqual(page.errors, []);
});

test("a plain htmx 2 page drives a live view with ws-send", async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  t.after(() => browser.close());
  const server = await startServer(binary("example-htmx"),
    ["--addr", "127.0.0.1:0", "--vendor", path.join(root, "e2e", "node_modules")]);
  t.after(() => server.stop("SIGKILL"));
  const page = await newPage(browser);
  await page.goto(`${server.url}/htmx2/live`);
  assert.equal(await page.evaluate(() => window.htmx.version.split(".")[0]), "2");
  await page.click("#inc");
  await page.locator("#clicks", { hasText: "1" }).waitFor();
  await page.click("#inc");
  await page.locator("#clicks", { hasText: "2" }).waitFor();
  await page.click("#reset");
  await page.locator("#clicks", { hasText: "0" }).waitFor();
  assert.ok(page.frames.some((f) => f.startsWith('<output id="clicks" hx-swap-oob="outerHTML">')), page.frames.join("\n"));
  assert.deepEqual(page.errors, []);
});

test("live views survive a restart: same key → reconnect; new key → the page reloads itself", async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  t.after(() => browser.close());
  const dataDir = tempDir("livehtml-restart-");
  let server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", dataDir]);
  t.after(() => server.stop("SIGKILL"));
  const page = await open(browser, `${server.url}/counter`);
  let loads = 0;
  page.on("load", () => loads++);

  // Restart with the same data directory: the signing key persists, the page rejoins its view.
  assert.equal(await server.stop("SIGTERM"), 0);
  await page.locator('#lh-view[lh-state="reconnecting"]').waitFor();
  server = await startServer(binary("livehtml-demo"), ["--addr", server.addr, "--data-dir", dataDir]);
  await page.locator('#lh-view[lh-state="open"]').waitFor({ timeout: 20_000 });
  await page.click("#inc");
  await page.locator("#mine", { hasText: "1" }).waitFor();
  assert.equal(loads, 0, "no reload needed");

  // Restart with a new key: the old token is refused (4002), the page reloads and is live again.
  assert.equal(await server.stop("SIGTERM"), 0);
  fs.rmSync(path.join(dataDir, "secret.key"));
  server = await startServer(binary("livehtml-demo"), ["--addr", server.addr, "--data-dir", dataDir]);
  await page.waitForEvent("load", { timeout: 20_000 });
  await page.locator('#lh-view[lh-state="open"]').waitFor();
  await page.click("#inc");
  await page.locator("#mine", { hasText: "1" }).waitFor();
  assert.equal(loads, 1, "one reload, a fresh render over HTTP");
  assert.deepEqual(page.errors, []);
});

/** The counter page through `proxy`, counted up to 7. */
async function counterAt7(browser, proxy) {
  const page = await open(browser, `${proxy.url}/counter`);
  for (let n = 1; n <= 7; n++) {
    await page.click("#inc");
    await page.locator("#mine", { hasText: String(n) }).waitFor();
  }
  return page;
}

test("counter: a dropped connection keeps the page's count; the page is told it lost nothing", async (t) => {
  const { browser, server } = await demo(t, "resume");
  if (!browser) return;
  const proxy = await startProxy(t, server.addr);
  const page = await counterAt7(browser, proxy);
  await watchBack(page);
  // The network drops: every connection through the proxy is reset, the page's socket too.
  assert.ok((await proxy.cut()) >= 1);
  assert.deepEqual(await page.evaluate(() => window.lhBack), { replayed: 0 });
  assert.equal(await page.textContent("#mine"), "7");
  await page.click("#inc");
  await page.locator("#mine", { hasText: "8" }).waitFor();
  assert.deepEqual(page.errors, []);
});

test("counter: a page back after the view's grace period gets a fresh view, sent whole, and is told", async (t) => {
  const { browser, server } = await demo(t, "resync", ["--view-grace-ms", "300"]);
  if (!browser) return;
  const proxy = await startProxy(t, server.addr);
  const page = await counterAt7(browser, proxy);
  await watchBack(page);
  // Away for longer than the server keeps the view (nothing tells a page when that ends: the
  // test waits it out, with the network down).
  await proxy.refuse();
  assert.ok((await proxy.cut()) >= 1);
  await page.locator('[lh-state="reconnecting"]').waitFor();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await proxy.accept();
  assert.equal(await page.evaluate(() => window.lhBack), "resynced");
  await page.locator("#mine", { hasText: "0" }).waitFor();
  await page.click("#inc");
  await page.locator("#mine", { hasText: "1" }).waitFor();
  assert.deepEqual(page.errors, []);
});
