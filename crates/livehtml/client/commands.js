// commands.js, the third part of livehtml.js (see livehtml.js): what a page does by itself,
// with no round trip. Client commands (lh-js: show, hide, toggle, classes, attributes, focus,
// dispatch), and the state of an element whose event is in flight (lh-loading, submit buttons
// disabled, lh-disable-with, lh-optimistic changes undone if the server refuses the event).
// Both are sticky (dom.js): a morph from the server keeps them.
//
//   lh-js="toggle #details; add-class on"   on click, no round trip: show, hide, toggle,
//                                           add-/remove-/toggle-class (a,b), set-attr NAME V,
//                                           remove-attr NAME, focus, dispatch EVENT; each on a
//                                           selector, or the element itself; with lh-click,
//                                           they run first, then the event goes
//   [lh-loading]                            set on an element (and its form) while its event
//                                           is in flight; the form's submit buttons disabled
//   lh-disable-with="Saving…"               a button's text (and disabled) while in flight
//   lh-optimistic="hide; …"                 commands run when the event is sent, undone if
//                                           the server refuses it
// @ts-check
(function () {
  "use strict";

  /** dom.js's sticky state. @type {{ stick(el: Element, name: string, value: string | null): void,
   *   stickClass(el: Element, name: string, on: boolean): void, release(el: Element, name: string): void,
   *   freeze(el: Element, on: boolean): void, resetFields(form: HTMLFormElement, names: string): void }} */
  const page = /** @type {any} */ (window).livehtml;

  // ======================================================================
  // Client commands: lh-js="toggle #details; add-class open #menu"
  // ======================================================================

  /** Each command's arguments before its (optional) selector; without one it acts on the
   * element that carries it. */
  const ARITY = /** @type {Record<string, number>} */ ({
    show: 0,
    hide: 0,
    toggle: 0,
    "add-class": 1,
    "remove-class": 1,
    "toggle-class": 1,
    "set-attr": 2,
    "remove-attr": 1,
    focus: 0,
    dispatch: 1,
  });

  /** Runs the `;`-separated commands of `spec` for `el`. Returns what undoes them.
   * @param {Element} el @param {string} spec @returns {() => void} */
  function run(el, spec) {
    /** @type {Array<() => void>} */
    const undo = [];
    for (const command of spec.split(";")) {
      const words = command.trim().split(/\s+/).filter(Boolean);
      const verb = words.shift();
      if (!verb) continue;
      const arity = ARITY[verb];
      if (arity === undefined || words.length < arity) {
        console.warn(`livehtml: unknown command or missing arguments: ${command.trim()}`);
        continue;
      }
      const args = words.slice(0, arity);
      const selector = words.slice(arity).join(" ");
      let targets;
      try {
        targets = selector ? Array.from(document.querySelectorAll(selector)) : [el];
      } catch (_) {
        console.warn(`livehtml: not a selector: ${selector}`);
        continue;
      }
      for (const target of targets) undo.push(apply(target, verb, args));
    }
    return () => undo.reverse().forEach((u) => u());
  }

  /** @param {Element} t @param {string} verb @param {string[]} args @returns {() => void} */
  function apply(t, verb, args) {
    switch (verb) {
      case "show":
      case "hide":
      case "toggle": {
        const was = t.getAttribute("hidden");
        const hide = verb === "hide" || (verb === "toggle" && was === null);
        page.stick(t, "hidden", hide ? "" : null);
        return () => page.stick(t, "hidden", was);
      }
      case "add-class":
      case "remove-class":
      case "toggle-class": {
        const names = args[0].split(",").filter(Boolean);
        const was = names.map((n) => t.classList.contains(n));
        names.forEach((n, i) => page.stickClass(t, n, verb === "add-class" || (verb === "toggle-class" && !was[i])));
        return () => names.forEach((n, i) => page.stickClass(t, n, was[i]));
      }
      case "set-attr":
      case "remove-attr": {
        const was = t.getAttribute(args[0]);
        page.stick(t, args[0], verb === "set-attr" ? args[1] : null);
        return () => page.stick(t, args[0], was);
      }
      case "focus":
        if (t instanceof HTMLElement) t.focus();
        return () => {};
      default:
        t.dispatchEvent(new CustomEvent(args[0], { bubbles: true }));
        return () => {};
    }
  }

  // Clicks run lh-js first; input.js then sends the element's event, if it has one.
  document.addEventListener("click", (event) => {
    const el = /** @type {Element} */ (event.target).closest("[lh-js]");
    if (el) run(el, el.getAttribute("lh-js") || "");
  }, true);

  // ======================================================================
  // Events in flight: loading states, until the server's reply
  // ======================================================================

  /** @typedef {{ owner: Element, marked: Element[], disabled: Array<[Element, string | null, string | null]>,
   *   undo: () => void, form: HTMLFormElement | null }} Flight */
  /** @type {Map<string, Flight>} */
  const flights = new Map();
  let last = 0;

  /** An event is sent from `el` (of `form`): marks them loading, disables the form's submit
   * buttons (and `el`, with lh-disable-with), runs its lh-optimistic commands. Returns the
   * event's number for `LH-Ref`.
   * @param {Element} el @param {HTMLFormElement | null} form @param {Element} owner its lh-connect
   * @returns {string} */
  function begin(el, form, owner) {
    const ref = String(++last);
    /** @type {Flight} */
    const flight = { owner, marked: [], disabled: [], undo: () => {}, form };
    for (const m of form && form !== el ? [el, form] : [el]) {
      page.stick(m, "lh-loading", "");
      flight.marked.push(m);
    }
    const buttons = form ? Array.from(form.querySelectorAll("button:not([type=button]), input[type=submit]")) : [];
    if (el.hasAttribute("lh-disable-with") && !buttons.includes(el)) buttons.push(el);
    for (const b of buttons) {
      if (b.hasAttribute("disabled")) continue;
      const text = b.getAttribute("lh-disable-with");
      flight.disabled.push([b, text !== null ? b.textContent : null, b.getAttribute("disabled")]);
      page.stick(b, "disabled", "");
      if (text !== null) {
        b.textContent = text;
        page.freeze(b, true);
      }
    }
    const optimistic = el.getAttribute("lh-optimistic") ?? form?.getAttribute("lh-optimistic");
    if (optimistic) flight.undo = run(el, optimistic);
    flights.set(ref, flight);
    return ref;
  }

  /** The server handled event `ref`: its form's lh-reset fields are cleared; or it refused
   * it (`refused`: the message), and what it changed optimistically is undone.
   * @param {string} ref @param {string | null} refused */
  function replied(ref, refused) {
    const flight = flights.get(ref);
    if (!flight) return;
    if (refused !== null) {
      flight.undo();
    } else if (flight.form?.hasAttribute("lh-reset")) {
      page.resetFields(flight.form, flight.form.getAttribute("lh-reset") || "");
    }
    end(ref, flight);
  }

  /** @param {string} ref @param {Flight} flight */
  function end(ref, flight) {
    flights.delete(ref);
    for (const m of flight.marked) {
      // Another event of the same element may still be in flight.
      if (![...flights.values()].some((f) => f.marked.includes(m))) {
        page.stick(m, "lh-loading", null);
        page.release(m, "lh-loading");
      }
    }
    for (const [b, text, was] of flight.disabled) {
      page.stick(b, "disabled", was);
      page.release(b, "disabled");
      if (text !== null) {
        page.freeze(b, false);
        b.textContent = text;
      }
    }
  }

  /** The connection of `owner` ended: nothing it has in flight will be answered (whether the
   * server took it is unknown: what was typed stays, and so do optimistic changes).
   * @param {Element} owner */
  function abandon(owner) {
    for (const [ref, flight] of Array.from(flights)) if (flight.owner === owner) end(ref, flight);
  }

  Object.assign(page, { run, begin, replied, abandon });
})();
