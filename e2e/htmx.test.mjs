// Plain htmx pages (real htmx 2 + htmx-ext-ws, real htmx 4 + hx-ws, from npm) against a
// livehtml endpoint: ws-send form in, out-of-band fragment out, in two pages.
import assert from "node:assert/strict";
import { test } from "node:test";
import path from "node:path";
import { binary, launch, newPage, root, startProxy, startServer } from "./harness.mjs";

async function room(t) {
  const browser = await launch(t);
  if (!browser) return {};
  t.after(() => browser.close());
  const server = await startServer(binary("example-htmx"),
    ["--addr", "127.0.0.1:0", "--vendor", path.join(root, "e2e", "node_modules")]);
  t.after(() => server.stop("SIGKILL"));
  return { browser, server };
}

async function open(browser, url) {
  const page = await newPage(browser);
  await page.goto(url);
  // The server pushes "joined" once the page is subscribed to the room.
  await page.locator("#status", { hasText: "joined" }).waitFor();
  return page;
}

async function sendAndSeeInBoth(sender, other, text, dialect) {
  await sender.fill("input[name=message]", text);
  await sender.click("button[type=submit]");
  for (const page of [sender, other]) {
    await page.locator("#log li", { hasText: text }).waitFor();
    assert.equal(await page.locator("#log li b").count(), 0, "escaped");
    assert.equal(await page.textContent("#last-dialect"), dialect);
    assert.deepEqual(page.errors, []);
  }
}

for (const [version, dialect] of [["htmx2", "Htmx2"], ["htmx4", "Htmx4"]]) {
  test(`${version}: ws-send form in, out-of-band fragment out, in two pages`, async (t) => {
    const { browser, server } = await room(t);
    if (!browser) return;
    const a = await open(browser, `${server.url}/${version}`);
    const b = await open(browser, `${server.url}/${version}`);
    assert.equal(await a.evaluate(() => window.htmx.version.split(".")[0]), version.slice(-1));
    await sendAndSeeInBoth(a, b, "<b>hello</b> from a", dialect);
    await sendAndSeeInBoth(b, a, "and back from b", dialect);
    // The fragment's wrapper was applied out of band, not inserted as an element.
    assert.equal(await a.locator("#log").count(), 1);
    assert.equal(await a.locator("[hx-swap-oob]").count(), 0);
    assert.ok(a.frames.some((f) => f.startsWith('<ul id="log" hx-swap-oob="beforeend">')));
  });
}

for (const version of ["htmx2", "htmx4"]) {
  test(`${version}: a page cut off as a slow consumer (1013) comes back by itself`, async (t) => {
    const { browser, server } = await room(t);
    if (!browser) return;
    const page = await newPage(browser);
    await page.goto(`${server.url}/${version}/flood`);
    await page.locator("#status", { hasText: "joined" }).waitFor();
    const before = await page.textContent("#status");
    // 16 MB pushed at once to a queue of 8, while the page is busy for 4 s and reads none of it:
    // the server closes it as a slow consumer.
    await page.evaluate(() => {
      document.querySelector("#flood-form button").click();
      setTimeout(() => {
        const end = Date.now() + 4000;
        while (Date.now() < end);
      }, 0);
    });
    // htmx retries 1013 (it would not retry a 4xxx code): the page joins again on its own.
    await page.waitForFunction((first) => document.querySelector("#status").textContent !== first, before, {
      timeout: 30_000,
    });
    assert.match(await page.textContent("#status"), /^joined \d+$/);
  });
}

test("an htmx 2 page and an htmx 4 page share one room and the same bytes", async (t) => {
  const { browser, server } = await room(t);
  if (!browser) return;
  const two = await open(browser, `${server.url}/htmx2`);
  const four = await open(browser, `${server.url}/htmx4`);
  await sendAndSeeInBoth(two, four, "from two", "Htmx2");
  await sendAndSeeInBoth(four, two, "from four", "Htmx4");
  const last = (page) => page.frames.filter((f) => f.includes("from four")).at(-1);
  assert.equal(last(two), last(four));
});

test("htmx 4 over SSE (hx-sse:connect): posts bound to the stream, fragments swapped out of band", async (t) => {
  const { browser, server } = await room(t);
  if (!browser) return;
  const sse = await open(browser, `${server.url}/htmx4-sse`);
  const ws = await open(browser, `${server.url}/htmx4`);
  // The form has its stream's id before it is used.
  await sse.waitForFunction(() => document.getElementById("room-form").getAttribute("hx-headers")?.includes("LH-Stream"));
  await sendAndSeeInBoth(sse, ws, "<b>from the stream</b>", "Htmx4");
  await sendAndSeeInBoth(ws, sse, "from the socket", "Htmx4");
  assert.equal(sse.frames.length, 0, "no socket on the SSE page");
  assert.equal(await sse.locator("[hx-swap-oob]").count(), 0);
});

for (const version of ["htmx2", "htmx4"]) {
  test(`${version}: a plain htmx page cut off while others talk shows every message when it is back`, async (t) => {
    const { browser, server } = await room(t);
    if (!browser) return;
    const proxy = await startProxy(t, server.addr);
    const away = await open(browser, `${proxy.url}/${version}`);
    const other = await open(browser, `${server.url}/htmx2`);
    await sendAndSeeInBoth(other, away, "before", "Htmx2");
    // The network drops and stays down while the other page sends five messages. htmx cannot
    // say what it saw: its socket's URL carries where its first render left it, and the server
    // sends the whole log again when anything came after that.
    await proxy.refuse();
    assert.ok((await proxy.cut()) >= 1);
    const sent = [];
    for (let i = 1; i <= 5; i++) {
      sent.push(`missed ${i}`);
      await other.fill("input[name=message]", `missed ${i}`);
      await other.click("button[type=submit]");
      await other.locator("#log li", { hasText: `missed ${i}` }).waitFor();
    }
    await proxy.accept();
    await away.locator("#log li", { hasText: "missed 5" }).waitFor({ timeout: 20_000 });
    assert.deepEqual(await away.locator("#log li").allTextContents(), ["before", ...sent], "each once, in order");
    // And it is live again.
    await sendAndSeeInBoth(other, away, "after", "Htmx2");
    assert.deepEqual(await away.locator("#log li").allTextContents(), await other.locator("#log li").allTextContents());
  });
}

test("the example's front page links every page it serves, and each answers", async (t) => {
  const { browser, server } = await room(t);
  if (!browser) return;
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  const links = await page.locator("ul a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  assert.deepEqual(links, ["/htmx2", "/htmx4", "/htmx4-sse", "/htmx2/live", "/htmx2/flood", "/htmx4/flood"]);
  for (const link of links) {
    const response = await fetch(`${server.url}${link}`);
    assert.equal(response.status, 200, link);
  }
});
