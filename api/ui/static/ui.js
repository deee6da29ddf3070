// Small enhancements; every page also works without JavaScript.
"use strict";

// Ask before actions that are hard to undo (forms with data-confirm).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// While a slow action runs (forms with data-busy), say so on its button and
// keep it from being pressed twice. The form is submitted as usual.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const busy = form.dataset.busy;
  if (!busy || event.defaultPrevented) {
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.textContent = busy;
  button.disabled = true;
});

// Copy buttons (data-copy: the id of the element whose text they copy) are
// hidden in the page and shown here, where the clipboard can be reached.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy it by hand";
    }
  });
}
