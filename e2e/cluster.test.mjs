// Two demo processes on one broker (Redis, then NATS), each page on its own process: they
// behave as one server in real Chromium — the chat, the lobby's three regions, the counter
// every tab shares, the dashboard's count, notifications and blog comments.
import assert from "node:assert/strict";
import { test } from "node:test";
import { binary, htmxPage, launch, listening, needs, newPage, startServer, tempDir } from "./harness.mjs";

const BROKERS = [["redis", "redis://127.0.0.1:6379", 6379], ["nats", "nats://127.0.0.1:4222", 4222]];

/** Chromium and two demo processes on `url` (one data directory, one namespace); `{}` when skipped. */
async function cluster(t, name, url, port) {
  if (!needs(t, [[await listening(port), `no broker at ${url}`]])) return {};
  const browser = await launch(t);
  if (!browser) return {};
  t.after(() => browser.close());
  const data = tempDir(`livehtml-cluster-${name}-`);
  const namespace = `lhe2e-${name}-${process.pid}-${Date.now()}`;
  const args = ["--addr", "127.0.0.1:0", "--data-dir", data, "--pubsub", url, "--pubsub-namespace", namespace,
    "--presence-grace-ms", "300"];
  const a = await startServer(binary("livehtml-demo"), args);
  t.after(() => a.stop("SIGKILL"));
  const b = await startServer(binary("livehtml-demo"), args);
  t.after(() => b.stop("SIGKILL"));
  return { browser, a, b };
}

for (const [name, url, port] of BROKERS) {
  test(`on ${name}: chat, lobby, counter and dashboard span two processes`, async (t) => {
    const { browser, a, b } = await cluster(t, name, url, port);
    if (!browser) return;

    // The chat: typed on A, shown on B; the online count is the cluster's.
    const ann = await newPage(await browser.newContext());
    const bob = await newPage(await browser.newContext());
    await ann.goto(`${a.url}/chat`);
    await bob.goto(`${b.url}/chat`);
    await ann.locator("#online", { hasText: "2 online" }).waitFor();
    await bob.locator("#online", { hasText: "2 online" }).waitFor();
    await ann.fill("#name", "Ann");
    await ann.fill("#message", "hello from A");
    await ann.click("#send");
    await bob.locator("#messages li", { hasText: "Ann: hello from A" }).waitFor();
    await bob.fill("#name", "Bob");
    await bob.fill("#message", "hello from B");
    await bob.click("#send");
    await ann.locator("#messages li", { hasText: "Bob: hello from B" }).waitFor();

    // The lobby: players on two processes; one message updates three regions on both.
    const alice = await newPage(await browser.newContext());
    const carl = await newPage(await browser.newContext());
    await alice.goto(`${a.url}/lobby`);
    await carl.goto(`${b.url}/lobby`);
    for (const page of [alice, carl]) await page.locator('[lh-state="open"]').waitFor();
    await alice.fill("#join input[name=name]", "Alice");
    await alice.click("#join button");
    await carl.locator("#chat-log", { hasText: "Alice has joined the lobby." }).waitFor();
    await carl.fill("#join input[name=name]", "Carl");
    await carl.click("#join button");
    await alice.locator("#chat-log", { hasText: "Carl has joined the lobby." }).waitFor();
    await carl.locator("#ready").waitFor();
    await alice.click("#ready");
    await carl.locator("#chat-log p", { hasText: "Alice is ready." }).waitFor();
    assert.deepEqual(await carl.locator("#player-list .player").allTextContents(), ["Alice (Ready)", "Carl (Not Ready)"]);
    assert.equal((await carl.textContent("#game-status")).trim(), "2 players connected — waiting for all to be ready");
    await carl.click("#ready");
    for (const page of [alice, carl]) {
      await page.locator("#game-status", { hasText: "2 players connected — all ready, starting!" }).waitFor();
    }
    // A page rendered by B afterwards knows who is ready on A.
    const late = await newPage(await browser.newContext());
    await late.goto(`${b.url}/lobby`);
    await late.locator('[lh-state="open"]').waitFor();
    assert.deepEqual(await late.locator("#player-list .player").allTextContents(), ["Alice (Ready)", "Carl (Ready)"]);

    // The counter every tab shares, clicked on A, counted on B.
    const one = await newPage(browser);
    const two = await newPage(browser);
    await one.goto(`${a.url}/counter`);
    await two.goto(`${b.url}/counter`);
    for (const page of [one, two]) await page.locator('[lh-state="open"]').waitFor();
    const before = Number(await two.textContent("#shared"));
    await one.click("#shared-inc");
    await two.locator("#shared", { hasText: String(before + 1) }).waitFor();

    // The dashboard on B counts the pages of both processes (at least the eight above).
    const dash = await htmxPage(browser);
    await dash.goto(`${b.url}/dashboard`);
    try {
      await dash.waitForFunction(() => Number(document.querySelector("#active-users .metric")?.textContent) >= 8, null,
        { timeout: 15_000 });
    } catch (e) {
      throw new Error(`the dashboard counts ${await dash.textContent("#active-users")}: ${e}`);
    }

    // Notifications posted to A reach a feed on B, numbered once for the cluster.
    const feed = await htmxPage(browser);
    await feed.goto(`${b.url}/notifications`);
    await feed.waitForFunction(() => window.htmx && document.querySelector("[sse-connect]")?.["htmx-internal-data"]?.sseEventSource?.readyState === 1);
    for (const text of ["first on A", "second on A"]) {
      const res = await fetch(`${a.url}/notifications`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: `text=${encodeURIComponent(text)}`,
      });
      assert.equal(res.status, 204);
    }
    await feed.locator("#toast-container .toast").first().filter({ hasText: "second on A" }).waitFor();
    await feed.locator("#notif-count", { hasText: "2" }).waitFor();

    // A blog comment posted on A shows on a reader of the same article on B.
    const writer = await newPage(browser);
    const reader = await newPage(browser);
    await writer.goto(`${a.url}/article/1`);
    await reader.goto(`${b.url}/article/1`);
    for (const page of [writer, reader]) await page.locator('[lh-state="open"]').waitFor();
    await writer.fill("#author", "Walt");
    await writer.fill("#comment-body", "written on A");
    await writer.click("#post");
    await reader.locator("#comments li", { hasText: "Walt: written on A" }).waitFor();

    for (const page of [ann, bob, alice, carl, late, one, two, dash, feed, writer, reader]) {
      assert.deepEqual(page.errors, []);
    }
  });
}
