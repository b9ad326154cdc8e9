// The chat line as livehtml's benchmark peer renders it, byte for byte: the server's time, the
// name and the message, escaped, in htmx's out-of-band wrapper. For the JavaScript peers' runs
// with the payload held equal (PAYLOAD=html).
const time = () => new Date().toTimeString().slice(0, 8);
const escape = (s) =>
  String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/** @param {{name?: string, message?: string}} msg */
export const line = (msg) =>
  `<ul id="messages" hx-swap-oob="beforeend"><li>[${time()}] <strong>${escape(msg.name ?? "Anonymous")}</strong>: ${escape(msg.message ?? "")}</li></ul>`;
