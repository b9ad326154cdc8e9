// Long-polling in real Chromium: a page whose WebSocket and event stream are both blocked falls
// back to long-polling by itself, chats with a WebSocket page, and, cut off (crates/faultproxy)
// while ten messages are sent, comes back with all ten, in order, once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { demo, newPage, startProxy, watchBack } from "./harness.mjs";

async function send(page, text) {
  await page.fill("#message", text);
  await page.click("#send");
  await page.locator("#messages li", { hasText: text }).waitFor();
}

const messages = (page) => page.$$eval("#messages li", (items) => items.map((li) => li.textContent));

test("chat: a page with WebSocket and SSE blocked falls back to long-polling, chats, and recovers every missed message", async (t) => {
  const { browser, server } = await demo(t, "poll");
  if (!browser) return;
  const proxy = await startProxy(t, server.addr);
  const polling = await newPage(browser);
  // A network that lets neither a WebSocket nor an event stream through: both go to a port
  // where nothing listens (the faultproxy's, refusing, would cut the page's polls too).
  await polling.addInitScript(() => {
    const RealSocket = window.WebSocket;
    window.WebSocket = class extends RealSocket {
      constructor(url, protocols) {
        super("ws://127.0.0.1:9/", protocols);
      }
    };
    const RealSource = window.EventSource;
    window.EventSource = class extends RealSource {
      constructor() {
        super("http://127.0.0.1:9/");
      }
    };
  });
  const fallbacks = [];
  await polling.exposeFunction("fellBack", (transport) => fallbacks.push(transport));
  await polling.addInitScript(() => {
    document.addEventListener("lh:fallback", (e) => window.fellBack(e.detail.transport));
  });
  const socket = await newPage(browser);
  await polling.goto(`${proxy.url}/chat`);
  await socket.goto(`${server.url}/chat`);
  await polling.locator('[lh-connect][lh-state="open"][lh-transport="poll"]').waitFor({ timeout: 20_000 });
  assert.deepEqual(fallbacks, ["sse", "poll"]);
  await socket.locator('[lh-connect][lh-state="open"][lh-transport="ws"]').waitFor();

  await polling.fill("#name", "Polling");
  await send(polling, "over long-polling");
  await socket.locator("#messages li", { hasText: "Polling: over long-polling" }).waitFor();
  await socket.fill("#name", "Socket");
  await send(socket, "over a socket");
  await polling.locator("#messages li", { hasText: "Socket: over a socket" }).waitFor();

  await watchBack(polling);
  await proxy.refuse();
  assert.ok((await proxy.cut()) >= 1, "the waiting poll is cut");
  await polling.locator('[lh-state="reconnecting"]').waitFor();
  const sent = [];
  for (let i = 1; i <= 10; i++) {
    sent.push(`missed ${i}`);
    await send(socket, `missed ${i}`);
  }
  await proxy.accept();
  const back = await polling.evaluate(() => window.lhBack);
  assert.equal(typeof back, "object", `recovered, not resynced: ${JSON.stringify(back)}`);
  assert.ok(back.replayed >= 10, `replayed ${back.replayed}`);
  await polling.locator("#messages li", { hasText: "missed 10" }).waitFor();
  const shown = (await messages(polling)).map((m) => m.replace(/^\[[\d:]+\] \w+: /, ""));
  assert.deepEqual(shown.slice(shown.indexOf("over a socket")), ["over a socket", ...sent]);
  assert.deepEqual(await messages(polling), await messages(socket));
  assert.equal(await polling.getAttribute("[lh-connect]", "lh-transport"), "poll");
  assert.deepEqual(polling.errors, []);
});
