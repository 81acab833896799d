// Promoting past the gate asks once more (the server also wants the override ticked and a reason); served as a
// file: the CSP allows no inline script.
document.querySelectorAll(".promote-form").forEach((form) => form.addEventListener("submit", (event) => {
  const warn = form.dataset.warn;
  const override = form.querySelector("input[name=override]");
  if (warn && override && override.checked && !confirm(`Promote anyway? ${warn}.`)) event.preventDefault();
  else form.querySelector("button").disabled = true;
}));
