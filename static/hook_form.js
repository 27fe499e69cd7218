/* The REST service page: tag input for the subset of fields, custom header rows,
 * and fields shown only for some choices. Without JavaScript the page still
 * works: a textarea with one field per line, and a few blank header rows. */
(function () {
  "use strict";

  var form = document.getElementById("hook-form");
  if (!form) { return; }
  var editable = !form.querySelector("fieldset[disabled]");

  /* ---- Fields shown only for some choices: data-show-if="name=value" ---- */
  function setupConditional(block) {
    var rule = block.getAttribute("data-show-if").split("=");
    var radios = form.querySelectorAll('input[name="' + rule[0] + '"]');
    function update() {
      var chosen = form.querySelector('input[name="' + rule[0] + '"]:checked');
      var show = chosen ? chosen.value === rule[1] : true;
      block.hidden = !show;
      // A hidden wrapper is not sent: it only applies to JSON.
      block.querySelectorAll("textarea").forEach(function (area) { area.disabled = !show || !editable; });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  }
  form.querySelectorAll("[data-show-if]").forEach(setupConditional);

  /* ---- Tag input over the subset textarea ---- */
  function setupTags(container) {
    var area = container.querySelector("textarea");
    var label = container.querySelector("label");
    var keysHelp = container.querySelector(".js-only");
    var tags = area.value.split("\n").map(function (t) { return t.trim(); }).filter(Boolean);

    var box = document.createElement("div");
    box.className = "tag-input";
    var list = document.createElement("ul");
    list.className = "tags";
    var input = document.createElement("input");
    input.type = "text";
    input.hidden = !editable;
    input.id = area.id + "-entry";
    input.setAttribute("autocomplete", "off");
    input.setAttribute("spellcheck", "false");
    input.setAttribute("aria-describedby", [area.getAttribute("aria-describedby"), keysHelp ? keysHelp.id : ""].join(" ").trim());
    if (area.getAttribute("aria-invalid")) { input.setAttribute("aria-invalid", "true"); }
    input.disabled = !editable;
    var live = document.createElement("span");
    live.className = "visually-hidden";
    live.setAttribute("aria-live", "polite");
    box.appendChild(list);
    box.appendChild(input);
    area.parentNode.insertBefore(box, area.nextSibling);
    area.parentNode.insertBefore(live, box.nextSibling);
    area.hidden = true;
    if (keysHelp && editable) { keysHelp.hidden = false; }
    if (label) { label.setAttribute("for", input.id); }

    function sync() { area.value = tags.join("\n"); }

    function render() {
      list.textContent = "";
      tags.forEach(function (tag, index) {
        var item = document.createElement("li");
        item.className = "tag";
        var text = document.createElement("span");
        text.textContent = tag;
        item.appendChild(text);
        if (editable) {
          var remove = document.createElement("button");
          remove.type = "button";
          remove.textContent = "×";
          remove.setAttribute("aria-label", (box.dataset.removeLabel || "Remove") + " " + tag);
          remove.addEventListener("click", function () { removeAt(index); input.focus(); });
          item.appendChild(remove);
        }
        list.appendChild(item);
      });
      sync();
    }

    function add(raw) {
      var added = false;
      raw.split(/[\s]+/).forEach(function (piece) {
        var tag = piece.trim();
        if (tag && tags.indexOf(tag) === -1) { tags.push(tag); added = true; live.textContent = "+ " + tag; }
      });
      input.value = "";
      render();
      return added;
    }

    function removeAt(index) {
      var removed = tags.splice(index, 1);
      live.textContent = "− " + removed[0];
      render();
    }

    box.dataset.removeLabel = container.getAttribute("data-remove-label") || "Remove";
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || (event.key === "Tab" && !event.shiftKey && input.value.trim())) {
        event.preventDefault();
        add(input.value);
      } else if (event.key === "Backspace" && input.value === "" && tags.length) {
        event.preventDefault();
        removeAt(tags.length - 1);
      }
    });
    input.addEventListener("paste", function (event) {
      var text = (event.clipboardData || window.clipboardData).getData("text");
      if (/[\s]/.test(text.trim())) { event.preventDefault(); add(text); }
    });
    box.addEventListener("click", function (event) { if (event.target === box) { input.focus(); } });
    // Text typed but not yet added still counts when the form is sent.
    form.addEventListener("submit", function () { if (input.value.trim()) { add(input.value); } });
    render();
  }
  form.querySelectorAll("[data-tag-input]").forEach(setupTags);

  /* ---- Custom header rows: add and remove ---- */
  function setupRows(container) {
    var rows = container.querySelector("[data-rows]");
    var template = container.querySelector("template[data-row-template]");
    var addButton = container.querySelector("[data-add-row]");
    if (!editable) { return; }

    function nextIndex() {
      var max = -1;
      rows.querySelectorAll("input[name^='custom_headers-']").forEach(function (input) {
        var match = /^custom_headers-(\d+)-/.exec(input.name);
        if (match) { max = Math.max(max, parseInt(match[1], 10)); }
      });
      return max + 1;
    }

    function wire(row) {
      var remove = row.querySelector("[data-remove-row]");
      remove.hidden = false;
      remove.addEventListener("click", function () {
        var next = row.nextElementSibling || row.previousElementSibling;
        row.parentNode.removeChild(row);
        var focusTarget = next ? next.querySelector("input") : addButton;
        focusTarget.focus();
      });
    }

    function addRow() {
      var html = template.innerHTML.replace(/__INDEX__/g, String(nextIndex()));
      var holder = document.createElement("div");
      holder.innerHTML = html.trim();
      var row = holder.firstElementChild;
      rows.appendChild(row);
      wire(row);
      return row;
    }

    function isBlank(row) {
      var inputs = row.querySelectorAll("input[type='text']");
      var original = row.querySelector("input[type='hidden']");
      return !inputs[0].value && !inputs[1].value && !(original && original.value);
    }

    rows.querySelectorAll("[data-row]").forEach(function (row) {
      if (isBlank(row)) { row.parentNode.removeChild(row); } else { wire(row); }
    });
    if (!rows.querySelector("[data-row]")) { addRow(); }
    addButton.hidden = false;
    addButton.addEventListener("click", function () { addRow().querySelector("input").focus(); });
  }
  form.querySelectorAll("[data-header-rows]").forEach(setupRows);
})();
