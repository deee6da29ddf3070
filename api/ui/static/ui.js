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
