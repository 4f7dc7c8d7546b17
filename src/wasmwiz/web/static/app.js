// Behaviour shared by every page: confirmation before destructive forms, copy buttons.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  var done = function (message) {
    if (status) {
      status.textContent = message;
    }
  };
  field.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(
      function () { done("Copied to the clipboard."); },
      function () { done("Press Ctrl+C (or Cmd+C) to copy the selected key."); }
    );
  } else {
    // Plain HTTP pages get no clipboard API; the older command still works there.
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    done(copied ? "Copied to the clipboard." : "Press Ctrl+C (or Cmd+C) to copy the selected key.");
  }
});
