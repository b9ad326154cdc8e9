// The demo chat in two pages of real Chromium, with livehtml.js.
import assert from "node:assert/strict";
import { test } from "node:test";
import { binary, launch, newPage, startServer, tempDir } from "./harness.mjs";

const EVIL = `<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold?</b>`;

test("a message sent in one page appears in both, escaped; a restart keeps history and pages reconnect", async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  t.after(() => browser.close());
  const dataDir = tempDir("livehtml-chat-");
  let server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", dataDir]);
  t.after(() => server.stop("SIGKILL"));

  const alice = await newPage(browser);
  const bob = await newPage(browser);
  await alice.goto(`${server.url}/chat`);
  await bob.goto(`${server.url}/chat`);
  // The server broadcasts the head count when a page joins the room: both are in it.
  await alice.locator("#online", { hasText: "2 online" }).waitFor();
  await bob.locator("#online", { hasText: "2 online" }).waitFor();

  await alice.fill("#name", "Alice");
  await alice.fill("#message", EVIL);
  await alice.click("#send");

  for (const page of [alice, bob]) {
    const item = page.locator("#messages li").last();
    await item.waitFor();
    const text = await item.textContent();
    assert.match(text, /^\[\d\d:\d\d:\d\d\] Alice: /);
    assert.ok(text.endsWith(EVIL), `shown as typed: ${text}`);
    assert.equal(await page.locator("#messages li b, #messages li img, #messages li script").count(), 0);
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    assert.deepEqual(page.errors, []);
  }
  // The sender's message box is cleared, the name is kept.
  assert.equal(await alice.inputValue("#message"), "");
  assert.equal(await alice.inputValue("#name"), "Alice");

  // SIGTERM: the pages are told to reconnect (1012) and the server exits by itself.
  await alice.evaluate(() => {
    window.lhClosed = new Promise((resolve) => {
      document.querySelector("[lh-connect]").addEventListener("lh:close", (e) => resolve(e.detail), { once: true });
    });
  });
  const exitCode = await server.stop("SIGTERM");
  assert.equal(exitCode, 0);
  assert.deepEqual(await alice.evaluate(() => window.lhClosed), { code: 1012, reason: "server shutting down", reconnect: true });
  await alice.locator('[lh-state="reconnecting"]').waitFor();

  // Same address again: livehtml.js reconnects by itself, and the history is still there.
  server = await startServer(binary("livehtml-demo"), ["--addr", server.addr, "--data-dir", dataDir]);
  const html = await (await fetch(`${server.url}/chat`)).text();
  assert.ok(html.includes("Alice"), "history rendered over plain HTTP after the restart");
  assert.ok(html.includes("&lt;script&gt;window.pwned = 1&lt;/script&gt;"), "escaped in the first render too");

  await alice.locator('[lh-state="open"]').waitFor({ timeout: 20_000 });
  await bob.locator('[lh-state="open"]').waitFor({ timeout: 20_000 });
  await alice.locator("#online", { hasText: "2 online" }).waitFor();
  await bob.fill("#message", "back again");
  await bob.press("#message", "Enter");
  await alice.locator("#messages li", { hasText: "Anonymous: back again" }).waitFor();
  await bob.locator("#messages li", { hasText: "Anonymous: back again" }).waitFor();
});

test("the chat keeps at most its limit of messages in the page, however many arrive", async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  t.after(() => browser.close());
  const server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", tempDir("livehtml-chat-")]);
  t.after(() => server.stop("SIGKILL"));
  const reader = await newPage(browser);
  await reader.goto(`${server.url}/chat`);
  await reader.locator('[lh-state="open"]').waitFor();
  const limit = Number(await reader.getAttribute("#messages", "lh-stream"));
  assert.ok(limit > 0 && limit < 300, `a limit below what is sent: ${limit}`);
  await reader.evaluate(() => {
    /** @type {any} */ (window).got = 0;
    document.querySelector("[lh-connect]").addEventListener("lh:message", (e) => {
      if (/** @type {CustomEvent} */ (e).detail.data.includes("bot</strong>: m")) /** @type {any} */ (window).got++;
    });
  });

  // 300 messages from three more sockets of the same origin (each within its own rate limit).
  await reader.evaluate(async () => {
    const url = location.origin.replace("http", "ws") + "/ws/chat";
    await Promise.all([0, 1, 2].map((s) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onerror = reject;
      ws.onopen = () => {
        for (let i = 0; i < 100; i++) ws.send(JSON.stringify({ name: "bot", message: `m${s * 100 + i}`, HEADERS: {} }));
        resolve(undefined);
      };
    })));
  });
  // Every message reached the reader...
  await reader.waitForFunction(() => /** @type {any} */ (window).got === 300, null, { timeout: 30_000 });
  // ...and the page holds the newest `limit` of them, oldest gone first.
  assert.equal(await reader.locator("#messages li").count(), limit);
  assert.deepEqual(reader.errors, []);
});
