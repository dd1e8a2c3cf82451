/* Evidence KB: progressive enhancement only. Every page works without this file.
   - search suggestions as you type (ARIA combobox with a listbox; arrows, Enter, Escape)
   - copy buttons for citations
   - "/" focuses the search box
   No inline scripts or styles: the Content-Security-Policy forbids them. */
(function () {
  "use strict";

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments, self = this;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }

  function setupSuggestions(input) {
    var list = document.getElementById("q-suggestions");
    var endpoint = input.getAttribute("data-suggest");
    if (!list || !endpoint || !window.fetch) { return; }
    var form = input.form;
    var items = [];
    var active = -1;
    var lastQuery = null;
    var controller = null;

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Suggestions");

    var status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    input.parentNode.appendChild(status);

    function close() {
      list.hidden = true;
      list.textContent = "";
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      for (var i = 0; i < options.length; i++) {
        options[i].setAttribute("aria-selected", i === index ? "true" : "false");
      }
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      var item = items[index];
      if (!item) { return; }
      close();
      if (item.type === "source") {
        window.location.href = "/sources/" + encodeURIComponent(item.id);
        return;
      }
      input.value = item.label;
      form.submit();
    }

    function render(suggestions) {
      list.textContent = "";
      items = suggestions;
      active = -1;
      if (!suggestions.length) { close(); status.textContent = "No suggestions"; return; }
      suggestions.forEach(function (item, index) {
        var li = document.createElement("li");
        li.id = "q-suggestion-" + index;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        var label = document.createElement("span");
        label.className = "label";
        label.textContent = item.label;  // textContent: suggestion text is never parsed as HTML
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = item.type === "source"
          ? "source" + (item.year ? ", " + item.year : "")
          : item.kind + (item.matched && item.matched !== item.label ? " (" + item.matched + ")" : "");
        li.appendChild(label);
        li.appendChild(kind);
        li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(index); });
        list.appendChild(li);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      status.textContent = suggestions.length + " suggestions; use the arrow keys to choose";
    }

    var fetchSuggestions = debounce(function () {
      var query = input.value.trim();
      if (query === lastQuery) { return; }
      lastQuery = query;
      if (query.length < 2) { close(); return; }
      if (controller && controller.abort) { controller.abort(); }
      controller = window.AbortController ? new AbortController() : null;
      fetch(endpoint + "?q=" + encodeURIComponent(query) + "&limit=8",
            { headers: { Accept: "application/json" }, signal: controller ? controller.signal : undefined })
        .then(function (response) { return response.ok ? response.json() : { suggestions: [] }; })
        .then(function (body) { if (input.value.trim() === query) { render(body.suggestions || []); } })
        .catch(function () { /* offline or aborted: the plain form still works */ });
    }, 120);

    input.addEventListener("input", fetchSuggestions);
    input.addEventListener("keydown", function (event) {
      if (list.hidden) {
        if (event.key === "ArrowDown" && input.value.trim().length >= 2) { lastQuery = null; fetchSuggestions(); }
        return;
      }
      if (event.key === "ArrowDown") {
        event.preventDefault();
        highlight(active + 1 >= items.length ? 0 : active + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(active <= 0 ? items.length - 1 : active - 1);
      } else if (event.key === "Enter" && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  function setupCopyButtons() {
    var buttons = document.querySelectorAll("button.copy[data-copy]");
    if (!navigator.clipboard) { return; }  // the text stays selectable by hand
    Array.prototype.forEach.call(buttons, function (button) {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(target.textContent.trim()).then(function () {
          button.textContent = "Copied";
          button.classList.add("copied");
          setTimeout(function () { button.textContent = "Copy"; button.classList.remove("copied"); }, 2000);
        }, function () {
          var range = document.createRange();
          range.selectNodeContents(target);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "Press Ctrl+C";
        });
      });
    });
  }

  function setupShortcuts(input) {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) { return; }
      var tag = (document.activeElement && document.activeElement.tagName) || "";
      if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || document.activeElement.isContentEditable) { return; }
      if (!input) { return; }
      event.preventDefault();
      input.focus();
      input.select();
    });
  }

  function init() {
    var input = document.querySelector("form.search-form input[name=q]");
    if (input) { setupSuggestions(input); }
    setupCopyButtons();
    setupShortcuts(input);
    document.documentElement.classList.add("js");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
