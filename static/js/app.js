// Small enhancements for every page; everything works without them.
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  const form = select.form;
  const button = form.querySelector("[data-autosubmit-button]");
  if (button) button.hidden = true;
  select.addEventListener("change", () => form.requestSubmit());
}
