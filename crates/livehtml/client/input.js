// input.js, the second part of livehtml.js (see livehtml.js): what a page sends, and when. The
// values of a form or an element (lh-value-*), lh-debounce and lh-throttle, the listeners that
// turn submits, clicks, changes and key-ups into events (and lh-nav clicks into navigation),
// through livehtml.js's `send` and `navigate`, and forms that report their changes sent again
// after a reconnect that remounted their view.
// @ts-check
(function () {
  "use strict";

  /** livehtml.js, by the time a listener runs.
   * @returns {{ send(element: Element, event?: Event | null, eventName?: string | null): void,
   *   navigate(root: Element, url: string, push: boolean): void }} */
  const lh = () => /** @type {any} */ (window).livehtml;

  /** What `element` sends: its form's values (with the submitter), or its own value, then its
   * lh-value-* attributes and `extra`; a name given twice becomes a list.
   * @param {Element} element @param {Event | null} [event] @param {Record<string, string>} [extra]
   * @returns {Record<string, string | string[]>} */
  function values(element, event, extra) {
    const form = element instanceof HTMLFormElement ? element : element.closest("form");
    /** @type {Record<string, string | string[]>} */
    const values = {};
    const add = (/** @type {string} */ k, /** @type {string} */ v) => {
      const prev = values[k];
      values[k] = prev === undefined ? v : [].concat(/** @type {any} */ (prev), /** @type {any} */ (v));
    };
    if (form) {
      const submitter = event && "submitter" in event ? /** @type {HTMLElement | null} */ (event.submitter) : null;
      for (const [k, v] of new FormData(form, submitter)) if (typeof v === "string") add(k, v);
    } else if (element instanceof HTMLInputElement || element instanceof HTMLSelectElement || element instanceof HTMLTextAreaElement) {
      if (element.name) add(element.name, element.value);
    }
    for (const attr of Array.from(element.attributes)) {
      if (attr.name.startsWith("lh-value-")) add(attr.name.slice(9), attr.value);
    }
    for (const [k, v] of Object.entries(extra || {})) add(k, v);
    return values;
  }

  /** @param {HTMLFormElement} form @param {string} names */
  function resetFields(form, names) {
    if (!names.trim()) return form.reset();
    for (const n of names.split(/[\s,]+/)) {
      const field = form.elements.namedItem(n);
      if (field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement) field.value = "";
    }
  }

  document.addEventListener("submit", (event) => {
    const form = /** @type {Element} */ (event.target).closest("form[lh-send], form[lh-submit]");
    if (!form) return;
    event.preventDefault();
    // Sent already and not answered yet: no second submit.
    if (form.hasAttribute("lh-loading")) return;
    rateLimited(form, "submit", () => lh().send(form, event, form.getAttribute("lh-submit") ?? form.getAttribute("lh-send")));
  });

  document.addEventListener("click", (event) => {
    const target = /** @type {Element} */ (event.target);
    const link = target.closest("a[lh-nav]");
    if (link instanceof HTMLAnchorElement && !(event instanceof MouseEvent && (event.metaKey || event.ctrlKey || event.shiftKey))) {
      // Links in the layout (outside the view) navigate the page's view too.
      const root = link.closest("[lh-connect]") || document.querySelector("#lh-view[lh-connect]");
      if (root && link.origin === location.origin) {
        event.preventDefault();
        lh().navigate(root, link.href, true);
        return;
      }
    }
    const el = target.closest("[lh-click], [lh-send]:not(form)");
    if (!el || (el instanceof HTMLButtonElement && el.type === "submit" && el.form?.matches("[lh-send], [lh-submit]"))) return;
    event.preventDefault();
    rateLimited(el, "click", () => lh().send(el, event, el.getAttribute("lh-click") ?? el.getAttribute("lh-send")));
  });

  for (const [domEvent, attr] of [["change", "lh-change"], ["input", "lh-change"], ["keyup", "lh-keyup"]]) {
    document.addEventListener(domEvent, (event) => {
      const el = /** @type {Element} */ (event.target).closest(`[${attr}]`);
      // lh-change fires on "input" only when debounced (typing), else on "change".
      if (!el || (domEvent === "input" && !el.hasAttribute("lh-debounce"))) return;
      if (domEvent === "change" && el.hasAttribute("lh-debounce")) return;
      rateLimited(el, attr, () => lh().send(el, event, el.getAttribute(attr)));
    });
  }

  // A live view mounted anew after a reconnect knows nothing of what was typed; the page still
  // shows it: each form that reports its changes (lh-change) sends its values again.
  document.addEventListener("lh:resynced", (event) => {
    const root = /** @type {Element} */ (event.target);
    for (const form of Array.from(root.querySelectorAll("form[lh-change]"))) lh().send(form, null, form.getAttribute("lh-change"));
  });

  // The page is navigating away (a link, a form's submit): a close of its connections then is
  // no reason to reload or reconnect (a sign-out form that closes the user's views, this one's
  // too, must not have its own page reloaded over its navigation).
  let leaving = false;
  window.addEventListener("beforeunload", () => { leaving = true; });
  window.addEventListener("pageshow", () => { leaving = false; });

  /** @type {WeakMap<Element, Map<string, {timer?: number, last: number}>>} */
  const limits = new WeakMap();

  /** Applies lh-debounce (wait for a quiet period) or lh-throttle (at most once per interval).
   * @param {Element} el @param {string} key @param {() => void} fn */
  function rateLimited(el, key, fn) {
    const debounce = Number(el.getAttribute("lh-debounce") || 0);
    const throttle = Number(el.getAttribute("lh-throttle") || 0);
    if (!debounce && !throttle) return fn();
    let byKey = limits.get(el);
    if (!byKey) limits.set(el, (byKey = new Map()));
    let state = byKey.get(key);
    if (!state) byKey.set(key, (state = { timer: undefined, last: 0 }));
    const s = state;
    if (debounce) {
      window.clearTimeout(s.timer);
      s.timer = window.setTimeout(fn, debounce);
      return;
    }
    const now = Date.now();
    if (now - s.last >= throttle) {
      s.last = now;
      fn();
    } else if (s.timer === undefined) {
      // The last call within the interval still goes out, at its end.
      s.timer = window.setTimeout(() => {
        s.timer = undefined;
        s.last = Date.now();
        fn();
      }, throttle - (now - s.last));
    }
  }

  Object.assign(/** @type {any} */ (window).livehtml, { values, resetFields, leaving: () => leaving });
})();
