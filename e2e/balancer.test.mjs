// Three demo processes on one broker (Redis, then NATS) behind nginx doing plain round-robin
// (deploy/nginx-cluster.conf: no ip_hash, no sticky cookie), as a user deploys them: every
// request may land on any process.
// - Pages on the chat over a WebSocket, SSE + POST and long-polling chat with each other, and
//   a counter view counts to 7; the counter's process is SIGKILLed half-way: every message is
//   shown on every page exactly once, in one order, and the counter resumes at 7 elsewhere.
// - The board: a card moved while the process holding the mover's page dies; the typed draft
//   comes back with the page.
// - A rolling restart (each process in turn stopped with SIGTERM and started again) while the
//   pages send: nothing lost or shown twice, no page left on a dead connection, the counter kept.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import {
  binary, freePort, launch, listening, newPage, needs, runNginx, startServer, tempDir, watchBack,
} from "./harness.mjs";

const NGINX = process.env.NGINX || "/usr/sbin/nginx";
const BROKERS = [["redis", "redis://127.0.0.1:6379", 6379], ["nats", "nats://127.0.0.1:4222", 4222]];
const TRANSPORTS = ["ws", "sse", "poll"];

/** Chromium, three demo processes on `url` (one data directory, one namespace, each on a port
 * of its own that a restart keeps) and nginx in front of them; `{}` when skipped (a failure
 * under LIVEHTML_REQUIRE_ALL=1). `restart(i)` stops process i with SIGTERM and starts it again. */
async function cluster(t, name, url, port) {
  const broker = await listening(port);
  if (!needs(t, [[broker, `no broker at ${url}`], [existsSync(NGINX), `nginx not found at ${NGINX}`]])) return {};
  const browser = await launch(t);
  if (!browser) return {};
  t.after(() => browser.close());
  const data = tempDir(`livehtml-balancer-${name}-`);
  const namespace = `lhlb-${name}-${process.pid}-${Date.now()}`;
  const args = (addr) => ["--addr", addr, "--data-dir", data, "--pubsub", url, "--pubsub-namespace", namespace,
    "--presence-grace-ms", "300", "--node-timeout-ms", "1500", "--drain-secs", "5"];
  const addrs = [];
  for (let i = 0; i < 3; i++) addrs.push(`127.0.0.1:${await freePort()}`);
  const servers = [];
  for (const addr of addrs) servers.push(await startServer(binary("livehtml-demo"), args(addr)));
  t.after(() => Promise.all(servers.map((s) => s.stop("SIGKILL"))));
  const port_ = await runNginx(t, NGINX, "nginx-cluster.conf",
    () => ({ "@SERVERS@": addrs.map((s) => `        server ${s};`).join("\n") }));
  const restart = async (i) => {
    await servers[i].stop("SIGTERM");
    servers[i] = await startServer(binary("livehtml-demo"), args(addrs[i]));
  };
  return { browser, servers, front: `http://127.0.0.1:${port_}`, restart };
}

/** How many live connections `server` holds (its livehtml_connections gauges, every transport). */
async function connections(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return [...text.matchAll(/^livehtml_connections\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** Opens a page with `open` and finds which of `servers` holds its connection (the one whose
 * count went up): `[page, index]`. */
async function placed(servers, open) {
  const before = await Promise.all(servers.map(connections));
  const page = await open();
  for (let tries = 0; tries < 100; tries++) {
    const now = await Promise.all(servers.map(connections));
    const up = now.findIndex((n, i) => n > before[i]);
    if (up >= 0) return [page, up];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no process took the page's connection");
}

/** The chat's messages on `page`, as shown: "name: text" per item. */
function shown(page) {
  return page.$$eval("#messages li", (items) => items.map((li) => li.textContent.replace(/^\s*\S+\s+/, "").trim()));
}

/** Chat pages, one per transport, through `front`. */
async function chatPages(browser, front) {
  const pages = [];
  for (const transport of TRANSPORTS) {
    const page = await newPage(await browser.newContext());
    await page.goto(`${front}/chat?transport=${transport}`);
    await page.locator(`[lh-connect][lh-state="open"][lh-transport="${transport}"]`).waitFor();
    await page.fill("#name", transport);
    pages.push(page);
  }
  return pages;
}

/** Each page sends one message of `round`; every page shows all of them. */
async function chatRound(pages, round, sent) {
  const texts = pages.map((_, i) => `${TRANSPORTS[i]} says ${round}`);
  for (const [i, page] of pages.entries()) {
    sent.push(texts[i]);
    await page.fill("#message", texts[i]);
    await page.click("#send");
  }
  for (const page of pages) {
    for (const text of texts) {
      try {
        await page.locator("#messages li", { hasText: text }).first().waitFor({ timeout: 20_000 });
      } catch (e) {
        const transport = await page.getAttribute("[lh-connect]", "lh-transport");
        throw new Error(`${transport} page never showed "${text}": ${await shown(page)}\n${e}`);
      }
    }
  }
}

/** Every page shows every message of `sent` exactly once, all in one order, each sender's in
 * the order sent. */
async function everyMessageOnce(pages, sent) {
  const orders = [];
  for (const page of pages) {
    const texts = (await shown(page)).filter((text) => / says \d+$/.test(text));
    for (const text of sent) {
      assert.equal(texts.filter((x) => x.endsWith(`: ${text}`)).length, 1, `"${text}" shown once: ${texts}`);
    }
    orders.push(texts);
    assert.deepEqual(page.errors, []);
  }
  assert.deepEqual(orders[1], orders[0], "the SSE page shows the WebSocket page's order");
  assert.deepEqual(orders[2], orders[0], "the long-poll page shows the WebSocket page's order");
  for (const transport of TRANSPORTS) {
    const own = orders[0].filter((text) => text.startsWith(`${transport}: `)).map((t) => Number(t.split(" ").pop()));
    assert.deepEqual(own, [...own].sort((a, b) => a - b), `${transport}'s messages in the order sent`);
  }
}

/** A counter page through `front`. */
async function counterPage(browser, front) {
  const page = await newPage(await browser.newContext());
  await page.goto(`${front}/counter`);
  await page.locator('[lh-connect][lh-state="open"]').waitFor();
  return page;
}

/** Clicks the counter's +1 until it shows `to`. */
async function countTo(page, to) {
  for (let n = Number(await page.textContent("#mine")) + 1; n <= to; n++) {
    await page.click("#inc");
    await page.locator("#mine", { hasText: String(n) }).waitFor();
  }
}

for (const [name, url, port] of BROKERS) {
  const behind = `on ${name}, three processes behind round-robin nginx`;
  test(`${behind}: the chat over every transport and a counter at 7, its process killed half-way`, async (t) => {
    const { browser, servers, front } = await cluster(t, name, url, port);
    if (!browser) return;
    const pages = await chatPages(browser, front);
    // The process to kill: the one holding the counter's page (and, most likely, a chat page).
    const [counter, victim] = await placed(servers, () => counterPage(browser, front));
    await countTo(counter, 7);
    await watchBack(counter);
    const sent = [];
    for (let round = 0; round < 6; round++) {
      if (round === 3) await servers[victim].stop("SIGKILL");
      await chatRound(pages, round, sent);
    }
    await everyMessageOnce(pages, sent);
    // The counter's page came back on another process with its count, and is told so.
    const back = await counter.evaluate(() => window.lhBack);
    assert.equal(typeof back, "object", `resumed, not mounted anew: ${JSON.stringify(back)}`);
    assert.equal(await counter.textContent("#mine"), "7");
    await countTo(counter, 8);
    assert.deepEqual(counter.errors, []);
  });

  test(`${behind}: the board, a card moved while a process dies`, async (t) => {
    const { browser, servers, front } = await cluster(t, name, url, port);
    if (!browser) return;
    const open = async () => {
      const page = await newPage(await browser.newContext());
      await page.goto(`${front}/board`);
      await page.locator('#lh-view[lh-state="open"]').waitFor();
      return page;
    };
    // Ann signs in in one tab (the sign-in reloads it), then opens the board in another: the
    // process that took that tab's connection is the one to kill.
    const context = await browser.newContext();
    const first = await newPage(context);
    await first.goto(`${front}/board`);
    await first.fill("#signin-name", "Ann");
    await Promise.all([first.waitForNavigation(), first.click("#signin button")]);
    await first.locator("#who strong", { hasText: "Ann" }).waitFor();
    const [ann, victim] = await placed(servers, async () => {
      const page = await newPage(context);
      await page.goto(`${front}/board`);
      await page.locator('#lh-view[lh-state="open"]').waitFor();
      await page.locator("#who strong", { hasText: "Ann" }).waitFor();
      return page;
    });
    const bob = await open();
    // Ann types a draft the server validates (and keeps with her view).
    await ann.click("#card-title");
    await ann.keyboard.type("x".repeat(81));
    await ann.locator("#title-error", { hasText: "At most 80 characters (81 now)" }).waitFor();
    await watchBack(ann);

    await servers[victim].stop("SIGKILL");
    // Moved at once: the click waits in the page until its connection is back, elsewhere.
    await ann.click('#card-2 button[title="Move up"]');
    for (const page of [ann, bob]) {
      const moved = () => document.querySelector("#col-todo > li")?.id === "card-2";
      await page.waitForFunction(moved, null, { timeout: 20_000 });
    }
    const back = await ann.evaluate(() => window.lhBack);
    assert.equal(typeof back, "object", `resumed, not mounted anew: ${JSON.stringify(back)}`);
    assert.equal(await ann.inputValue("#card-title"), "x".repeat(81));
    await ann.locator("#title-error", { hasText: "At most 80 characters (81 now)" }).waitFor();
    assert.deepEqual([...ann.errors, ...bob.errors], []);
  });

  test(`${behind}: a rolling restart while the pages send`, async (t) => {
    const { browser, servers, front, restart } = await cluster(t, name, url, port);
    if (!browser) return;
    const pages = await chatPages(browser, front);
    const counter = await counterPage(browser, front);
    await countTo(counter, 5);
    const sent = [];
    let round = 0;
    await chatRound(pages, round++, sent);
    for (let i = 0; i < servers.length; i++) {
      // Stopped (its pages closed with 1012, its views written for the others), and back.
      const stopping = restart(i);
      await chatRound(pages, round++, sent);
      await stopping;
      await chatRound(pages, round++, sent);
      await countTo(counter, 6 + i);
    }
    await everyMessageOnce(pages, sent);
    for (const page of [...pages, counter]) {
      assert.equal(await page.getAttribute("[lh-connect]", "lh-state"), "open", "no page left on a dead connection");
    }
    assert.equal(await counter.textContent("#mine"), String(5 + servers.length), "the counter kept every count");
    assert.deepEqual(counter.errors, []);
  });
}
