// dom.js, the first part of livehtml.js (see livehtml.js): applying the server's HTML to the
// page. Every incoming message takes one path, `swap`: each top-level element is swapped by its
// hx-swap-oob, and the morphing styles keep the nodes that did not change, with their focus and
// typed text; a stream's container (lh-stream) merges what arrives and keeps at most its limit.
// Pure DOM; it defines `window.livehtml` with `swap` and `morphChildren`, which input.js and
// livehtml.js extend.
//
//   <ul id="feed" lh-stream="50">   a stream's container: what arrives for it is merged (items
//                                   updated in place by id, new ones inserted, lh-insert-at="0"
//                                   first), the far end trimmed to at most 50 (empty: no limit)
// @ts-check
(function () {
  "use strict";

  // Comments the server ends a message with (protocol::names::comment): an event handled.
  const COMMENT = { REPLY: "lh-reply", REFUSED: "lh-refused" };

  // Attributes the server sets (protocol::names::attr; checked against fixtures/wire.json).
  const ATTR = {
    STREAM: "lh-stream",
    INSERT_AT: "lh-insert-at",
    STREAM_RESET: "lh-stream-reset",
    STREAM_DELETE: "lh-stream-delete",
    ORDER: "lh-order",
    UPLOAD: "lh-upload",
    UPLOAD_GO: "lh-upload-go",
    UPLOAD_STOP: "lh-upload-stop",
  };

  // ======================================================================
  // Swapping: the one path every incoming message takes
  // ======================================================================

  /** Children a keyed list let go of during the current swap, by id: another list of the same
   * message may take them in (a card moved between columns). @type {Map<string, Element> | null} */
  let released = null;

  /** @param {string} html */
  function swap(html) {
    released = new Map();
    try {
      swapAll(html);
    } finally {
      released = null;
    }
  }

  /** @param {string} html */
  function swapAll(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const node of Array.from(template.content.children)) {
      const uploadCommand = node instanceof HTMLTemplateElement
        && (node.hasAttribute(ATTR.UPLOAD_GO) || node.hasAttribute(ATTR.UPLOAD_STOP));
      if (uploadCommand) {
        // Files accepted, or to stop sending (upload.js).
        const lh = /** @type {any} */ (window).livehtml;
        if (node.hasAttribute(ATTR.UPLOAD_GO)) lh.uploadGo?.(node.getAttribute(ATTR.UPLOAD_GO));
        if (node.hasAttribute(ATTR.UPLOAD_STOP)) lh.uploadStop?.(node.getAttribute(ATTR.UPLOAD_STOP));
        continue;
      }
      // Without hx-swap-oob (a live view's region, sent to livehtml.js), an element is morphed
      // into the one with its id; htmx would replace it.
      const spec = node.getAttribute("hx-swap-oob") || "outerMorph";
      node.removeAttribute("hx-swap-oob");
      let style = spec;
      let selector = node.id ? "#" + CSS.escape(node.id) : "";
      const colon = spec.indexOf(":");
      if (colon > 0) {
        style = spec.slice(0, colon);
        selector = spec.slice(colon + 1);
      }
      if (style === "true") style = "outerHTML";
      if (!selector) continue;
      for (const target of Array.from(document.querySelectorAll(selector))) {
        swapOne(target, node.cloneNode(true), style);
      }
    }
    // An event of this page is handled, or refused (commands.js ends its loading state).
    for (const node of Array.from(template.content.childNodes)) {
      if (node.nodeType !== Node.COMMENT_NODE) continue;
      const [kind, ref, why] = /** @type {Comment} */ (node).data.split(" ");
      const replied = /** @type {any} */ (window).livehtml.replied;
      if (kind === COMMENT.REPLY) replied?.(ref, null);
      else if (kind === COMMENT.REFUSED) replied?.(ref, decodeURIComponent((why || "").replace(/\+/g, " ")));
    }
  }

  /** @param {Element} target @param {Node} node @param {string} style */
  function swapOne(target, node, style) {
    const el = /** @type {Element} */ (node);
    const children = () => Array.from(el.childNodes);
    if (target.hasAttribute(ATTR.STREAM)) {
      // A stream's container takes items, never loses the ones it holds to a swap over them.
      switch (style) {
        case "beforeend": return streamMerge(target, children());
        case "afterbegin": return streamMerge(target, children(), 0);
        case "innerHTML": target.replaceChildren(); return streamMerge(target, children());
      }
    }
    switch (style) {
      case "outerHTML": return target.replaceWith(el);
      case "innerHTML": return target.replaceChildren(...children());
      case "beforeend": return target.append(...children());
      case "afterbegin": return target.prepend(...children());
      case "beforebegin": return target.before(...children());
      case "afterend": return target.after(...children());
      case "delete": return target.remove();
      case "innerMorph": return morphChildren(target, el);
      case "outerMorph": return morphElement(target, el);
      case "none": return;
      default: return target.replaceChildren(...children());
    }
  }

  // ======================================================================
  // Streams: containers that merge what arrives and keep at most their limit
  // ======================================================================

  /** Merges `nodes` into the stream container `target`: reset and delete markers first come
   * first, an item already there (by id) is updated in place, a new one inserted at its
   * lh-insert-at (or `at`, counting on for each item; else appended); then the end away from
   * the newest item is trimmed to the container's limit.
   * @param {Element} target @param {Node[]} nodes @param {number} [at] */
  function streamMerge(target, nodes, at) {
    const limit = Number(target.getAttribute(ATTR.STREAM) || 0);
    let next = at;
    for (const node of nodes) {
      if (!(node instanceof Element)) continue; // whitespace between items
      if (node instanceof HTMLTemplateElement) {
        if (node.hasAttribute(ATTR.STREAM_RESET)) target.replaceChildren();
        const gone = node.getAttribute(ATTR.STREAM_DELETE);
        if (gone !== null) streamItem(target, gone)?.remove();
        continue;
      }
      const existing = node.id ? streamItem(target, node.id) : null;
      const attr = node.getAttribute(ATTR.INSERT_AT);
      node.removeAttribute(ATTR.INSERT_AT);
      if (existing) {
        morphElement(existing, node);
        continue;
      }
      const index = attr !== null && attr !== "" ? Number(attr) : next;
      if (index === undefined || !(index >= 0)) {
        target.append(node);
        if (limit > 0) items(target).slice(0, -limit).forEach((gone) => gone.remove());
      } else {
        target.insertBefore(node, items(target)[index] || null);
        if (limit > 0) items(target).slice(limit).forEach((gone) => gone.remove());
        if (next !== undefined) next = index + 1;
      }
    }
  }

  /** A stream's items: its element children, except the markers the first render left.
   * @param {Element} target */
  function items(target) {
    return Array.from(target.children).filter((c) => !(c instanceof HTMLTemplateElement));
  }

  /** @param {Element} target @param {string} id */
  function streamItem(target, id) {
    return target.querySelector(":scope > #" + CSS.escape(id));
  }

  // ======================================================================
  // Keyed lists: children put in the server's order, only new or changed ones sent
  // ======================================================================

  /** @param {Element} target @param {Element} source @param {string[]} order */
  function keyedMerge(target, source, order) {
    /** @type {Map<string, Element>} */
    const sent = new Map();
    for (const c of Array.from(source.children)) if (c.id) sent.set(c.id, c);
    /** @type {Map<string, Element>} */
    const shown = new Map();
    for (const c of Array.from(target.children)) if (c.id) shown.set(c.id, c);
    /** @type {Element[]} */
    const wanted = [];
    for (const id of order) {
      // Not here: let go by a list before this one, or still in a list after it.
      const mine = shown.get(id) || released?.get(id) || document.getElementById(id) || undefined;
      const theirs = sent.get(id);
      if (mine && theirs && mine.tagName === theirs.tagName) {
        morphNode(mine, theirs);
        wanted.push(mine);
      } else if (theirs || mine) {
        wanted.push(/** @type {Element} */ (theirs || mine));
      }
    }
    // Moves only what is out of place (a moved card is one DOM move, the rest stays put).
    let cursor = target.firstElementChild;
    for (const el of wanted) {
      if (el === cursor) {
        cursor = cursor.nextElementSibling;
        continue;
      }
      target.insertBefore(el, cursor);
    }
    const keep = new Set(wanted);
    for (const c of Array.from(target.children)) {
      if (keep.has(c)) continue;
      c.remove();
      if (c.id) released?.set(c.id, c);
    }
  }

  // ======================================================================
  // Sticky state: what the page set itself survives the server's morphs
  // ======================================================================

  /** Attributes (null: removed) and classes (on or off) that client commands and loading
   * states set on an element, with what the element had before, so a morph from the server
   * (which knows nothing of them) keeps them until they are released.
   * @type {WeakMap<Element, {attrs: Map<string, string | null>, classes: Map<string, boolean>}>} */
  const sticky = new WeakMap();

  /** @param {Element} el */
  function stickyOf(el) {
    let s = sticky.get(el);
    if (!s) sticky.set(el, (s = { attrs: new Map(), classes: new Map() }));
    return s;
  }

  /** Sets attribute `name` of `el` to `value` (null: removes it), and keeps it so.
   * @param {Element} el @param {string} name @param {string | null} value */
  function stick(el, name, value) {
    stickyOf(el).attrs.set(name, value);
    if (value === null) el.removeAttribute(name);
    else el.setAttribute(name, value);
  }

  /** Adds (`on`) or removes class `name` of `el`, and keeps it so.
   * @param {Element} el @param {string} name @param {boolean} on */
  function stickClass(el, name, on) {
    stickyOf(el).classes.set(name, on);
    el.classList.toggle(name, on);
  }

  /** Lets the server decide attribute `name` of `el` again (the value stays until it does).
   * @param {Element} el @param {string} name */
  function release(el, name) {
    sticky.get(el)?.attrs.delete(name);
  }

  /** Elements whose content the page holds for now (a button showing lh-disable-with): a
   * morph leaves their children alone. @type {WeakSet<Element>} */
  const frozen = new WeakSet();

  /** @param {Element} el @param {boolean} on */
  function freeze(el, on) {
    if (on) frozen.add(el);
    else frozen.delete(el);
  }

  /** @param {Element} el */
  function reapply(el) {
    const s = sticky.get(el);
    if (!s) return;
    for (const [name, value] of s.attrs) {
      if (value === null) el.removeAttribute(name);
      else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
    }
    for (const [name, on] of s.classes) el.classList.toggle(name, on);
  }

  // ======================================================================
  // Morphing: keep the nodes that did not change, with their focus and typed text
  // ======================================================================

  /** @param {Element} target @param {Element} source */
  function morphChildren(target, source) {
    const next = Array.from(source.childNodes);
    /** @type {Map<string, Element>} */
    const byId = new Map();
    for (const c of Array.from(target.children)) if (c.id) byId.set(c.id, c);
    let cursor = target.firstChild;
    for (const want of next) {
      let match = null;
      if (want instanceof Element && want.id) {
        match = byId.get(want.id) || null;
        if (match && match.tagName !== want.tagName) match = null;
      } else if (cursor && cursor.nodeType === want.nodeType && !(cursor instanceof Element && cursor.id) &&
                 (!(want instanceof Element) || /** @type {Element} */ (cursor).tagName === want.tagName)) {
        match = cursor;
      }
      if (match) {
        if (match !== cursor) target.insertBefore(match, cursor);
        else cursor = cursor.nextSibling;
        morphNode(match, want);
      } else {
        target.insertBefore(want, cursor);
      }
    }
    while (cursor) {
      const gone = cursor;
      cursor = cursor.nextSibling;
      gone.remove();
    }
  }

  /** @param {Element} target @param {Element} source */
  function morphElement(target, source) {
    if (target.tagName !== source.tagName) return target.replaceWith(source);
    morphNode(target, source);
  }

  /** @param {Node} target @param {Node} source */
  function morphNode(target, source) {
    if (!(target instanceof Element) || !(source instanceof Element)) {
      if (target.nodeValue !== source.nodeValue) target.nodeValue = source.nodeValue;
      return;
    }
    const focused = target === document.activeElement;
    // A list sent keyed: the order of its children, and only those that are new or changed.
    const order = source.getAttribute(ATTR.ORDER);
    source.removeAttribute(ATTR.ORDER);
    for (const attr of Array.from(target.attributes)) {
      if (!source.hasAttribute(attr.name)) target.removeAttribute(attr.name);
    }
    for (const attr of Array.from(source.attributes)) {
      if (focused && attr.name === "value") continue;
      if (target.getAttribute(attr.name) !== attr.value) target.setAttribute(attr.name, attr.value);
    }
    reapply(target);
    if (target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement) {
      // What the user typed lives in .value, not in the attribute. A form that reports its
      // changes (lh-change) has the server's copy of it: a field not being typed in takes the
      // server's value; any other field keeps what was typed.
      if (!focused && target.form?.hasAttribute("lh-change")) {
        if (target instanceof HTMLTextAreaElement) target.value = source.textContent || "";
        else if (target.type === "checkbox" || target.type === "radio") target.checked = source.hasAttribute("checked");
        else target.value = source.getAttribute("value") || "";
      }
      return;
    }
    if (frozen.has(target)) return;
    if (target.hasAttribute(ATTR.STREAM)) return streamMerge(target, Array.from(source.childNodes));
    if (order !== null) return keyedMerge(target, source, order.split(" ").filter(Boolean));
    morphChildren(target, source);
  }

  /** @type {any} */ (window).livehtml = { swap, morphChildren, ATTR, COMMENT, stick, stickClass, release, freeze };
})();
