// redraft's page script, loaded from a file (the server) or inlined with its hash in the page's
// Content-Security-Policy (the static file): no inline script runs that the policy did not list.
(function () {
  "use strict";

  // Click a highlighted span: show its corpus sources (one panel per span; the page's data is inline).
  document.addEventListener("click", function (event) {
    var mark = event.target.closest("mark.span");
    if (!mark) return;
    var panel = document.getElementById(mark.dataset.info);
    if (!panel) return;
    var open = panel.classList.toggle("open");
    mark.classList.toggle("selected", open);
  });

  // Charts: Vega-Lite specs from JSON blocks, run by Vega's expression interpreter (ast: true), so
  // the policy needs no 'unsafe-eval' (Vega's default compiles expressions with Function()).
  if (window.vega && window.vegaLite) {
    document.querySelectorAll(".chart").forEach(function (el) {
      var spec = JSON.parse(document.getElementById(el.dataset.specId).textContent);
      var runtime = vega.parse(vegaLite.compile(spec).spec, null, { ast: true });
      new vega.View(runtime, { expr: vega.expressionInterpreter, renderer: "svg", container: el, hover: true }).runAsync();
    });
  }

  // One file holds every example: the filters hide rows here instead of asking a server.
  var form = document.getElementById("filters");
  // getAttribute: a form's "dataset" property is its control named "dataset", not its data attributes.
  if (form && form.getAttribute("data-local") === "1") {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var f = new FormData(event.target), shown = 0;
      var dataset = f.get("dataset"), critic = f.get("critic"), change = f.get("change"), verdict = f.get("verdict");
      document.querySelectorAll("#examples tr.row").forEach(function (tr) {
        var has = function (list, name) { return (" " + tr.dataset[list] + " ").indexOf(" " + name + " ") >= 0; };
        var any = function (list) { return tr.dataset[list].trim() !== ""; };
        var ok = (!dataset || tr.dataset.dataset === dataset) && (!change || tr.dataset.change === change)
          && (!critic || has("critics", critic))
          && (!verdict || (critic ? has(verdict, critic) : (verdict === "wrong" ? any("wrong") : any("right") && !any("wrong"))));
        tr.style.display = ok ? "" : "none";
        if (ok) shown += 1;
      });
      document.getElementById("count").textContent = shown + " shown";
    });
  }
})();
