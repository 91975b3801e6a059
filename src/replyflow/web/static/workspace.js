/* The workspace's only script of its own (no inline scripts: the Content-Security-Policy forbids them).
 * - textarea[data-counter]: live "n / max" character counter; with data-ticket, the text must keep
 *   that ticket ID (the server checks both again).
 * - select[data-fills]: choosing a canned response puts its text into the textarea it names. */
(function () {
  "use strict";

  function check(area) {
    var counter = document.getElementById(area.dataset.counter);
    var max = parseInt(area.getAttribute("maxlength") || "280", 10);
    var length = area.value.length;
    var problem = "";
    if (area.dataset.ticket && area.value.indexOf(area.dataset.ticket) < 0) {
      problem = "The ticket ID " + area.dataset.ticket + " must stay in the reply.";
    }
    area.setCustomValidity(problem);
    if (counter) {
      counter.textContent = length + " / " + max + (problem ? " · " + problem : "");
      counter.classList.toggle("over", length > max || problem !== "");
    }
  }

  function setUp(root) {
    root.querySelectorAll("textarea[data-counter]").forEach(function (area) {
      if (area.dataset.ready) { return; }
      area.dataset.ready = "1";
      area.addEventListener("input", function () { check(area); });
      check(area);
    });
    root.querySelectorAll("select[data-fills]").forEach(function (select) {
      if (select.dataset.ready) { return; }
      select.dataset.ready = "1";
      select.addEventListener("change", function () {
        var option = select.options[select.selectedIndex];
        var target = document.getElementById(select.dataset.fills);
        if (target && option && option.dataset.text) {
          target.value = option.dataset.text;
          target.dispatchEvent(new Event("input"));
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:afterSwap", function (event) { setUp(event.target); });
})();
