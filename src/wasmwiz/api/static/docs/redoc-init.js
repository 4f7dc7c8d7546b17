// Starts ReDoc on /redoc. Kept out of the page so it runs under `script-src 'self'`.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("redoc");
  Redoc.init(
    root.dataset.specUrl,
    {
      expandResponses: "200",
      pathInMiddlePanel: true,
      // Search runs in a worker made from a blob: URL, which `script-src 'self'` forbids.
      disableSearch: true,
    },
    root
  );
});
