// The wire vocabulary livehtml.js shares with the server, checked against the same committed
// fixture the Rust test reads (crates/livehtml/fixtures/wire.json): close codes and what the
// client does after each, and every hx-swap-oob style the server sends.
import assert from "node:assert/strict";
import { test } from "node:test";
import fs from "node:fs";
import path from "node:path";
import { launch, newPage, root } from "./harness.mjs";

const crate = path.join(root, "crates", "livehtml");
const fixture = JSON.parse(fs.readFileSync(path.join(crate, "fixtures", "wire.json"), "utf8"));
// Served as one script: its two parts in order (crates/livehtml/src/axum/client.rs).
const script = ["dom.js", "input.js", "commands.js", "upload.js", "http.js", "livehtml.js"].map((f) => fs.readFileSync(path.join(crate, "client", f), "utf8")).join("");

async function client(t) {
  const browser = await launch(t);
  if (!browser) return null;
  t.after(() => browser.close());
  const page = await newPage(browser);
  await page.setContent("<!doctype html><html><body></body></html>");
  await page.addScriptTag({ content: script });
  return page;
}

test("livehtml.js follows the close-code table", async (t) => {
  const page = await client(t);
  if (!page) return;
  for (const [code, policy] of Object.entries(fixture.close)) {
    const got = await page.evaluate((c) => window.livehtml.closePolicy(c), Number(code));
    assert.equal(got, policy, `close code ${code}`);
  }
});

test("livehtml.js uses the server's names on the wire", async (t) => {
  const page = await client(t);
  if (!page) return;
  assert.deepEqual(await page.evaluate(() => window.livehtml.wire), fixture.names);
});

// What each style does to <p id="t" class="old">old</p>, given <p id="t" class="new">new</p>:
// the text of the parent, and the class of the element left with id "t" (null if none).
const EFFECT = {
  outerHTML: ["new", "new"],
  innerHTML: ["new", "old"],
  beforeend: ["oldnew", "old"],
  afterbegin: ["newold", "old"],
  beforebegin: ["newold", "old"],
  afterend: ["oldnew", "old"],
  delete: ["", null],
  innerMorph: ["new", "old"],
  outerMorph: ["new", "new"],
};

test("livehtml.js applies every swap style the server sends", async (t) => {
  const page = await client(t);
  if (!page) return;
  assert.deepEqual(Object.keys(EFFECT).sort(), [...fixture.swap].sort(), "this test knows every style");
  for (const style of fixture.swap) {
    const got = await page.evaluate((style) => {
      document.body.innerHTML = '<section id="root"><p id="t" class="old">old</p></section>';
      window.livehtml.swap(`<p id="t" class="new" hx-swap-oob="${style}">new</p>`);
      const root = /** @type {HTMLElement} */ (document.getElementById("root"));
      const t = document.getElementById("t");
      return [root.textContent, t ? t.className : null];
    }, style);
    assert.deepEqual(got, EFFECT[style], `hx-swap-oob="${style}"`);
  }
  assert.deepEqual(page.errors, []);
});

test("livehtml.js follows a redirect only to this origin (or http(s) elsewhere when allowed)", async (t) => {
  const page = await client(t);
  if (!page) return;
  const safe = (url) => page.evaluate((u) => window.livehtml.safeUrl(u), url);
  for (const url of ["javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)", "data:text/html,x", "https://evil.example/", "//evil.example/"]) {
    assert.equal(await safe(url), null, url);
  }
  await page.evaluate(() => { window.livehtml.config.externalRedirects = true; });
  assert.equal(await safe("https://other.example/x"), "https://other.example/x");
  assert.equal(await safe("javascript:alert(1)"), null, "never a script, allowed or not");
});

test("a stream's container merges what arrives, by id, and keeps at most its limit", async (t) => {
  const page = await client(t);
  if (!page) return;
  const { attr } = fixture.names;
  const got = await page.evaluate((attr) => {
    const list = () => Array.from(document.querySelectorAll("#s > li")).map((li) => li.id + "=" + li.textContent).join(" ");
    const seen = [];
    document.body.innerHTML = `<ul id="s" ${attr.STREAM}="3"><li id="a">a</li><li id="b">b</li></ul>`;
    // A view's update (a morph of the container): new items appended, the oldest trimmed.
    window.livehtml.swap(`<ul id="s" ${attr.STREAM}="3" hx-swap-oob="outerMorph"><li id="c">c</li><li id="d">d</li></ul>`);
    seen.push(list());
    // In place by id; inserted first (the last item trimmed); deleted; a session's append.
    window.livehtml.swap(`<ul id="s" ${attr.STREAM}="3" hx-swap-oob="outerMorph"><li id="c">C</li><li id="z" ${attr.INSERT_AT}="0">z</li></ul>`);
    seen.push(list());
    window.livehtml.swap(`<ul id="s" ${attr.STREAM}="3" hx-swap-oob="outerMorph"><template ${attr.STREAM_DELETE}="z"></template></ul>`);
    seen.push(list());
    window.livehtml.swap(`<div hx-swap-oob="beforeend:#s"><li id="e">e</li><li id="f">f</li></div>`);
    seen.push(list());
    // A reset, then the new list; and a whole view morphed around the container keeps merging.
    window.livehtml.swap(`<ul id="s" ${attr.STREAM}="3" hx-swap-oob="outerMorph"><template ${attr.STREAM_RESET}></template><li id="x">x</li></ul>`);
    seen.push(list());
    document.body.innerHTML = `<div id="v"><ul id="s" ${attr.STREAM}="">${"<li>old</li>".repeat(5)}</ul></div>`;
    window.livehtml.swap(`<div id="v" hx-swap-oob="innerMorph"><ul id="s" ${attr.STREAM}=""><li id="n">new</li></ul></div>`);
    seen.push(String(document.querySelectorAll("#s > li").length));
    return seen;
  }, attr);
  assert.deepEqual(got, ["b=b c=c d=d", "z=z b=b c=C", "b=b c=C", "c=C e=e f=f", "x=x", "6"]);
  assert.deepEqual(page.errors, []);
});

test("a list sent keyed is put in the server's order, keeping the nodes it did not resend", async (t) => {
  const page = await client(t);
  if (!page) return;
  const { attr } = fixture.names;
  const got = await page.evaluate((attr) => {
    document.body.innerHTML = `<ul id="l"><li id="a">a</li><li id="b"><input id="in"></li><li id="c">c</li></ul>`;
    const input = /** @type {HTMLInputElement} */ (document.getElementById("in"));
    input.value = "typed";
    const a = document.getElementById("a");
    window.livehtml.swap(`<ul id="l" hx-swap-oob="outerMorph" ${attr.ORDER}="c a b z"><li id="a">A</li><li id="z">z</li></ul>`);
    const ul = /** @type {Element} */ (document.getElementById("l"));
    return {
      order: Array.from(ul.children).map((li) => li.id + "=" + li.textContent).join(" "),
      kept: document.getElementById("a") === a && document.getElementById("in") === input,
      typed: input.value,
      attr: ul.hasAttribute(attr.ORDER),
      removed: (window.livehtml.swap(`<ul id="l" hx-swap-oob="outerMorph" ${attr.ORDER}="z a"></ul>`), Array.from(ul.children).map((li) => li.id).join(" ")),
    };
  }, attr);
  assert.deepEqual(got, { order: "c=c a=A b= z=z", kept: true, typed: "typed", attr: false, removed: "z a" });
  assert.deepEqual(page.errors, []);
});

test("client commands run on click with no round trip, and survive the server's morphs", async (t) => {
  const page = await client(t);
  if (!page) return;
  await page.evaluate(() => {
    document.body.innerHTML = `<button id="b" lh-js="toggle #panel; add-class open #menu; set-attr data-x 1 #menu">go</button>
      <div id="panel" hidden>panel</div><nav id="menu" class="bar">menu</nav>`;
  });
  await page.click("#b");
  const state = () => page.evaluate(() => [
    document.getElementById("panel")?.hidden,
    document.getElementById("menu")?.className,
    document.getElementById("menu")?.getAttribute("data-x"),
  ]);
  assert.deepEqual(await state(), [false, "bar open", "1"]);
  // The server morphs both (it renders them as it knows them): what the page set stays.
  await page.evaluate(() => window.livehtml.swap(
    `<div id="panel" hidden hx-swap-oob="outerMorph">new text</div><nav id="menu" class="bar wide" hx-swap-oob="outerMorph">menu</nav>`));
  assert.deepEqual(await state(), [false, "bar wide open", "1"]);
  assert.equal(await page.textContent("#panel"), "new text");
  await page.click("#b");
  // Toggled back; the class was added, not toggled: it stays.
  assert.deepEqual(await state(), [true, "bar wide open", "1"]);
  assert.deepEqual(page.errors, []);
});

test("an event in flight marks its element and form, disables the submit, and a refusal undoes the optimistic change", async (t) => {
  const page = await client(t);
  if (!page) return;
  const { comment } = fixture.names;
  const got = await page.evaluate((comment) => {
    document.body.innerHTML = `<form id="f" lh-optimistic="hide #item"><input name="x">
      <button id="save" lh-disable-with="Saving…">Save</button></form><p id="item">item</p>`;
    const lh = window.livehtml;
    const form = /** @type {HTMLFormElement} */ (document.getElementById("f"));
    const save = /** @type {HTMLButtonElement} */ (document.getElementById("save"));
    const item = /** @type {HTMLElement} */ (document.getElementById("item"));
    const seen = [];
    const snap = () => [form.hasAttribute("lh-loading"), save.disabled, save.textContent, item.hidden].join(",");
    const ok = lh.begin(form, form, document.body);
    seen.push(snap());
    // A morph while in flight keeps the loading state.
    lh.swap(`<form id="f" lh-optimistic="hide #item" hx-swap-oob="outerMorph"><input name="x"><button id="save" lh-disable-with="Saving…">Save</button></form>`);
    seen.push(snap());
    lh.swap(`<!--${comment.REPLY} ${ok}-->`);
    seen.push(snap());
    const no = lh.begin(form, form, document.body);
    lh.swap(`<!--${comment.REFUSED} ${no} not+allowed-->`);
    seen.push(snap());
    return seen;
  }, comment);
  // In flight (optimistically hidden); still after a morph; confirmed; refused (shown again).
  assert.deepEqual(got, ["true,true,Saving…,true", "true,true,Saving…,true", "false,false,Save,true", "false,false,Save,true"]);
  assert.deepEqual(page.errors, []);
});

test("an element without hx-swap-oob (a live view's region) is morphed into the one with its id", async (t) => {
  const page = await client(t);
  if (!page) return;
  const got = await page.evaluate(() => {
    document.body.innerHTML = '<section id="s" class="old"><input id="i" value="server"><p>old</p></section>';
    const input = /** @type {HTMLInputElement} */ (document.getElementById("i"));
    input.focus();
    input.value = "typed";
    window.livehtml.swap('<section id="s" class="new"><input id="i" value="server"><p>new</p></section>');
    const s = /** @type {HTMLElement} */ (document.getElementById("s"));
    return [s.className, s.textContent, document.getElementById("i") === input, input.value];
  });
  assert.deepEqual(got, ["new", "new", true, "typed"]);
  assert.deepEqual(page.errors, []);
});
