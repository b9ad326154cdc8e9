// The demo's plain-htmx pages over Server-Sent Events, in real Chromium with real htmx 2 and
// htmx-ext-sse (from npm, served where the pages load them from: unpkg, pinned with SRI).
import assert from "node:assert/strict";
import { test } from "node:test";
import { demo, htmxPage, newPage, startProxy } from "./harness.mjs";


test("dashboard: plain htmx 2 sse-swap cards update live, and count chat messages", async (t) => {
  const { browser, server } = await demo(t, "dash");
  if (!browser) return;
  const page = await htmxPage(browser);
  await page.goto(`${server.url}/dashboard`);
  // Each card swaps its own named event; the first values come as the stream opens.
  await page.locator("#active-users .metric", { hasText: "1" }).waitFor();
  await page.locator("#messages .metric", { hasText: "0" }).waitFor();
  await page.locator("#memory .metric", { hasText: "MB" }).waitFor();
  const uptime = await page.textContent("#uptime .metric");
  // Once a second: the uptime moves on.
  await page.waitForFunction((before) => document.querySelector("#uptime .metric")?.textContent !== before, uptime);

  // A chat page opens a socket (one more connection) and posts a message: both cards change.
  const chat = await newPage(browser);
  await chat.goto(`${server.url}/chat`);
  await chat.locator('[lh-connect][lh-state="open"]').waitFor();
  await page.locator("#active-users .metric", { hasText: "2" }).waitFor();
  await chat.fill("#message", "hello dashboard");
  await chat.click("#send");
  await page.locator("#messages .metric", { hasText: "1" }).waitFor();
  assert.deepEqual(page.errors, []);
});

test("notifications: a plain hx-post and a chat @mention reach every feed; the feed keeps 50 toasts", async (t) => {
  const { browser, server } = await demo(t, "dash");
  if (!browser) return;
  const a = await htmxPage(browser);
  const b = await htmxPage(browser);
  for (const page of [a, b]) {
    await page.goto(`${server.url}/notifications`);
    await page.waitForFunction(() => window.htmx && document.querySelector("[sse-connect]")?.["htmx-internal-data"]?.sseEventSource?.readyState === 1);
  }
  await a.fill("#notify input[name=text]", "<b>deploy</b> finished");
  await a.click("#notify button");
  for (const page of [a, b]) {
    await page.locator("#toast-container .toast", { hasText: "<b>deploy</b> finished" }).waitFor();
    assert.equal(await page.locator("#toast-container .toast b").count(), 0, "escaped");
    await page.locator("#notif-count", { hasText: "1" }).waitFor();
  }
  assert.equal(await a.inputValue("#notify input[name=text]"), "", "the form is reset");

  const chat = await newPage(browser);
  await chat.goto(`${server.url}/chat`);
  await chat.fill("#name", "Alice");
  await chat.fill("#message", "ping @bob");
  await chat.click("#send");
  await b.locator("#toast-container .toast").first().filter({ hasText: "Alice mentioned @bob in the chat: ping @bob" }).waitFor();
  await b.locator("#notif-count", { hasText: "2" }).waitFor();

  // Sixty more: the newest first, at most 50 kept.
  for (let i = 0; i < 60; i++) {
    const res = await fetch(`${server.url}/notifications`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `text=n${i}`,
    });
    assert.equal(res.status, 204);
  }
  await b.locator("#notif-count", { hasText: "62" }).waitFor();
  await b.locator("#toast-container .toast").first().filter({ hasText: "n59" }).waitFor();
  assert.equal(await b.locator("#toast-container .toast").count(), 50);
  assert.deepEqual(b.errors, []);
});

test("dashboard: cut off while chat messages arrive, it reconnects by itself and is not left stale", async (t) => {
  const { browser, server } = await demo(t, "dashboard-cut");
  if (!browser) return;
  const proxy = await startProxy(t, server.addr);
  const page = await htmxPage(browser);
  await page.addInitScript(() => {
    window.sseOpened = 0;
    document.addEventListener("htmx:sseOpen", () => window.sseOpened++);
  });
  await page.goto(`${proxy.url}/dashboard`);
  await page.locator("#messages .metric", { hasText: /^0$/ }).waitFor();
  await proxy.refuse();
  assert.ok((await proxy.cut()) >= 1);
  const chat = await newPage(browser);
  await chat.goto(`${server.url}/chat`);
  for (let i = 1; i <= 3; i++) {
    await chat.fill("#message", `while the dashboard is away ${i}`);
    await chat.click("#send");
    await chat.locator("#messages li", { hasText: `away ${i}` }).waitFor();
  }
  await proxy.accept();
  // EventSource reconnects by itself (with its Last-Event-ID; the cards are a topic without
  // history, so the page is sent every card again at once).
  await page.waitForFunction(() => window.sseOpened >= 2, null, { timeout: 20_000 });
  await page.locator("#messages .metric", { hasText: /^3$/ }).waitFor();
  assert.deepEqual(page.errors, []);
});
