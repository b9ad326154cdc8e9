// The demo behind nginx (Debian's), with the configuration users are told to copy
// (deploy/nginx.conf): TLS at nginx, the demo trusting its X-Forwarded-Proto. The chat runs over
// a WebSocket, over SSE and over long-polling through it, and the plain-htmx dashboard's event
// stream is not held back by a buffer.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { binary, htmxPage, launch, newPage, runNginx, startServer, tempDir } from "./harness.mjs";

const NGINX = process.env.NGINX || "/usr/sbin/nginx";

/** Chromium (taking nginx's self-made certificate), or null when the test is skipped: nginx
 * or Chromium missing (a failure under LIVEHTML_REQUIRE_ALL=1). */
async function nginxAndBrowser(t) {
  if (!existsSync(NGINX)) {
    if (process.env.LIVEHTML_REQUIRE_ALL === "1") throw new Error(`nginx not found at ${NGINX}`);
    t.skip(`nginx not found at ${NGINX} (apt-get install nginx-light)`);
    return null;
  }
  const browser = await launch(t, ["--ignore-certificate-errors"]);
  if (browser) t.after(() => browser.close());
  return browser;
}

/** nginx with deploy/nginx.conf in front of `upstream`, on TLS with a certificate made now. */
async function startNginx(t, upstream) {
  const port = await runNginx(t, NGINX, "nginx.conf", (prefix) => {
    const cert = path.join(prefix, "cert.pem");
    const key = path.join(prefix, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
      "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    return { "@UPSTREAM@": upstream, "@CERT@": cert, "@KEY@": key };
  });
  return `https://127.0.0.1:${port}`;
}

test("behind nginx with TLS: the chat over a WebSocket, SSE and long-polling, and the dashboard's stream", async (t) => {
  const browser = await nginxAndBrowser(t);
  if (!browser) return;
  const server = await startServer(binary("livehtml-demo"),
    ["--addr", "127.0.0.1:0", "--data-dir", tempDir("livehtml-nginx-demo-"), "--trust-forwarded-proto"]);
  t.after(() => server.stop("SIGKILL"));
  const url = await startNginx(t, server.addr);

  const pages = [];
  for (const transport of ["ws", "sse", "poll"]) {
    const page = await newPage(browser);
    await page.goto(`${url}/chat?transport=${transport}`);
    await page.locator(`[lh-connect][lh-state="open"][lh-transport="${transport}"]`).waitFor();
    pages.push(page);
  }
  for (const [i, sender] of pages.entries()) {
    await sender.fill("#message", `through nginx ${i}`);
    await sender.click("#send");
    for (const page of pages) await page.locator("#messages li", { hasText: `through nginx ${i}` }).waitFor();
  }
  for (const page of pages) assert.deepEqual(page.errors, []);

  // The dashboard's cards arrive as they are sent: a buffering proxy would hold them back.
  const dash = await htmxPage(browser);
  await dash.goto(`${url}/dashboard`);
  await dash.locator("#messages .metric", { hasText: "3" }).waitFor();
  const uptime = await dash.textContent("#uptime .metric");
  await dash.waitForFunction((before) => document.querySelector("#uptime .metric")?.textContent !== before, uptime);
  assert.deepEqual(dash.errors, []);
});

test("behind nginx without --trust-forwarded-proto, an https page's WebSocket is refused as foreign", async (t) => {
  const browser = await nginxAndBrowser(t);
  if (!browser) return;
  const server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", tempDir("livehtml-nginx-demo-")]);
  t.after(() => server.stop("SIGKILL"));
  const url = await startNginx(t, server.addr);
  const page = await newPage(browser);
  await page.goto(`${url}/`);
  // The handshake's Origin is https://…, the demo sees http: refused (403), never opened.
  const outcome = await page.evaluate((wss) => new Promise((resolve) => {
    const ws = new WebSocket(wss);
    ws.onopen = () => resolve("open");
    ws.onerror = () => resolve("refused");
  }), `${url.replace("https:", "wss:")}/ws/chat`);
  assert.equal(outcome, "refused");
});
