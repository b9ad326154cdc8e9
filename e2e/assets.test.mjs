// The client as an asset, and pages that never sit silent, in real Chromium: what a first and
// a second visit to /chat download; the demo with every request outside 127.0.0.1 blocked, with
// and without --assets; its strict Content-Security-Policy (every browser test fails on a
// violation of it: harness.mjs's newPage).
import assert from "node:assert/strict";
import { test } from "node:test";
import path from "node:path";
import { demo, newPage, root } from "./harness.mjs";

/** The pages that run on livehtml.js, served by the crate itself. */
const LIVEHTML_PAGES = ["/chat", "/echo", "/lobby", "/blog", "/counter", "/board"];

/** A page whose every request to anywhere but 127.0.0.1 fails (as with no internet); `blocked`
 * lists what was asked for. */
async function offlinePage(browser) {
  const page = await newPage(browser);
  page.blocked = [];
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    page.blocked.push(url.href);
    return route.abort("internetdisconnected");
  });
  return page;
}

test("a first visit to /chat downloads under 10 KB of script, compressed; the next visit none", async (t) => {
  const { browser, server } = await demo(t, "asset-bytes");
  if (!browser) return;
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await newPage(context);
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  const scripts = new Map();
  let documentEncoding;
  cdp.on("Network.responseReceived", (e) => {
    const encoding = e.response.headers["content-encoding"];
    if (e.type === "Script") scripts.set(e.requestId, { url: e.response.url, bytes: 0, encoding });
    if (e.type === "Document") documentEncoding = e.response.headers["content-encoding"];
  });
  cdp.on("Network.loadingFinished", (e) => {
    const script = scripts.get(e.requestId);
    if (script) script.bytes = e.encodedDataLength;
  });
  const visit = async () => {
    scripts.clear();
    await page.goto(`${server.url}/chat`);
    await page.locator('[lh-connect][lh-state="open"]').waitFor();
    return [...scripts.values()];
  };

  const first = await visit();
  const firstBytes = first.reduce((sum, s) => sum + s.bytes, 0);
  const each = first.map((s) => `${new URL(s.url).pathname} ${s.bytes} B (${s.encoding})`);
  t.diagnostic(`first visit: ${each.join(", ")}`);
  const client = first.find((s) => s.url.includes("/_livehtml/livehtml."));
  assert.equal(client?.encoding, "br", "livehtml.js came brotli-compressed");
  assert.ok(firstBytes > 0 && firstBytes <= 10_000, `${firstBytes} bytes of script, headers included`);
  assert.equal(documentEncoding, "br", "the page itself is compressed");

  // Event streams are left as they are: compressed, an event would wait in the compressor.
  const stream = await fetch(`${server.url}/ws/chat`, {
    headers: { Accept: "text/event-stream", "Accept-Encoding": "br, gzip" },
  });
  assert.equal(stream.headers.get("content-type"), "text/event-stream");
  assert.equal(stream.headers.get("content-encoding"), null);
  await stream.body.cancel();

  const second = await visit();
  const secondBytes = second.reduce((sum, s) => sum + s.bytes, 0);
  assert.equal(secondBytes, 0, `second visit: ${JSON.stringify(second)}`);
  assert.deepEqual(page.errors, []);
});

test("offline: livehtml.js pages all go live; the CDN pages say htmx did not load; forms still post", async (t) => {
  const { browser, server } = await demo(t, "offline");
  if (!browser) return;
  const page = await offlinePage(browser);
  for (const url of LIVEHTML_PAGES) {
    const res = await page.goto(`${server.url}${url}`);
    assert.match(res.headers()["content-security-policy"], /script-src 'self'/, url);
    await page.locator('[lh-state="open"]').first().waitFor();
  }
  // The chat under that policy: Enter sends (the demo's script, no inline one).
  await page.goto(`${server.url}/chat`);
  await page.locator('[lh-connect][lh-state="open"]').waitFor();
  await page.fill("#message", "sent with Enter");
  await page.press("#message", "Enter");
  await page.locator("#messages li", { hasText: "sent with Enter" }).waitFor();

  for (const url of ["/dashboard", "/notifications"]) {
    await page.goto(`${server.url}${url}`);
    const notice = page.locator("#cdn-notice");
    await notice.waitFor({ state: "visible" });
    assert.match(await notice.textContent(), /did not load.*unpkg\.com.*--assets/s, url);
  }
  assert.ok(page.blocked.some((u) => u.startsWith("https://unpkg.com/")), "htmx was asked for from unpkg");
  // Without htmx the notification form is a plain form: it posts, and the page shows it.
  await page.fill("#notify input[name=text]", "sent without htmx");
  await Promise.all([page.waitForNavigation(), page.click("#notify button")]);
  await page.locator("#toast-container .toast", { hasText: "sent without htmx" }).waitFor();
  assert.equal(await page.textContent("#notif-count"), "1");
  // The aborted CDN scripts are the only errors the page met.
  assert.deepEqual(page.errors, []);

  // The chat without livehtml.js (blocked here): its form is a plain form that posts, and a
  // page on the socket sees the message too.
  const live = await newPage(browser);
  await live.goto(`${server.url}/chat`);
  await live.locator('[lh-connect][lh-state="open"]').waitFor();
  const plain = await newPage(browser);
  await plain.route("**/_livehtml/**", (route) => route.abort());
  await plain.goto(`${server.url}/chat`);
  await plain.fill("#message", "posted without livehtml.js");
  await Promise.all([plain.waitForNavigation(), plain.click("#send")]);
  await plain.locator("#messages li", { hasText: "posted without livehtml.js" }).waitFor();
  await live.locator("#messages li", { hasText: "posted without livehtml.js" }).waitFor();
  assert.deepEqual(live.errors, []);
});

test("offline with --assets: the plain-htmx pages load htmx from the demo and go live too", async (t) => {
  const { browser, server } = await demo(t, "offline-assets", ["--assets", path.join(root, "e2e", "node_modules")]);
  if (!browser) return;
  const page = await offlinePage(browser);
  const res = await page.goto(`${server.url}/dashboard`);
  assert.equal(res.headers()["content-security-policy"].split(";")[0], "script-src 'self'");
  const uptime = page.locator("#uptime .metric");
  await uptime.waitFor();
  const before = await uptime.textContent();
  await page.waitForFunction((b) => document.querySelector("#uptime .metric")?.textContent !== b, before);
  assert.equal(await page.locator("#cdn-notice").isVisible(), false);

  await page.goto(`${server.url}/notifications`);
  await page.waitForFunction(() =>
    window.htmx && document.querySelector("[sse-connect]")?.["htmx-internal-data"]?.sseEventSource?.readyState === 1);
  await page.fill("#notify input[name=text]", "sent with htmx");
  await page.click("#notify button");
  await page.locator("#toast-container .toast", { hasText: "sent with htmx" }).waitFor();
  // htmx posted it (no navigation), and the demo's script emptied the form.
  await page.waitForFunction(() => document.querySelector("#notify input[name=text]").value === "");
  for (const url of LIVEHTML_PAGES) {
    await page.goto(`${server.url}${url}`);
    await page.locator('[lh-state="open"]').first().waitFor();
  }
  assert.deepEqual(page.blocked, []);
  assert.deepEqual(page.errors, []);
});
