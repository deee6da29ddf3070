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

// Send forms with data-inline-result in the background and show the answer
// in the named element, so the page (and its filters) stay put.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  const targetId = form.dataset.inlineResult;
  if (!targetId || event.defaultPrevented) {
    return;
  }
  event.preventDefault();
  const target = document.getElementById(targetId);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  target.textContent = "Sending…";
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    if (response.ok) {
      target.innerHTML = await response.text();
    } else {
      target.textContent = `The request failed (HTTP ${response.status}). Reload the page and retry.`;
    }
  } catch (error) {
    target.textContent = `The request failed: ${error}`;
  } finally {
    button.disabled = false;
  }
});
