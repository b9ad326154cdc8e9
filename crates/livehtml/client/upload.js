// upload.js, the fourth part of livehtml.js (see livehtml.js): files chosen in a live view's
// file input travel over its connection. The page offers them (name, size, type) in an event;
// the server answers with the ones its upload accepts (lh-upload-go) and renders their
// progress; each goes in binary messages (its id, 4 bytes big-endian, then up to 32 KiB),
// paced by what the socket has not sent yet, until done or told to stop (lh-upload-stop).
// Over SSE or long-polling each piece is a POST (application/octet-stream), one at a time.
//
//   <input type="file" lh-upload="image" multiple>   its files go to the view's upload "image"
// @ts-check
(function () {
  "use strict";

  /** livehtml.js, by the time a file is chosen.
   * @returns {{
   *   send(element: Element, event?: Event | null, eventName?: string | null, extra?: Record<string, string>): void,
   *   connect(element: Element): { socket: any, transport: string }, wire: any }} */
  const lh = () => /** @type {any} */ (window).livehtml;

  /** Bytes of a file in one message (the server's view::CHUNK). */
  const CHUNK = 32 * 1024;
  /** What the socket may hold unsent before the next piece waits. */
  const BUFFERED = 1 << 20;

  /** Files offered, by the page's reference, until the server answers.
   * @type {Map<string, {file: File, input: Element}>} */
  const offered = new Map();
  /** Ids the server said to stop sending. @type {Set<number>} */
  const stopped = new Set();
  let last = 0;

  document.addEventListener("change", (event) => {
    const input = /** @type {Element} */ (event.target);
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.hasAttribute("lh-upload")) return;
    const files = Array.from(input.files || []).map((file) => {
      const ref = `f${++last}`;
      offered.set(ref, { file, input });
      return { ref, name: file.name, size: file.size, type: file.type };
    });
    if (!files.length) return;
    const upload = input.getAttribute("lh-upload") || "";
    lh().send(input, null, lh().wire.control.UPLOAD_EVENT, { upload, files: JSON.stringify(files) });
    // Chosen again, the same file is a new offer.
    input.value = "";
  });

  /** The server accepted these files: `ref:id` pairs.
   * @param {string} pairs */
  function uploadGo(pairs) {
    for (const pair of pairs.split(" ")) {
      const [ref, id] = pair.split(":");
      const found = offered.get(ref);
      offered.delete(ref);
      if (found) sendFile(found.file, found.input, Number(id));
    }
  }

  /** @param {string} id */
  function uploadStop(id) {
    stopped.add(Number(id));
  }

  /** @param {File} file @param {Element} input @param {number} id */
  async function sendFile(file, input, id) {
    const owner = input.closest("[lh-connect]");
    if (!owner) return;
    const conn = lh().connect(owner);
    const socket = conn.socket;
    const ws = conn.transport === "ws";
    for (let at = 0; at < file.size || (at === 0 && file.size === 0); at += CHUNK) {
      while (ws && socket.bufferedAmount > BUFFERED) await new Promise((resolve) => setTimeout(resolve, 10));
      // Stopped, or the connection went (the server dropped the file with it).
      if (stopped.has(id) || !socket || conn.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
      const piece = new Uint8Array(await file.slice(at, at + CHUNK).arrayBuffer());
      const message = new Uint8Array(4 + piece.length);
      new DataView(message.buffer).setUint32(0, id);
      message.set(piece, 4);
      // A POST the server could not take yet (its queue for the page is full) is sent again.
      for (let tries = 0; !(await socket.send(message)) && !ws; tries++) {
        if (tries === 20 || stopped.has(id)) return;
        await new Promise((resolve) => setTimeout(resolve, 50 * (tries + 1)));
      }
      if (file.size === 0) break;
    }
  }

  Object.assign(/** @type {any} */ (window).livehtml, { uploadGo, uploadStop });
})();
