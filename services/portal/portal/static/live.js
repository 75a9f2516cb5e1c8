/* Progressive enhancement of pages that follow work in progress (a matching run): while the region marked
   data-live="true" is live, fetch the same page every two seconds and put the region's fresh content in place.
   Without JavaScript the page's own "refresh" link does the same. A region marked data-reload-when-done="true"
   (a plan job's) loads the whole page once the work has ended, which then says how it went. The requests carry
   X-Live-Region, so the page answers with the region rather than moving on. No inline script: the CSP allows
   only this file from this origin. */
(function () {
  "use strict";
  var region = document.getElementById("live-region");
  if (!region || region.getAttribute("data-live") !== "true") {
    return;
  }
  function poll() {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html", "X-Live-Region": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-region");
        if (!fresh) {
          return;
        }
        region.innerHTML = fresh.innerHTML;
        region.setAttribute("data-live", fresh.getAttribute("data-live") || "");
        if (fresh.getAttribute("data-live") === "true") {
          window.setTimeout(poll, 2000);
        } else if (region.getAttribute("data-reload-when-done") === "true") {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
