// Promote asks before overriding a warning (the gate's reasons); served as a file: the CSP allows no inline script.
document.querySelectorAll(".promote-form").forEach((form) => form.addEventListener("submit", (event) => {
  const warn = form.dataset.warn;
  if (warn && !confirm(`Promote anyway? ${warn}.`)) event.preventDefault();
  else form.querySelector("button").disabled = true;
}));
