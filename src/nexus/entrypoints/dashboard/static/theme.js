// Applied before the page paints, so a dark theme never flashes light.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("nexus-theme"); } catch (e) { /* storage may be off */ }
  if (saved === "light" || saved === "dark") { document.documentElement.setAttribute("data-theme", saved); }
})();
