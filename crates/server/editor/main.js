// kestrel's flow editor: turns the flow page's <textarea id="source"> into a CodeMirror 6
// editor with YAML highlighting, inline validation markers and completion of task types,
// task properties, top-level keys and secret names.
//
// It is progressive: the page works without it (the textarea is the fallback), and with it
// the textarea stays in the form, hidden, and is kept equal to the editor's text, so Save
// posts exactly what is shown. Bundled by scripts/build-editor into static/editor.js.
//
// The page's Content-Security-Policy allows no inline style (style-src 'self'). CodeMirror
// injects its styles at run time through style-mod, which writes a <style> element when the
// editor lives in the main document (CSP blocks that: the editor would be unstyled) but uses
// a constructable stylesheet (adoptedStyleSheets, which CSP does not govern) in a shadow
// root. So the editor is mounted in an open shadow root attached to a <div> placed after the
// textarea. The page's colours still apply: CSS custom properties (--fg, --bg, ...) inherit
// into the shadow tree; the page's other rules (for button, input, label) do not, which keeps
// them off CodeMirror's search panel. Nothing here builds HTML from strings or evaluates code.

import { EditorState, Compartment } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLineGutter, highlightActiveLine,
  highlightSpecialChars, drawSelection, dropCursor,
} from "@codemirror/view";
import {
  indentOnInput, bracketMatching, foldGutter, foldKeymap, syntaxHighlighting, HighlightStyle,
  indentUnit,
} from "@codemirror/language";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { autocompletion, completionKeymap } from "@codemirror/autocomplete";
import { linter, lintGutter, lintKeymap, forceLinting } from "@codemirror/lint";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { yaml } from "@codemirror/lang-yaml";
import { tags as t } from "@lezer/highlight";

// ---------------------------------------------------------------------------------------
// Looks. Layout and neutral colours come from the page's CSS custom properties, so the
// editor follows style.css, including its dark mode; only the syntax colours and the
// selection differ between the light and the dark look, which are swapped when the
// system's colour scheme changes.

const MONO = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace';

const layout = EditorView.theme({
  "&": {
    color: "var(--fg)",
    backgroundColor: "var(--bg)",
    border: "1px solid var(--muted)",
    borderRadius: "4px",
    // About 22 lines at least, 60% of the window by default; the person can drag the
    // corner to make it taller. The text scrolls inside.
    height: "60vh",
    minHeight: "26rem",
    resize: "vertical",
    overflow: "hidden",
  },
  // The ring the rest of the UI draws around what has the keyboard (style.css :focus-visible).
  "&.cm-focused": { outline: "3px solid var(--focus)", outlineOffset: "2px" },
  ".cm-scroller": {
    fontFamily: MONO,
    fontSize: "0.9rem",
    lineHeight: "1.45",
    overflow: "auto",
    flex: "1 1 auto",
    minHeight: "0",
  },
  ".cm-content": { caretColor: "var(--fg)", padding: "0.3rem 0" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--fg)", borderLeftWidth: "2px" },
  ".cm-gutters": {
    backgroundColor: "var(--panel)",
    color: "var(--muted)",
    borderRight: "1px solid var(--line)",
  },
  ".cm-activeLineGutter": { backgroundColor: "var(--line)", color: "var(--fg)" },
  ".cm-foldPlaceholder": {
    backgroundColor: "var(--panel)", border: "1px solid var(--line)", color: "var(--muted)",
  },
  ".cm-tooltip": {
    backgroundColor: "var(--panel)", color: "var(--fg)", border: "1px solid var(--line)",
    borderRadius: "4px",
  },
  ".cm-tooltip-autocomplete ul": { fontFamily: MONO, fontSize: "0.85rem" },
  ".cm-tooltip-autocomplete ul li[aria-selected]": {
    backgroundColor: "var(--accent)", color: "var(--bg)",
  },
  ".cm-completionDetail": { color: "inherit", opacity: "0.75", marginLeft: "1em" },
  ".cm-completionMatchedText": { textDecoration: "none", fontWeight: "700" },
  ".cm-diagnostic": { fontFamily: MONO, fontSize: "0.85rem" },
  ".cm-diagnostic-error": { borderLeftColor: "var(--danger)" },
  ".cm-panels": { backgroundColor: "var(--panel)", color: "var(--fg)" },
  ".cm-panels.cm-panels-bottom": { borderTop: "1px solid var(--line)" },
  ".cm-panels.cm-panels-top": { borderBottom: "1px solid var(--line)" },
});

// Colours after GitHub's Primer palettes: each has at least 4.5:1 contrast on its background
// (#ffffff in light, #0d1117 in dark, style.css's --bg).
const PALETTE = {
  light: {
    key: "#116329", string: "#0a3069", atom: "#0550ae", comment: "#57606a", meta: "#8250df",
    type: "#953800", selection: "#b6d4fe", activeLine: "rgba(31, 95, 191, 0.06)",
    match: "rgba(31, 95, 191, 0.15)",
  },
  dark: {
    key: "#7ee787", string: "#a5d6ff", atom: "#79c0ff", comment: "#8b949e", meta: "#d2a8ff",
    type: "#ffa657", selection: "#264f78", activeLine: "rgba(76, 154, 255, 0.08)",
    match: "rgba(76, 154, 255, 0.2)",
  },
};

function look(dark) {
  const c = dark ? PALETTE.dark : PALETTE.light;
  const theme = EditorView.theme({
    // The active line's background is translucent so that the selection under it shows.
    ".cm-activeLine": { backgroundColor: c.activeLine },
    "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection":
      { backgroundColor: c.selection },
    ".cm-selectionMatch": { backgroundColor: c.match },
    "&.cm-focused .cm-matchingBracket": { backgroundColor: c.match, outline: "1px solid var(--muted)" },
  }, { dark });
  const style = HighlightStyle.define([
    { tag: [t.propertyName, t.definition(t.propertyName)], color: c.key },
    { tag: [t.string, t.special(t.string), t.attributeValue], color: c.string },
    { tag: [t.number, t.bool, t.null, t.atom, t.keyword], color: c.atom },
    { tag: [t.comment, t.lineComment], color: c.comment, fontStyle: "italic" },
    { tag: [t.labelName, t.meta], color: c.meta },
    { tag: t.typeName, color: c.type },
    { tag: [t.separator, t.punctuation, t.brace, t.squareBracket], color: "var(--muted)" },
    { tag: t.invalid, color: "var(--danger)" },
  ]);
  return [theme, syntaxHighlighting(style)];
}

// ---------------------------------------------------------------------------------------
// Validation: the server checks the flow (the same check as on Save) and answers the lines
// at fault; each becomes an error spanning its line. Any failure means no markers, never an
// exception: the server still validates on Save.

function checker(textarea, form) {
  const url = textarea.dataset.check;
  if (!url) {
    return [];
  }
  const field = (name) => {
    const input = form && form.querySelector(`input[name="${name}"]`);
    return input ? input.value : "";
  };
  const source = async (view) => {
    // Positions are computed on the text that was sent; CodeMirror drops the answer if the
    // text has changed meanwhile and asks again.
    const doc = view.state.doc;
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": field("csrf") },
        body: JSON.stringify({ source: doc.toString(), namespace: field("from") }),
      });
      if (response.status !== 200) {
        return [];
      }
      const answer = await response.json();
      const found = answer && Array.isArray(answer.diagnostics) ? answer.diagnostics : [];
      return found.map((d) => {
        let number = Number.isInteger(d && d.line) ? d.line : 1;
        number = Math.min(Math.max(number, 1), doc.lines);
        const line = doc.line(number);
        return {
          from: line.from,
          to: line.to,
          severity: "error",
          message: String(d && d.message != null ? d.message : "invalid"),
        };
      });
    } catch (_) {
      return [];
    }
  };
  return [linter(source, { delay: 500 }), lintGutter()];
}

// ---------------------------------------------------------------------------------------
// Completion. What there is to complete (task types and their properties, secret names, the
// flow's top-level keys) comes from one GET, made the first time it is needed.

function catalogue(url) {
  let pending = null;
  const strings = (list) => (Array.isArray(list) ? list.filter((s) => typeof s === "string") : []);
  return () => {
    if (!pending) {
      pending = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) => (response.status === 200 ? response.json() : null))
        .then((answer) => {
          if (!answer || typeof answer !== "object") {
            throw new Error("no catalogue");
          }
          const tasks = new Map();
          for (const task of Array.isArray(answer.tasks) ? answer.tasks : []) {
            if (task && typeof task.type === "string") {
              tasks.set(task.type, strings(task.properties));
            }
          }
          return { tasks, secrets: strings(answer.secrets), keys: strings(answer.keys) };
        })
        .catch(() => {
          // Try again later rather than on every keystroke.
          setTimeout(() => { pending = null; }, 10000);
          return null;
        });
    }
    return pending;
  };
}

const SECRET = /secret\(\s*(['"])([\w.\-]*)$/;
const TYPE = /^\s*-?\s*type:\s*(\S*)$/;
const KEY_POSITION = /^(\s*)(-\s+)?((?:\w[\w\-]*)?)$/;
const KEY_LINE = /^\s*(?:-\s+)?([\w.\-]+)\s*:(?:\s|$)/;
const TYPE_VALUE = /^\s*(?:-\s+)?type\s*:\s*["']?([\w.$\-]+)/;

// Where a line's content starts: its indentation, plus "- " when it opens a list item.
function shape(text) {
  const m = /^(\s*)(-(?:\s+|$))?/.exec(text);
  const indent = m[1].length;
  return { dashed: !!m[2], column: indent + (m[2] ? m[2].length : 0) };
}

function blank(text) {
  return /^\s*(#.*)?$/.test(text);
}

// The keys of the mapping that holds the key being typed at `column` on line `number`, and
// its `type:` if it has one. Walks up and down over the lines of the same column; deeper
// lines (nested values, block text) are passed over; a shallower line ends the mapping, and
// so does "- " at that column (another item of the same list).
function mappingAround(doc, number, column, startsItem) {
  const keys = new Set();
  let type = null;
  let listItem = startsItem;
  const take = (text) => {
    const key = KEY_LINE.exec(text);
    if (key) {
      keys.add(key[1]);
    }
    const typed = TYPE_VALUE.exec(text);
    if (typed) {
      type = typed[1];
    }
  };
  if (!startsItem) {
    for (let n = number - 1; n >= 1; n--) {
      const text = doc.line(n).text;
      if (blank(text)) {
        continue;
      }
      const s = shape(text);
      if (s.column > column) {
        continue;
      }
      if (s.column < column) {
        break;
      }
      take(text);
      if (s.dashed) {
        listItem = true;
        break;
      }
    }
  }
  for (let n = number + 1; n <= doc.lines; n++) {
    const text = doc.line(n).text;
    if (blank(text)) {
      continue;
    }
    const s = shape(text);
    if (s.column > column) {
      continue;
    }
    if (s.column < column || s.dashed) {
      break;
    }
    take(text);
  }
  return { keys, type, listItem };
}

function completer(textarea) {
  const url = textarea.dataset.complete;
  if (!url) {
    return null;
  }
  const load = catalogue(url);
  return async (context) => {
    try {
      const line = context.state.doc.lineAt(context.pos);
      const before = line.text.slice(0, context.pos - line.from);
      const after = line.text.slice(context.pos - line.from);

      const secret = SECRET.exec(before);
      if (secret) {
        const data = await load();
        if (!data || context.aborted) {
          return null;
        }
        return {
          from: context.pos - secret[2].length,
          options: data.secrets.map((name) => ({ label: name, type: "constant", detail: "secret" })),
          validFor: /^[\w.\-]*$/,
        };
      }

      const typed = TYPE.exec(before);
      if (typed) {
        // A quoted value: complete what follows the quote.
        const word = typed[1].replace(/^["']/, "");
        const data = await load();
        if (!data || context.aborted) {
          return null;
        }
        // Filtered here rather than by CodeMirror, whose matcher takes a one-letter query only
        // at the start of a name: typing "L" must already offer io.kestra.plugin.core.log.Log.
        // Best first: the full name starts with what is typed, then the short name does, then
        // the full name holds it; letter case does not matter.
        const query = word.toLowerCase();
        const options = [];
        for (const type of data.tasks.keys()) {
          const short = type.slice(type.lastIndexOf(".") + 1);
          const full = type.toLowerCase();
          let boost;
          if (full.startsWith(query)) {
            boost = 3;
          } else if (short.toLowerCase().startsWith(query)) {
            boost = 2;
          } else if (full.includes(query)) {
            boost = 1;
          } else {
            continue;
          }
          options.push({ label: type, detail: short, type: "class", boost });
        }
        options.sort((a, b) => b.boost - a.boost || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
        return {
          from: context.pos - word.length,
          options,
          filter: false,
          // Underline the part of each name that matches, as CodeMirror does when it filters.
          getMatch: (option) => {
            const full = option.label.toLowerCase();
            const short = full.lastIndexOf(".") + 1;
            const at = !query ? -1
              : full.startsWith(query) ? 0
              : full.startsWith(query, short) ? short
              : full.indexOf(query);
            return at < 0 ? [] : [at, at + query.length];
          },
        };
      }

      // A key being typed: nothing but spaces after the cursor, and at least a letter typed
      // (or completion asked for with Ctrl-Space).
      const key = KEY_POSITION.exec(before);
      if (!key || /\S/.test(after) || (!key[3] && !context.explicit)) {
        return null;
      }
      const column = key[1].length + (key[2] ? key[2].length : 0);
      const around = mappingAround(context.state.doc, line.number, column, !!key[2]);
      const data = await load();
      if (!data || context.aborted) {
        return null;
      }
      let names;
      if (column === 0) {
        names = data.keys;
      } else if (around.type && data.tasks.has(around.type)) {
        names = data.tasks.get(around.type);
      } else if (around.listItem && !around.type) {
        // A new item with no type yet: what every task (and input) starts with.
        names = ["id", "type"];
      } else {
        return null;
      }
      const options = names
        .filter((name) => !around.keys.has(name))
        .map((name) => ({ label: name, apply: `${name}: `, type: "property" }));
      if (!options.length) {
        return null;
      }
      return { from: context.pos - key[3].length, options, validFor: /^[\w\-]*$/ };
    } catch (_) {
      return null;
    }
  };
}

// ---------------------------------------------------------------------------------------

function mount() {
  const textarea = document.querySelector("textarea#source");
  if (!textarea || textarea.dataset.editorMounted) {
    return;
  }
  // Without constructable stylesheets CodeMirror's styles would be refused by the page's
  // CSP; the plain textarea is better than an unstyled editor.
  if (!window.ShadowRoot || !window.CSSStyleSheet || !("adoptedStyleSheets" in ShadowRoot.prototype)) {
    return;
  }
  textarea.dataset.editorMounted = "yes";
  const form = textarea.form || textarea.closest("form");

  const submit = () => {
    if (form) {
      if (typeof form.requestSubmit === "function") {
        form.requestSubmit();
      } else {
        form.submit();
      }
    }
    return true;
  };

  const dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const looks = new Compartment();

  // The accessible name is given here, not by the page's <label for="source">: ids do not
  // reach into a shadow root. For the same reason a description the textarea refers to
  // (aria-describedby) is copied as text.
  // An explicit tabindex: the text is focusable anyway (contenteditable), but checkers such as
  // axe-core only count a tabindex as keyboard access to the scrolling region around it.
  const contentAttributes = { id: "source-editor", "aria-label": "Flow YAML", tabindex: "0" };
  const describedBy = (textarea.getAttribute("aria-describedby") || "")
    .split(/\s+/)
    .map((id) => (id ? document.getElementById(id) : null))
    .filter(Boolean)
    .map((el) => el.textContent.trim())
    .join(" ");
  if (describedBy) {
    contentAttributes["aria-description"] = describedBy;
  }

  const complete = completer(textarea);

  const extensions = [
    // Ours first, so that they come before CodeMirror's own bindings of the same keys.
    keymap.of([
      { key: "Mod-s", run: submit, preventDefault: true },
      { key: "Mod-Enter", run: submit, preventDefault: true },
    ]),
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    foldGutter(),
    drawSelection(),
    dropCursor(),
    indentOnInput(),
    bracketMatching(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    yaml(),
    EditorState.tabSize.of(2),
    indentUnit.of("  "),
    EditorState.readOnly.of(textarea.readOnly || textarea.disabled),
    layout,
    looks.of(look(!!(dark && dark.matches))),
    EditorView.contentAttributes.of(contentAttributes),
    checker(textarea, form),
    complete ? autocompletion({ override: [complete] }) : [],
    // No indentWithTab: Tab and Shift-Tab keep moving the focus through the page, for those
    // who use a keyboard. Indent with Ctrl-] and Ctrl-[ (Cmd on a Mac), or Enter's
    // automatic indentation.
    keymap.of([
      ...defaultKeymap, ...historyKeymap, ...foldKeymap, ...completionKeymap, ...lintKeymap,
      ...searchKeymap,
    ]),
    // The form posts the textarea: keep it equal to the editor's text.
    EditorView.updateListener.of((update) => {
      if (update.docChanged) {
        textarea.value = update.state.doc.toString();
      }
    }),
  ];

  const host = document.createElement("div");
  host.className = "flow-editor";
  const shadow = host.attachShadow({ mode: "open" });
  textarea.insertAdjacentElement("afterend", host);
  const view = new EditorView({
    state: EditorState.create({ doc: textarea.value, extensions }),
    parent: shadow,
    root: shadow,
  });
  // Hidden, not removed: the form still posts it.
  textarea.hidden = true;

  // The page's label pointed at the textarea, now hidden: it no longer points anywhere (the
  // editor carries the same name, above), and a click on it puts the cursor in the editor.
  const label = form && form.querySelector('label[for="source"]');
  if (label) {
    label.removeAttribute("for");
    label.addEventListener("click", (event) => {
      event.preventDefault();
      view.focus();
    });
  }

  if (dark) {
    const follow = (event) => view.dispatch({ effects: looks.reconfigure(look(event.matches)) });
    if (typeof dark.addEventListener === "function") {
      dark.addEventListener("change", follow);
    } else if (typeof dark.addListener === "function") {
      dark.addListener(follow);
    }
  }

  // The list of violations above the form links to lines ("a[data-line]"): select that line
  // in the editor, as the plain page does in the textarea.
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[data-line]") : null;
    if (!link) {
      return;
    }
    const number = parseInt(link.dataset.line, 10);
    if (!(number > 0)) {
      return;
    }
    event.preventDefault();
    const line = view.state.doc.line(Math.min(number, view.state.doc.lines));
    view.dispatch({
      selection: { anchor: line.from, head: line.to },
      effects: EditorView.scrollIntoView(line.from, { y: "center" }),
    });
    view.focus();
  });

  // Show the server's verdict on the loaded text at once rather than after the first delay.
  if (textarea.dataset.check) {
    forceLinting(view);
  }

  // For browser tests: the view, and a mark on the form once the editor is in place.
  window.kestrelEditor = view;
  if (form) {
    form.dataset.editor = "ready";
    // When the editor became usable, for bench/ui.sh.
    performance.mark("kestrel-editor-ready");
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", mount);
} else {
  mount();
}
