// Datastar 1.0's wire, checked against Datastar's own SDK (@starfederation/datastar-sdk 1.0.0):
// a livehtml session (examples/htmx's room) driven as a Datastar page would (`@get` the stream,
// `@post` the signals), its fragments compared with what the SDK writes for the same patch.
// npm has no Datastar 1.0 browser client (only 1.0.0-beta.11, whose event names predate 1.0),
// so this checks the wire, not a browser.
import assert from "node:assert/strict";
import { test } from "node:test";
import path from "node:path";
import { ServerSentEventGenerator } from "@starfederation/datastar-sdk/abstractServerSentEventGenerator";
import { binary, root, startServer } from "./harness.mjs";

/** The SDK's lines for a patch (its abstract generator returns them instead of writing). */
class Lines extends ServerSentEventGenerator {}

/** Reads SSE events from a fetch body; yields {event, data: [lines]}. */
async function* events(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const event = block.find((l) => l.startsWith("event: "))?.slice(7);
      const data = block.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
      if (event) yield { event, data };
    }
  }
}

test("a Datastar page's @get and @post drive a session; patches match the SDK's", async (t) => {
  const server = await startServer(binary("example-htmx"),
    ["--addr", "127.0.0.1:0", "--vendor", path.join(root, "e2e", "node_modules")]);
  t.after(() => server.stop("SIGKILL"));
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${server.url}/ws/room`, {
    headers: { Accept: "text/event-stream", "Datastar-Request": "true" },
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const stream = events(res.body);

  // The stream's id, as a signal the page keeps and posts back.
  const first = (await stream.next()).value;
  assert.equal(first.event, "datastar-patch-signals");
  const signals = JSON.parse(first.data[0].replace(/^signals /, ""));
  assert.ok(signals.lhStream, "lhStream signal");
  // Where the subscription starts: an event with only an id (Datastar's client keeps it for
  // its reconnect's Last-Event-ID), which no Datastar page acts on.
  const at = (await stream.next()).value;
  assert.deepEqual(at, { event: "lh-at", data: [""] });
  // The session joined: it says so with an inner patch of #status.
  const joined = (await stream.next()).value;
  assert.deepEqual(joined, {
    event: "datastar-patch-elements",
    data: sdk("joined", { selector: "#status", mode: "inner" }),
  });

  const post = await fetch(`${server.url}/ws/room`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Datastar-Request": "true" },
    body: JSON.stringify({ ...signals, message: "<b>hi</b> from datastar" }),
  });
  assert.equal(post.status, 204);
  const appended = (await stream.next()).value;
  assert.deepEqual(appended, {
    event: "datastar-patch-elements",
    data: sdk("<li>&lt;b&gt;hi&lt;/b&gt; from datastar</li>", { selector: "#log", mode: "append" }),
  });
  const dialect = (await stream.next()).value;
  assert.deepEqual(dialect, { event: "datastar-patch-elements", data: sdk("Datastar", { selector: "#last-dialect", mode: "inner" }) });
});

/** The data lines Datastar's SDK writes for `patchElements(elements, options)`. */
function sdk(elements, options) {
  const lines = new Lines().patchElements(elements, options);
  assert.equal(lines[0], "event: datastar-patch-elements\n");
  return lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6, -1));
}

/** Opens a Datastar stream on the example's room; resolves with its events and its signals.
 * `query` is what Datastar 1.0.4 puts after the URL (the signals of a `@get`). */
async function openStream(t, url, query = "") {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${url}/ws/room${query}`, {
    headers: { Accept: "text/event-stream", "Datastar-Request": "true" },
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  const stream = events(res.body);
  const first = (await stream.next()).value;
  const signals = JSON.parse(first.data[0].replace(/^signals /, ""));
  // Up to "joined": the stream is in the room.
  for (;;) {
    const { value } = await stream.next();
    if (value.event === "datastar-patch-elements" && value.data.includes("elements joined")) break;
  }
  return { stream, signals, abort: () => ac.abort() };
}

test("Datastar 1.0.4: @delete's ?datastar= signals, @query's HTTP QUERY, a second @get replaces the stream", async (t) => {
  const server = await startServer(binary("example-htmx"),
    ["--addr", "127.0.0.1:0", "--vendor", path.join(root, "e2e", "node_modules")]);
  t.after(() => server.stop("SIGKILL"));
  const page = await openStream(t, server.url);
  const other = await openStream(t, server.url);
  const datastar = { "Datastar-Request": "true" };

  // @post a message, then @delete (the signals in the query, as Datastar 1.0.4 sends them):
  // the session gets the event "delete", and every page's log is emptied.
  const post = await fetch(`${server.url}/ws/room`, {
    method: "POST",
    headers: { ...datastar, "Content-Type": "application/json" },
    body: JSON.stringify({ ...page.signals, message: "to be deleted" }),
  });
  assert.equal(post.status, 204);
  const del = await fetch(`${server.url}/ws/room?datastar=${encodeURIComponent(JSON.stringify(page.signals))}`, {
    method: "DELETE",
    headers: datastar,
  });
  assert.equal(del.status, 204, await del.text());
  for (const s of [page, other]) {
    let value;
    const emptied = (v) => v.data.includes("selector #log") && v.data.includes("mode inner");
    do value = (await s.stream.next()).value; while (!emptied(value));
    // Emptied: an empty `elements` line (the SDK refuses to write an empty patch; Datastar's
    // client reads the elements as "", which empties the element).
    assert.deepEqual(value, { event: "datastar-patch-elements", data: ["selector #log", "mode inner", "elements "] });
  }

  // @query: HTTP QUERY with the signals as a JSON body, answered on this page's stream only.
  const query = await fetch(`${server.url}/ws/room`, {
    method: "QUERY",
    headers: { ...datastar, "Content-Type": "application/json" },
    body: JSON.stringify(other.signals),
  });
  assert.equal(query.status, 204, await query.text());
  const counted = (await other.stream.next()).value;
  const count = sdk("0 messages", { selector: "#count", mode: "inner" });
  assert.deepEqual(counted, { event: "datastar-patch-elements", data: count });

  // The page calls @get again (Datastar aborts the request in flight with the same method and
  // URL; the server may not have seen that yet): its old stream, named by the lhStream signal
  // the new request carries, is closed at once, and the new one is in the room.
  const again = await openStream(t, server.url, `?datastar=${encodeURIComponent(JSON.stringify(page.signals))}`);
  let ended;
  do ended = await page.stream.next(); while (!ended.done && ended.value.event !== "lh-close");
  if (!ended.done) assert.match(ended.value.data[0], /"code":1001/);
  assert.notEqual(again.signals.lhStream, page.signals.lhStream);
  // A stream id that does not verify replaces nothing, and a method no action sends is refused.
  await openStream(t, server.url, `?datastar=${encodeURIComponent(JSON.stringify({ lhStream: "s1.forged" }))}`);
  const put = await fetch(`${server.url}/ws/room`, { method: "OPTIONS" });
  assert.equal(put.status, 405);
});
