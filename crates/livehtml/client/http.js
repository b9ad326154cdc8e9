// http.js: a connection's transports over plain HTTP, for where a WebSocket does not get
// through: Server-Sent Events with the page's events POSTed, and long-polling. Served before
// livehtml.js (connections, reconnects, fallback), which opens them through
// `window.livehtml.http` and hands them its own steps (`Hooks`): they call back when the
// transport opens, receives, remembers a topic position or closes.
// @ts-check
(function () {
  "use strict";

  /** What a transport calls back in livehtml.js.
   * @typedef {{ connectUrl(conn: Connection): string, opened(conn: Connection, channel: Channel): void,
   *   closed(conn: Connection, channel: Channel, code: number, reason: string): void,
   *   received(conn: Connection, data: string): void, remember(conn: Connection, text: string): void,
   *   mayFallBack(conn: Connection, channel: Channel): boolean, fallBack(conn: Connection): void,
   *   fire(element: Element, type: string, detail: object): void, openTimeout: number }} Hooks */

  /** livehtml.js's API, once it is there (it comes after this file).
   * @returns {{ fetch(url: string, init?: RequestInit): Promise<Response>,
   *   createEventSource(url: string): EventSource, wire: any, http: object }} */
  const lh = () => /** @type {any} */ (window).livehtml;
  /** The names on the wire (livehtml.js's WIRE). */
  const wire = () => lh().wire;

  /** Sends a page's message (an event, a piece of a file) by POST with its stream's (or long-poll
   * session's) signed id; resolves to whether the server took it.
   * @param {Connection} conn @param {Hooks} on @param {string} id @param {string | Uint8Array} data
   * @param {() => void} gone */
  function post(conn, on, id, data, gone) {
    const type = typeof data === "string" ? "application/json" : "application/octet-stream";
    const headers = { "Content-Type": type, [wire().header.STREAM]: id };
    const body = /** @type {BodyInit} */ (data);
    return lh().fetch(conn.url, { method: "POST", headers, body }).then((r) => {
      if (r.ok) return true;
      on.fire(conn.element, "lh:error", { error: new Error(`event refused: ${r.status}`) });
      if (r.status === 410) gone(); // the session ended under us (its process too, maybe): start a new one
      // Not taken: the session (or its process) is gone, or a gateway between could not reach
      // it. An event goes again, on this connection or the one that follows; a file's piece
      // belongs to its session and is not.
      if (typeof data === "string" && (r.status === 410 || r.status >= 502)) {
        window.setTimeout(() => resend(conn, data), r.status === 410 ? 0 : RESEND_DELAY);
      }
      return false;
    }, (error) => (on.fire(conn.element, "lh:error", { error }), false));
  }

  /** How long an event a gateway could not deliver waits before it goes again. */
  const RESEND_DELAY = 250;

  /** Sends an event again: now if the page is connected, else once it is.
   * @param {Connection} conn @param {string} data */
  function resend(conn, data) {
    if (conn.socket && conn.socket.readyState === WebSocket.OPEN) conn.socket.send(data);
    else conn.queue.push(data);
  }

  /** Server-Sent Events: fragments arrive as events, the page's messages go out by POST to the
   * same URL with the stream's signed id (its first event, lh-stream). A stream the server ends
   * says why in a last lh-close event, with the WebSocket close code's meaning.
   * @param {Connection} conn @param {Hooks} on @returns {Channel} */
  function openStream(conn, on) {
    const source = lh().createEventSource(on.connectUrl(conn));
    let id = "";
    /** @param {number} code @param {string} reason */
    const end = (code, reason) => {
      window.clearTimeout(timeout);
      source.close();
      channel.readyState = WebSocket.CLOSED;
      if (code === 1006 && on.mayFallBack(conn, channel)) return on.fallBack(conn);
      on.closed(conn, channel, code, reason);
    };
    /** @type {Channel} */
    const channel = {
      readyState: WebSocket.CONNECTING,
      send(data) {
        return post(conn, on, id, data, () => conn.socket === channel && end(1006, "stream gone"));
      },
      close(code) {
        end(code ?? 1000, "");
      },
    };
    // A stream that never starts (a proxy that buffers or blocks it) gives way to long-polling.
    const timeout = window.setTimeout(() => {
      if (channel.readyState === WebSocket.CONNECTING) end(1006, "");
    }, on.openTimeout);
    source.addEventListener(wire().event.STREAM, (event) => {
      window.clearTimeout(timeout);
      id = /** @type {MessageEvent} */ (event).data;
      channel.readyState = WebSocket.OPEN;
      on.opened(conn, channel);
    });
    source.addEventListener("message", (event) => {
      on.remember(conn, /** @type {MessageEvent} */ (event).lastEventId);
      on.received(conn, event.data);
    });
    // Where a subscription starts: an event with nothing but its id.
    source.addEventListener(wire().event.AT, (event) => {
      on.remember(conn, /** @type {MessageEvent} */ (event).lastEventId);
    });
    source.addEventListener(wire().event.CLOSE, (event) => {
      /** @type {{code?: number, reason?: string}} */
      let why = {};
      try {
        why = JSON.parse(/** @type {MessageEvent} */ (event).data);
      } catch (_) { /* a malformed notice is a dropped stream */ }
      end(why.code ?? 1006, why.reason ?? "");
    });
    // A dropped stream reconnects on the same schedule as a socket (EventSource's own retry
    // would not back off).
    source.addEventListener("error", () => end(1006, ""));
    return channel;
  }

  /** Long-polling: a GET opens a session (its signed id), then each GET waits for what the
   * session sends and answers it as a batch (`{batch, messages, close?, end?}`), acknowledged
   * by the next poll (a batch lost on the way is sent again); the page's messages go by POST as
   * over SSE.
   * @param {Connection} conn @param {Hooks} on @returns {Channel} */
  function openPoll(conn, on) {
    let id = "";
    let ack = 0;
    /** @param {number} code @param {string} reason */
    const end = (code, reason) => {
      if (channel.readyState === WebSocket.CLOSED) return;
      channel.readyState = WebSocket.CLOSED;
      on.closed(conn, channel, code, reason);
    };
    /** @type {Channel} */
    const channel = {
      readyState: WebSocket.CONNECTING,
      send(data) {
        return post(conn, on, id, data, () => end(1006, "session gone"));
      },
      close(code) {
        end(code ?? 1000, "");
      },
    };
    /** @param {URL} url */
    const get = async (url) => {
      const r = await lh().fetch(url.href, { cache: "no-store" });
      if (!r.ok) throw new Error(`poll refused: ${r.status}`);
      return r.json();
    };
    (async () => {
      const first = new URL(on.connectUrl(conn));
      first.searchParams.set(wire().query.POLL, "1");
      id = (await get(first)).id;
      channel.readyState = WebSocket.OPEN;
      on.opened(conn, channel);
      while (channel.readyState === WebSocket.OPEN) {
        const url = new URL(conn.url);
        url.searchParams.set(wire().query.POLL, id);
        url.searchParams.set(wire().query.ACK, String(ack));
        /** @type {{batch: number, messages: string[], close?: {code: number, reason: string}, end?: boolean}} */
        const answer = await get(url);
        if (channel.readyState !== WebSocket.OPEN) return;
        ack = answer.batch;
        for (const message of answer.messages) on.received(conn, message);
        if (answer.close) return end(answer.close.code, answer.close.reason);
        if (answer.end) return end(1006, "");
      }
    })().catch((error) => {
      on.fire(conn.element, "lh:error", { error });
      end(1006, "");
    });
    return channel;
  }


  // Opened by livehtml.js for lh-transport="sse" and "poll".
  lh().http = { stream: openStream, poll: openPoll };
})();
