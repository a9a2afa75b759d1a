// kestrel's UI script: copy buttons, confirmations before a deletion or a kill, live logs of a
// running execution, and jumping to the line of a flow's violation. Every page works without
// it; with it, they are quicker to use. Text is always set as text, never as HTML.
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
    var text = form.elements.text.value.toLowerCase();
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

  document.addEventListener("submit", function (event) {
    if (event.target.matches("form[data-filter]")) {
      event.preventDefault();
    }
  });

  function jumpToLine(link) {
    var area = document.getElementById("source");
    var line = parseInt(link.dataset.line, 10);
    if (!area || !(line > 0)) {
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

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.querySelector("[data-follow]");
    if (body && window.EventSource) {
      follow(body);
    }
  });
})();
