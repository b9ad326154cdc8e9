// livehtml.js over Server-Sent Events (lh-transport="sse"): the same endpoints and sessions as
// over a WebSocket, events out by POST with the stream's signed id.
import assert from "node:assert/strict";
import { test } from "node:test";
import { binary, demo, launch, newPage, startServer, tempDir } from "./harness.mjs";

/** Sends `text` as `name` from the chat page `page`. */
async function say(page, name, text) {
  await page.fill("#name", name);
  await page.fill("#message", text);
  await page.click("#send");
}

test("chat: a page on SSE and a page on a WebSocket see each other's messages", async (t) => {
  const { browser, server } = await demo(t, "sse", ["--presence-grace-ms", "300"]);
  if (!browser) return;
  const sse = await newPage(browser);
  const ws = await newPage(browser);
  await sse.goto(`${server.url}/chat?transport=sse`);
  await ws.goto(`${server.url}/chat`);
  await sse.locator('[lh-connect][lh-state="open"]').waitFor();
  await sse.locator("#online", { hasText: "2 online" }).waitFor();
  await ws.locator("#online", { hasText: "2 online" }).waitFor();
  assert.equal(ws.frames.length > 0, true, "the WebSocket page runs on a socket");

  await say(sse, "Sse", "<b>over SSE</b>");
  await say(ws, "Ws", "over a socket");
  for (const page of [sse, ws]) {
    await page.locator("#messages li", { hasText: "Sse: <b>over SSE</b>" }).waitFor();
    await page.locator("#messages li", { hasText: "Ws: over a socket" }).waitFor();
    assert.equal(await page.locator("#messages li b").count(), 0, "escaped");
    assert.deepEqual(page.errors, []);
  }
  assert.equal(await sse.inputValue("#message"), "", "the form is reset after the post");

  // The SSE page leaves: the other page hears the head count drop (after the presence grace
  // period, here 300 ms: a page that comes back within it never left).
  await sse.close();
  await ws.locator("#online", { hasText: "1 online" }).waitFor();
});

test("counter view over SSE: clicks update the page, the shared count reaches a WebSocket page", async (t) => {
  const { browser, server } = await demo(t, "sse");
  if (!browser) return;
  const sse = await newPage(browser);
  const ws = await newPage(browser);
  await sse.goto(`${server.url}/counter?transport=sse`);
  await ws.goto(`${server.url}/counter`);
  await sse.locator('#lh-view[lh-state="open"]').waitFor();
  await ws.locator('#lh-view[lh-state="open"]').waitFor();

  await sse.click("#inc");
  await sse.click("#inc");
  await sse.locator("#mine", { hasText: "2" }).waitFor();
  await sse.click("#shared-inc");
  await ws.locator("#shared", { hasText: "1" }).waitFor();
  await sse.locator("#shared", { hasText: "1" }).waitFor();
  assert.equal(await ws.textContent("#mine"), "0", "per-page state");
  // No socket was opened by the SSE page.
  assert.equal(sse.frames.length, 0);
  assert.deepEqual(sse.errors, []);
});

test("a server restart: the SSE page is told to reconnect (1012) and comes back by itself", async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  t.after(() => browser.close());
  const dataDir = tempDir("livehtml-sse-restart-");
  let server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", dataDir]);
  t.after(() => server.stop("SIGKILL"));
  const page = await newPage(browser);
  await page.goto(`${server.url}/chat?transport=sse`);
  await page.locator('[lh-connect][lh-state="open"]').waitFor();
  await page.evaluate(() => {
    window.lhClosed = new Promise((resolve) => {
      document.querySelector("[lh-connect]").addEventListener("lh:close", (e) => resolve(e.detail), { once: true });
    });
  });
  assert.equal(await server.stop("SIGTERM"), 0);
  assert.deepEqual(await page.evaluate(() => window.lhClosed), { code: 1012, reason: "server shutting down", reconnect: true });
  server = await startServer(binary("livehtml-demo"), ["--addr", server.addr, "--data-dir", dataDir]);
  await page.locator('[lh-connect][lh-state="open"]').waitFor({ timeout: 20_000 });
  await page.fill("#message", "back");
  await page.click("#send");
  await page.locator("#messages li", { hasText: "back" }).waitFor();
});

test("blog over SSE: lh-nav switches views without a page load, comments post over the stream", async (t) => {
  const { browser, server } = await demo(t, "sse-nav");
  if (!browser) return;
  const page = await newPage(browser);
  await page.goto(`${server.url}/blog?transport=sse`);
  await page.locator('#lh-view[lh-state="open"]').waitFor();
  let loads = 0;
  page.on("load", () => loads++);
  await page.click('#articles a[href="/article/2"]');
  await page.locator("#title", { hasText: "Why a live view keeps its state on the server" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/article/2");
  await page.fill("textarea[name=body]", "posted over SSE");
  await page.click("#comment-form button[type=submit]");
  await page.locator("#comments", { hasText: "posted over SSE" }).waitFor();
  await page.goBack();
  await page.locator("#articles").waitFor();
  assert.equal(loads, 0, "no page load while navigating");
  assert.equal(page.frames.length, 0, "no socket");
  assert.deepEqual(page.errors, []);
});

test("a page whose WebSocket is blocked falls back to SSE by itself, keeps to it, and chats with a socket page", async (t) => {
  const { browser, server } = await demo(t, "fallback");
  if (!browser) return;
  const blocked = await newPage(browser);
  // A proxy that refuses WebSockets: every socket the page opens goes to a closed port.
  await blocked.addInitScript(() => {
    const Real = window.WebSocket;
    window.WebSocket = class extends Real {
      constructor(url, protocols) {
        super("ws://127.0.0.1:9/", protocols);
      }
    };
  });
  const ws = await newPage(browser);
  await blocked.goto(`${server.url}/chat`);
  await ws.goto(`${server.url}/chat`);
  await blocked.locator('[lh-connect][lh-state="open"][lh-transport="sse"]').waitFor();
  await ws.locator('[lh-connect][lh-state="open"][lh-transport="ws"]').waitFor();
  await ws.locator("#online", { hasText: "2 online" }).waitFor();

  await say(blocked, "Blocked", "over SSE, found by itself");
  await say(ws, "Ws", "over a socket");
  for (const page of [blocked, ws]) {
    await page.locator("#messages li", { hasText: "Blocked: over SSE, found by itself" }).waitFor();
    await page.locator("#messages li", { hasText: "Ws: over a socket" }).waitFor();
  }
  // The tab remembers: the next page it loads starts on SSE, without trying a socket first.
  const tried = [];
  blocked.on("websocket", (socket) => tried.push(socket.url()));
  await blocked.goto(`${server.url}/chat`);
  await blocked.locator('[lh-connect][lh-state="open"][lh-transport="sse"]').waitFor();
  assert.deepEqual(tried, []);
  assert.deepEqual(ws.errors, []);
});
