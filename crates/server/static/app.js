// kestrel's UI script: copy buttons, confirmations before a deletion or a kill, live logs of a
// running execution, table and log filters, the "New secret" dialog, and jumping to the line
// of a flow's violation. Every page works without it; with it, they are quicker to use. Text
// is always set as text, never as HTML.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain HTTP on another host: the older way.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var copied = document.execCommand("copy");
    document.body.removeChild(area);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    var label = button.textContent;
    var name = button.getAttribute("aria-label");
    function say(text) {
      button.textContent = text;
      if (name) {
        button.setAttribute("aria-label", text);
      }
    }
    copyText(button.dataset.copy).then(
      function () { say("Copied"); },
      function () { say("Select and copy"); }
    );
    setTimeout(function () {
      button.textContent = label;
      if (name) {
        button.setAttribute("aria-label", name);
      }
    }, 2000);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset.confirm) {
      return;
    }
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (!form.querySelector("input[name=confirmed]")) {
      var confirmed = document.createElement("input");
      confirmed.type = "hidden";
      confirmed.name = "confirmed";
      confirmed.value = "yes";
      form.appendChild(confirmed);
    }
  });

  function cell(row, text, tag) {
    var td = document.createElement("td");
    var holder = tag ? document.createElement(tag) : td;
    holder.textContent = text || "";
    if (tag) {
      td.appendChild(holder);
    }
    row.appendChild(td);
  }

  function follow(body) {
    var source = new EventSource(body.dataset.follow);
    source.addEventListener("log", function (event) {
      var entry = JSON.parse(event.data);
      var row = document.createElement("tr");
      row.className = "level-" + String(entry.level).toLowerCase();
      cell(row, entry.time);
      cell(row, entry.level);
      cell(row, entry.task);
      cell(row, entry.message, "pre");
      row.dataset.task = entry.task || "";
      body.appendChild(row);
      filterLogs();
    });
    source.addEventListener("end", function () {
      source.close();
      // The final states of the execution and its task runs.
      window.location.reload();
    });
  }

  // The log filter: a minimum level, a task, a text; rows that do not match are hidden.
  var LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

  function filterLogs() {
    var form = document.querySelector("form[data-filter=log]");
    var body = document.getElementById("log");
    if (!form || !body) {
      return;
    }
    var level = parseInt(form.elements.level.value, 10) || 0;
    var task = form.elements.task.value;
    var text = form.elements.text.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {
      var rowLevel = LEVELS[row.cells[1].textContent] || 0;
      var shown = rowLevel >= level &&
        (!task || row.dataset.task === task) &&
        (!text || row.textContent.toLowerCase().indexOf(text) >= 0);
      row.hidden = !shown;
    });
  }

  // A table's search: rows whose text does not hold what is typed are hidden.
  function filterRows(form) {
    var table = document.getElementById(form.dataset.table);
    if (!table) {
      return;
    }
    var field = form.elements.q || form.elements.text;
    var text = field.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = text !== "" && row.textContent.toLowerCase().indexOf(text) < 0;
    });
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest("form[data-filter]");
    if (form && form.dataset.filter === "log") {
      filterLogs();
    } else if (form && form.dataset.filter === "rows") {
      filterRows(form);
    }
  });

  // The log filter and the secrets' search work on what the page holds; the flows' and
  // namespaces' searches (their forms have a method) go to the server on Enter, to search
  // every page.
  document.addEventListener("submit", function (event) {
    if (event.target.matches("form[data-filter]:not([method])")) {
      event.preventDefault();
    }
  });

  function jumpToLine(link) {
    var area = document.getElementById("source");
    var line = parseInt(link.dataset.line, 10);
    // A hidden text area has the flow editor (editor.js) in its place, which jumps itself.
    if (!area || area.hidden || !(line > 0)) {
      return;
    }
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) {
      start += lines[i].length + 1;
    }
    var end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    var lineHeight = area.scrollHeight / Math.max(lines.length, 1);
    area.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-line]");
    if (link) {
      event.preventDefault();
      jumpToLine(link);
    }
  });

  // "New secret" opens its form in a modal dialog (Escape or Cancel closes it), open at once
  // when the server sent the form back with an error. Without the script, or a browser without
  // <dialog>, the form unfolds in place.
  function dialogFor(details) {
    var summary = details.querySelector("summary");
    var dialog = document.createElement("dialog");
    dialog.className = "add";
    dialog.setAttribute("aria-labelledby", "add-title");
    var heading = document.createElement("h2");
    heading.id = "add-title";
    heading.textContent = summary.textContent;
    dialog.appendChild(heading);
    while (summary.nextSibling) {
      dialog.appendChild(summary.nextSibling);
    }
    var submit = dialog.querySelector("button[type=submit]");
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", function () { dialog.close(); });
    submit.after(" ", cancel);
    var open = document.createElement("button");
    open.type = "button";
    open.textContent = summary.textContent;
    open.addEventListener("click", function () { dialog.showModal(); });
    var wasOpen = details.open;
    details.replaceWith(open, dialog);
    if (wasOpen) {
      dialog.showModal();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.querySelector("[data-follow]");
    if (body && window.EventSource) {
      follow(body);
    }
    if (typeof HTMLDialogElement === "function") {
      document.querySelectorAll("details.add").forEach(dialogFor);
    }
  });
})();
