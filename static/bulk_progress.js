/* Formhooks admin, "Send again" page: the progress bars of running backfills and
   replays follow their progress (a JSON poll each second) until they end.
   Without this script the page shows the progress as of its loading. */
(function () {
  "use strict";

  var PERIOD = 1000; /* ms between polls */
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function show(item, progress) {
    item.querySelectorAll("[data-field]").forEach(function (element) {
      var name = element.getAttribute("data-field");
      if (name === "percent") {
        element.value = progress.percent;
        element.textContent = progress.percent + "%";
      } else if (name === "state") {
        element.textContent = item.getAttribute("data-label-" + progress.state) || progress.state;
        element.className = "badge bulk-state bulk-state-" + progress.state;
      } else if (name in progress) {
        element.textContent = format.format(progress[name]);
      }
    });
    if (progress.state !== "running") {
      var cancel = item.querySelector("[data-cancel]");
      if (cancel) { cancel.hidden = true; }
    }
  }

  function follow(item) {
    var url = item.getAttribute("data-progress-url");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (progress) {
          show(item, progress);
          if (progress.state === "running") { window.setTimeout(poll, PERIOD); }
        })
        .catch(function () { /* logged out or offline: the bar stays as it is */ });
    }
    window.setTimeout(poll, PERIOD);
  }

  document.querySelectorAll("[data-progress-url]").forEach(follow);
})();
