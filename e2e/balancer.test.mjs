// Three demo processes on one broker (Redis, then NATS) behind nginx doing plain round-robin
// (deploy/nginx-cluster.conf: no ip_hash, no sticky cookie), as a user deploys them. Pages on
// the chat over a WebSocket, SSE + POST and long-polling chat with each other: every request
// may land on any process, and every message is shown on every page exactly once, in one
// order. Then one process is killed with SIGKILL half-way through, and every page carries on
// through the other two with nothing lost or shown twice.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { test } from "node:test";
import { binary, launch, newPage, runNginx, startServer, tempDir } from "./harness.mjs";

const NGINX = process.env.NGINX || "/usr/sbin/nginx";
const BROKERS = [["redis", "redis://127.0.0.1:6379", 6379], ["nats", "nats://127.0.0.1:4222", 4222]];
const TRANSPORTS = ["ws", "sse", "poll"];
const ROUNDS = 6;

/** Whether something answers on 127.0.0.1:`port`. */
function listening(port) {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => { socket.destroy(); resolve(true); });
    socket.once("error", () => resolve(false));
  });
}

/** nginx with deploy/nginx-cluster.conf in front of `servers` ("host:port" each). */
async function startBalancer(t, servers) {
  const port = await runNginx(t, NGINX, "nginx-cluster.conf",
    () => ({ "@SERVERS@": servers.map((s) => `        server ${s};`).join("\n") }));
  return `http://127.0.0.1:${port}`;
}

/** Chromium, three demo processes on `url` (one data directory, one namespace) and nginx in
 * front of them; `{}` when skipped (a failure under LIVEHTML_REQUIRE_ALL=1). */
async function cluster(t, name, url, port) {
  for (const [missing, what] of [[!(await listening(port)), `no broker at ${url}`], [!existsSync(NGINX), `nginx not found at ${NGINX}`]]) {
    if (!missing) continue;
    if (process.env.LIVEHTML_REQUIRE_ALL === "1") throw new Error(what);
    t.skip(what);
    return {};
  }
  const browser = await launch(t);
  if (!browser) return {};
  t.after(() => browser.close());
  const data = tempDir(`livehtml-balancer-${name}-`);
  const namespace = `lhlb-${name}-${process.pid}-${Date.now()}`;
  const args = ["--addr", "127.0.0.1:0", "--data-dir", data, "--pubsub", url, "--pubsub-namespace", namespace,
    "--presence-grace-ms", "300", "--node-timeout-ms", "1500"];
  const servers = [];
  for (let i = 0; i < 3; i++) {
    const server = await startServer(binary("livehtml-demo"), args);
    t.after(() => server.stop("SIGKILL"));
    servers.push(server);
  }
  const front = await startBalancer(t, servers.map((s) => s.addr));
  return { browser, servers, front };
}

/** How many live connections `server` holds (its livehtml_connections gauges, every transport). */
async function connections(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return [...text.matchAll(/^livehtml_connections\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** The chat's messages on `page`, as shown: "name: text" per item. */
function shown(page) {
  return page.$$eval("#messages li", (items) => items.map((li) => li.textContent.replace(/^\s*\S+\s+/, "").trim()));
}

for (const [name, url, port] of BROKERS) {
  test(`on ${name}, three processes behind round-robin nginx: the chat over every transport, a process killed half-way`, async (t) => {
    const { browser, servers, front } = await cluster(t, name, url, port);
    if (!browser) return;
    const pages = [];
    for (const transport of TRANSPORTS) {
      const page = await newPage(await browser.newContext());
      await page.goto(`${front}/chat?transport=${transport}`);
      await page.locator(`[lh-connect][lh-state="open"][lh-transport="${transport}"]`).waitFor();
      await page.fill("#name", transport);
      pages.push(page);
    }
    const sent = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round === ROUNDS / 2) {
        // Half-way: the process holding the most pages dies as a crash would; they reconnect
        // through nginx to the others.
        const held = await Promise.all(servers.map(connections));
        const victim = held.indexOf(Math.max(...held));
        assert.ok(held[victim] > 0, `no process holds a page: ${held}`);
        await servers[victim].stop("SIGKILL");
      }
      for (const [i, page] of pages.entries()) {
        const text = `${TRANSPORTS[i]} says ${round}`;
        sent.push(text);
        await page.fill("#message", text);
        await page.click("#send");
      }
      for (const page of pages) {
        for (const text of sent.slice(-pages.length)) {
          try {
            await page.locator("#messages li", { hasText: text }).first().waitFor({ timeout: 20_000 });
          } catch (e) {
            throw new Error(`${await page.getAttribute("[lh-connect]", "lh-transport")} page never showed "${text}": ${await shown(page)}\n${e}`);
          }
        }
      }
    }
    // Every page: every message exactly once, and all in one order (the topic's).
    const orders = [];
    for (const page of pages) {
      const texts = (await shown(page)).filter((text) => / says \d$/.test(text));
      for (const text of sent) {
        assert.equal(texts.filter((x) => x.endsWith(text)).length, 1, `"${text}" shown once: ${texts}`);
      }
      orders.push(texts);
      assert.deepEqual(page.errors, []);
    }
    assert.deepEqual(orders[1], orders[0], "the SSE page shows the WebSocket page's order");
    assert.deepEqual(orders[2], orders[0], "the long-poll page shows the WebSocket page's order");
    for (const transport of TRANSPORTS) {
      const own = orders[0].filter((text) => text.includes(`${transport} says`));
      assert.deepEqual(own, [...own].sort(), `${transport}'s messages in the order sent`);
    }
  });
}
