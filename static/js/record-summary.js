// The record summary's "Print" button (templates/fhir/summary.html): shown
// only where JavaScript runs, since printing needs it; the browser's own
// print command works everywhere.
for (const button of document.querySelectorAll("[data-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
