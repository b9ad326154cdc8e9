// livehtml.js: the browser client of livehtml. No build step, no dependencies: served as one
// script, dom.js (applying the server's HTML to the page: swaps and morphing), input.js (what a
// page sends: values, lh-debounce / lh-throttle, the delegated listeners), commands.js (client
// commands and loading states), upload.js (files over the socket), http.js (SSE + POST and
// long-polling) and then this file (connections, the WebSocket, fallback, sending, navigation).
//
// Markup it understands:
//   <div lh-connect="/ws/chat"> ... </div>   open a WebSocket to the server; fragments that
//                                            arrive are swapped in by id (hx-swap-oob rules)
//   lh-transport="sse"                        ...or run it (on it or an ancestor) over SSE,
//                                            events out by POST (one stream per tab: browsers
//                                            allow six HTTP/1.1 connections per origin)
//   lh-transport="poll"                       ...or over long-polling (GETs that wait), events
//                                            out by POST
//   <form lh-send> ... </form>                send the form's values on submit
//   <button lh-send="toggle">                 send a click, named "toggle" (LH-Event)
//   lh-value-NAME="v"                         add NAME=v to what the element sends
//   lh-reset="message"                        once the server took the event, clear these fields
//   lh-click="e" / lh-submit="e"              send event e on click / on submit (form values)
//   lh-change="e" / lh-keyup="e"              send event e on change / key up (the field's value)
//   lh-debounce="300" / lh-throttle="300"     ...at most once per quiet period / per interval, ms
//   <a href="/x" lh-nav>                      switch to the live view at /x over the socket
//                                             (push-state; back and forward work)
//   lh-since="3f9a12c4-17"                    (on lh-connect) where the first render left the
//                                             page's topics: the connection starts from there
//   lh-stream (dom.js); lh-js, lh-disable-with, lh-optimistic, [lh-loading] (commands.js)
//
// Topic positions: every topic message carries its position (`<!--lh:epoch-offset-->` in
// front of it on a WebSocket, the event's id over SSE); the page keeps the newest per topic
// and reconnects with them (`lh-since`), so the server replays what it missed, or resends
// what it shows in full.
//
// Messages go out in htmx 2's `ws-send` shape ({...values, HEADERS}): one parser for both.
//
// Events (bubbling, on the lh-connect element): lh:open, lh:close {code, reason, reconnect},
// lh:reconnecting {attempt, delay}, lh:message {data}, lh:error {error}; after a live view's
// reconnect, lh:recovered {replayed} (a live view was kept, or its topics' missed messages
// were replayed, this many) or lh:resynced (it was sent whole);
// lh:fallback {transport} when a WebSocket could not open and SSE + POST took over, or SSE
// could not either and long-polling did. The element's `lh-transport` attribute says which
// transport is in use ("ws", "sse" or "poll"); `lh-state` is "connecting", "open",
// "reconnecting" or "closed", for CSS.
// @ts-check

// The types http.js shares (at the top level: a typedef inside the function is its own).
/** What a connection sends through: a WebSocket, or SSE or long-polling with POSTs (`send` then
 * resolves to whether the server took it).
 * @typedef {{ readyState: number, send(data: string | Uint8Array): unknown, close(code?: number): void }} Channel */
/** @typedef {{ socket: Channel | null, url: string, element: Element, attempt: number,
 *              queue: string[], timer: number | undefined, closed: boolean,
 *              transport: "ws" | "sse" | "poll",
 *              opened: boolean, since: Map<string, string> }} Connection */

(function () {
  "use strict";

  // ======================================================================
  // Public API
  // ======================================================================

  // Names on the wire, as the server declares them (protocol::names; both are checked against
  // crates/livehtml/fixtures/wire.json). attr and comment: declared in dom.js, which uses them.
  const WIRE = {
    header: { STREAM: "LH-Stream", EVENT: "LH-Event", CLIENT: "LH-Client", REF: "LH-Ref" },
    event: { STREAM: "lh-stream", CLOSE: "lh-close", AT: "lh-at" },
    control: {
      KEY: "lh", NAV: "nav", REDIRECT: "redirect", NAV_EVENT: "lh:nav", UPLOAD_EVENT: "lh:upload",
      UPLOAD_CANCEL_EVENT: "lh:upload-cancel", RESUMED: "resumed", RESYNCED: "resynced", RECOVERED: "recovered",
    },
    query: {
      STREAM: "lh-stream", CLIENT: "client", RESUME: "resume", SINCE: "lh-since", POLL: "lh-poll", ACK: "lh-ack",
    },
    attr: /** @type {any} */ (window).livehtml.ATTR,
    comment: /** @type {any} */ (window).livehtml.COMMENT,
  };

  /** The page's side, served before this file in the same script: dom.js (applying server
   * HTML), input.js (what a page sends, and when; its listeners call `send` and `navigate`) and
   * commands.js (client commands, and loading states from `begin` to the server's reply).
   * @type {{ swap(html: string): void, morphChildren(target: Element, source: Element): void,
   *   values(element: Element, event?: Event | null, extra?: Record<string, string>):
   *     Record<string, string | string[]>,
   *   resetFields(form: HTMLFormElement, names: string): void,
   *   begin(el: Element, form: HTMLFormElement | null, owner: Element): string, abandon(owner: Element): void,
   *   leaving(): boolean,
   *   http: { stream(conn: Connection, on: object): Channel, poll(conn: Connection, on: object): Channel } }} */
  const page = /** @type {any} */ (window).livehtml;

  const livehtml = {
    config: {
      /** First reconnect delay ceiling, ms; doubles each attempt (full jitter). */
      reconnectBase: 500,
      /** Largest reconnect delay ceiling, ms. */
      reconnectMax: 30000,
      /** Messages kept while the socket is not open; older ones are dropped beyond this. */
      maxQueue: 64,
      /** Whether a server's redirect may lead to an http(s) page of another origin. */
      externalRedirects: false,
    },
    /** Replaceable, to test or to adapt the client. @param {string} url */
    createWebSocket: (url) => new WebSocket(url),
    /** Replaceable, like createWebSocket, for lh-transport="sse". @param {string} url */
    createEventSource: (url) => new EventSource(url),
    /** Replaceable, for long-polling and posts. @param {string} url @param {RequestInit} [init] */
    fetch: (url, init) => window.fetch(url, init),
    /** Opens (or returns) the connection of an lh-connect element. */
    connect,
    /** Sends values from `element` (a form, a button, anything) as one event. */
    send,
    /** Applies a server message: every top-level element is swapped by its hx-swap-oob. */
    swap: page.swap,
    /** Morphs `target`'s children into `source`'s, keeping focus and typed input. */
    morphChildren: page.morphChildren,
    /** Where a redirect may lead (null: nowhere). */
    safeUrl,
    /** Switches the live view of `root` to `url` over its connection (`push`: a history entry). */
    navigate,
    /** What the client does after a close with a code: "stay", "reconnect" or "reload". */
    closePolicy,
    /** The names on the wire (headers, SSE events, control messages), as the server's. */
    wire: WIRE,
  };
  // One object for all three parts (dom.js and input.js made it).
  Object.assign(page, livehtml);

  // What to do after a close, by code (the server's protocol::close table; both are checked
  // against crates/livehtml/fixtures/wire.json). Codes not listed reconnect: a live page must
  // not go silently dead.
  /** @type {Record<number, "stay" | "reload">} */
  const CLOSE_POLICY = {
    1000: "stay", // normal close
    1002: "stay", // we broke the WebSocket protocol
    1003: "stay", // binary sent to an HTML session
    1007: "stay", // text that is not UTF-8
    1008: "stay", // not a valid event
    1009: "stay", // over the size limit
    4002: "reload", // the live view's token was not accepted: only a fresh render helps
  };

  /** What a client does after a close with `code`. @param {number} code @returns {"stay" | "reconnect" | "reload"} */
  function closePolicy(code) {
    return CLOSE_POLICY[code] || "reconnect";
  }

  // ======================================================================
  // Connections
  // ======================================================================

  /** @type {WeakMap<Element, Connection>} */
  const connections = new WeakMap();
  /** Where a tab remembers the transport that worked (sessionStorage). */
  const TRANSPORT_KEY = "livehtml:transport";
  /** How long a WebSocket may take to open before the connection falls back to SSE, ms. */
  const OPEN_TIMEOUT = 5000;

  /** @param {Element} element @returns {Connection} */
  function connect(element) {
    let conn = connections.get(element);
    if (conn) return conn;
    const path = element.getAttribute("lh-connect") || "";
    const url = new URL(path, location.href);
    // On the element or an ancestor: a layout can choose the transport for every view.
    // Chosen on the element or an ancestor, or found by this tab: a WebSocket that could not
    // open fell back to SSE, and the tab keeps to it.
    const chosen = element.closest("[lh-transport]")?.getAttribute("lh-transport")
      || sessionStorage.getItem(TRANSPORT_KEY);
    /** @type {"ws" | "sse" | "poll"} */
    const transport = chosen === "sse" || chosen === "poll" ? chosen : "ws";
    if (transport === "ws") url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // Tells the server this client morphs (plain htmx pages get plain swaps).
    url.searchParams.set(WIRE.query.CLIENT, "lh");
    conn = {
      socket: null, url: url.href, element, attempt: 0, queue: [], timer: undefined, closed: false, transport,
      opened: false, since: new Map(),
    };
    remember(conn, element.getAttribute("lh-since") || "");
    connections.set(element, conn);
    open(conn);
    return conn;
  }

  /** Most topic positions a page keeps (the server reads as many). */
  const MAX_POSITIONS = 4;

  /** Keeps the positions in `text` ("epoch-offset", joined with "."), the newest per topic
   * (a topic's history is its epoch).
   * @param {Connection} conn @param {string} text */
  function remember(conn, text) {
    for (const position of text.split(".")) {
      const dash = position.indexOf("-");
      if (dash !== 8) continue;
      const epoch = position.slice(0, dash);
      conn.since.delete(epoch);
      conn.since.set(epoch, position);
      if (conn.since.size > MAX_POSITIONS) conn.since.delete(conn.since.keys().next().value ?? "");
    }
  }

  /** The URL a connection opens: on a reconnect (or from a first render's positions) it says
   * where the page was in its topics.
   * @param {Connection} conn */
  function connectUrl(conn) {
    if (!conn.opened && conn.since.size === 0) return conn.url;
    const url = new URL(conn.url);
    url.searchParams.set(WIRE.query.SINCE, Array.from(conn.since.values()).join("."));
    return url.href;
  }

  /** @param {Connection} conn */
  function open(conn) {
    setState(conn, conn.attempt === 0 ? "connecting" : "reconnecting");
    if (conn.transport !== "ws") {
      try {
        conn.socket = conn.transport === "sse" ? page.http.stream(conn, HOOKS) : page.http.poll(conn, HOOKS);
      } catch (error) {
        fire(conn.element, "lh:error", { error });
        scheduleReconnect(conn);
      }
      return;
    }
    let socket;
    try {
      socket = livehtml.createWebSocket(connectUrl(conn));
    } catch (error) {
      fire(conn.element, "lh:error", { error });
      return scheduleReconnect(conn);
    }
    conn.socket = socket;
    // A socket that never opens (blocked by a proxy or a firewall, or hanging) is given up for
    // SSE + POST, unless this connection has had a socket open before (then the server is
    // simply away, and the socket reconnects as usual).
    const timeout = window.setTimeout(() => {
      if (socket.readyState === WebSocket.CONNECTING) socket.close();
    }, OPEN_TIMEOUT);
    socket.addEventListener("open", () => {
      window.clearTimeout(timeout);
      opened(conn, socket);
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") received(conn, event.data);
    });
    socket.addEventListener("close", (event) => {
      window.clearTimeout(timeout);
      if (!conn.opened && conn.socket === socket && !conn.closed) return fallBack(conn);
      closed(conn, socket, event.code, event.reason);
    });
  }

  /** The transport could not open: the same connection over the next one (a WebSocket →
   * SSE + POST → long-polling), remembered for the tab.
   * @param {Connection} conn */
  function fallBack(conn) {
    conn.socket = null;
    const next = conn.transport === "ws" ? "sse" : "poll";
    conn.transport = next;
    const url = new URL(conn.url);
    if (url.protocol === "wss:" || url.protocol === "ws:") url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    conn.url = url.href;
    sessionStorage.setItem(TRANSPORT_KEY, next);
    fire(conn.element, "lh:fallback", { transport: next });
    open(conn);
  }

  /** Whether a transport that has not opened yet should give way to the next one: never once
   * the connection has been open (then the server is simply away), nor after long-polling.
   * @param {Connection} conn @param {Channel} channel */
  function mayFallBack(conn, channel) {
    return !conn.opened && conn.socket === channel && !conn.closed && conn.transport !== "poll";
  }

  /** What the HTTP transports (http.js) call back here. */
  const HOOKS = {
    connectUrl, opened, closed, received, remember, mayFallBack, fallBack, fire, openTimeout: OPEN_TIMEOUT,
  };

  /** @param {Connection} conn @param {Channel} socket */
  function opened(conn, socket) {
    conn.attempt = 0;
    conn.opened = true;
    // The transport in use, for CSS and tests.
    conn.element.setAttribute("lh-transport", conn.transport);
    setState(conn, "open");
    fire(conn.element, "lh:open", {});
    while (conn.queue.length && socket.readyState === WebSocket.OPEN) {
      socket.send(/** @type {string} */ (conn.queue.shift()));
    }
  }

  /** The prefix of a topic's message on a WebSocket: its position. */
  const STAMP = "<!--lh:";

  /** @param {Connection} conn @param {string} data */
  function received(conn, data) {
    if (data.startsWith(STAMP)) {
      const end = data.indexOf("-->");
      remember(conn, data.slice(STAMP.length, end));
      data = data.slice(end + 3);
      if (!data) return;
    }
    fire(conn.element, "lh:message", { data });
    // Fragments are HTML and start with "<"; control envelopes are JSON objects.
    if (data.startsWith("{")) control(conn, JSON.parse(data));
    else page.swap(data);
  }

  /** @param {Connection} conn @param {Channel} socket @param {number} code @param {string} reason */
  function closed(conn, socket, code, reason) {
    if (conn.socket !== socket) return;
    conn.socket = null;
    page.abandon(conn.element);
    const policy = closePolicy(code);
    if (policy === "reload" && !page.leaving() && reloadOnce()) return;
    const reconnect = !conn.closed && conn.element.isConnected && policy === "reconnect";
    fire(conn.element, "lh:close", { code, reason, reconnect });
    if (reconnect) scheduleReconnect(conn);
    else setState(conn, "closed");
  }

  /** Reloads the page, unless it already did so in the last 10 s (a server that refuses every
   * fresh token must not cause a reload loop). @returns {boolean} whether it reloads */
  function reloadOnce() {
    const key = "livehtml:reloaded-at";
    const last = Number(sessionStorage.getItem(key) || 0);
    if (Date.now() - last < 10000) return false;
    sessionStorage.setItem(key, String(Date.now()));
    location.reload();
    return true;
  }

  /** Full-jitter exponential backoff: a uniform delay in [0, min(max, base * 2^attempt)).
   * @param {Connection} conn */
  function scheduleReconnect(conn) {
    // A socket whose element left the page must not come back (htmx's ws extension does).
    if (!conn.element.isConnected) return setState(conn, "closed");
    const ceiling = Math.min(livehtml.config.reconnectMax, livehtml.config.reconnectBase * 2 ** conn.attempt);
    const delay = Math.floor(Math.random() * ceiling);
    conn.attempt += 1;
    // A live view's socket says it is the same page coming back: the server resumes the view
    // it kept, or sends it whole; never leaves the page showing what it no longer has.
    const url = new URL(conn.url);
    if (url.searchParams.has("t")) {
      url.searchParams.set(WIRE.query.RESUME, "1");
      conn.url = url.href;
    }
    setState(conn, "reconnecting");
    fire(conn.element, "lh:reconnecting", { attempt: conn.attempt, delay });
    conn.timer = window.setTimeout(() => open(conn), delay);
  }

  /** @param {Connection} conn @param {string} state */
  function setState(conn, state) {
    conn.element.setAttribute("lh-state", state);
  }

  /** @param {Element} element @param {string} type @param {object} detail */
  function fire(element, type, detail) {
    element.dispatchEvent(new CustomEvent(type, { bubbles: true, detail }));
  }

  // ======================================================================
  // Sending
  // ======================================================================

  /**
   * @param {Element} element  the element that fired (form, button, input)
   * @param {SubmitEvent | Event | null} [event]
   * @param {string | null} [eventName]  overrides the element's lh-send value
   * @param {Record<string, string>} [extra]  more values to send
   */
  function send(element, event, eventName, extra) {
    const owner = element.closest("[lh-connect]");
    if (!owner) return;
    const conn = connect(owner);
    const form = element instanceof HTMLFormElement ? element : element.closest("form");
    const values = page.values(element, event, extra);
    /** @type {Record<string, string>} */
    const headers = {
      "HX-Request": "true",
      "HX-Current-URL": location.href,
      [WIRE.header.CLIENT]: "1",
    };
    if (element.id) headers["HX-Trigger"] = element.id;
    const name = element.getAttribute("name");
    if (name) headers["HX-Trigger-Name"] = name;
    const name_ = eventName ?? element.getAttribute("lh-send");
    if (name_) headers[WIRE.header.EVENT] = name_;
    const target = element.getAttribute("lh-target");
    if (target) headers["HX-Target"] = target;
    // Numbered: the server's reply ends the element's loading state (commands.js).
    headers[WIRE.header.REF] = page.begin(element, form, owner);
    const data = JSON.stringify({ ...values, HEADERS: headers });

    if (conn.socket && conn.socket.readyState === WebSocket.OPEN) {
      conn.socket.send(data);
    } else {
      // Bounded: while offline, keep the newest messages only.
      conn.queue.push(data);
      if (conn.queue.length > livehtml.config.maxQueue) conn.queue.shift();
    }
  }

  // ======================================================================
  // Navigation: switch live views over the socket, with push-state
  // ======================================================================

  /** @param {Element} root @param {string} url @param {boolean} push */
  function navigate(root, url, push) {
    pendingPush.set(root, push);
    send(root, null, WIRE.control.NAV_EVENT, { url });
  }

  /** @type {WeakMap<Element, boolean>} */
  const pendingPush = new WeakMap();

  /** Where a redirect may lead: a page of this origin, or (with
   * `livehtml.config.externalRedirects`) an http(s) page elsewhere; never a script URL.
   * @param {string} url @returns {string | null} */
  function safeUrl(url) {
    let target;
    try {
      target = new URL(url, location.href);
    } catch (_) {
      return null;
    }
    // (An opaque origin such as a script URL's is "null", like about:blank's: the scheme first.)
    if (target.protocol !== "https:" && target.protocol !== "http:") return null;
    return target.origin === location.origin || livehtml.config.externalRedirects ? target.href : null;
  }

  /** @param {Connection} conn
   * @param {{[key: string]: string | undefined, url?: string, title?: string, token?: string, html?: string}} msg */
  function control(conn, msg) {
    const kind = msg[WIRE.control.KEY];
    if (kind === WIRE.control.REDIRECT && msg.url) {
      const target = safeUrl(msg.url);
      if (target) location.assign(target);
      else fire(conn.element, "lh:error", { error: new Error(`redirect refused: ${msg.url}`) });
    } else if (kind === WIRE.control.NAV && msg.url && msg.html !== undefined) {
      if (pendingPush.get(conn.element) !== false) history.pushState({ lh: true }, "", msg.url);
      pendingPush.delete(conn.element);
      if (msg.title) document.title = msg.title;
      conn.element.innerHTML = msg.html;
      // A reconnect must join the view now shown, not the one the page was loaded with.
      if (msg.token) {
        const url = new URL(conn.url);
        url.searchParams.set("t", msg.token);
        conn.url = url.href;
      }
      window.scrollTo(0, 0);
      fire(conn.element, "lh:navigate", { url: msg.url });
    } else if (kind === WIRE.control.RECOVERED) {
      // The page's topics replayed what it missed while away (sent before this, in order).
      fire(conn.element, "lh:recovered", { replayed: Number(msg.replayed) || 0 });
    } else if (kind === WIRE.control.RESUMED) {
      // The view was kept while the page was away: it has everything (what changed came first).
      fire(conn.element, "lh:recovered", { replayed: 0 });
    } else if (kind === WIRE.control.RESYNCED) {
      // The view was mounted anew and sent whole: the page shows the server's state again.
      fire(conn.element, "lh:resynced", {});
    }
  }

  window.addEventListener("popstate", () => {
    const root = document.querySelector("[lh-connect]");
    if (root) navigate(root, location.href, false);
  });

  // ======================================================================
  // Start
  // ======================================================================

  function start() {
    for (const el of Array.from(document.querySelectorAll("[lh-connect]"))) connect(el);
    // Connect elements that arrive later (swapped in by a fragment).
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of Array.from(r.addedNodes)) {
          if (!(n instanceof Element)) continue;
          if (n.hasAttribute("lh-connect")) connect(n);
          for (const el of Array.from(n.querySelectorAll("[lh-connect]"))) connect(el);
        }
        for (const n of Array.from(r.removedNodes)) {
          if (!(n instanceof Element)) continue;
          for (const el of [n, ...Array.from(n.querySelectorAll("[lh-connect]"))]) {
            const conn = connections.get(el);
            if (conn && !el.isConnected) {
              conn.closed = true;
              window.clearTimeout(conn.timer);
              conn.socket?.close(1000);
            }
          }
        }
      }
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
