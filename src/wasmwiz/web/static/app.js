// Behaviour shared by every page: confirmation before destructive forms, copy buttons,
// and lists whose rows are chosen with check boxes for one form (the keys page).
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

// A form's check boxes are the inputs that name it (`form="<id>"`), so they can sit in
// table rows that have forms of their own. Without this script the form still works: the
// server answers an empty selection with a message.
function chosenBoxes(form) {
  return document.querySelectorAll('input[type="checkbox"][form="' + form.id + '"]');
}

function showSelection(form) {
  var boxes = chosenBoxes(form);
  var count = 0;
  boxes.forEach(function (box) {
    if (box.checked) {
      count += 1;
    }
  });
  var template = form.getAttribute("data-confirm-count");
  if (template) {
    form.setAttribute("data-confirm", template.replace("{count}", String(count)));
  }
  form.querySelectorAll("[data-needs-selection]").forEach(function (button) {
    button.disabled = count === 0;
  });
  var all = document.querySelector('[data-select-all="' + form.id + '"]');
  if (all) {
    all.checked = count > 0 && count === boxes.length;
    all.indeterminate = count > 0 && count < boxes.length;
  }
}

document.addEventListener("change", function (event) {
  var box = event.target;
  var formId = box.getAttribute("data-select-all") || box.getAttribute("form");
  var form = formId ? document.getElementById(formId) : null;
  if (!form || !form.hasAttribute("data-confirm-count")) {
    return;
  }
  if (box.hasAttribute("data-select-all")) {
    chosenBoxes(form).forEach(function (other) {
      other.checked = box.checked;
    });
  }
  showSelection(form);
});

document.querySelectorAll("form[data-confirm-count]").forEach(function (form) {
  var all = document.querySelector('[data-select-all="' + form.id + '"]');
  if (all && chosenBoxes(form).length > 0) {
    all.hidden = false;
  }
  showSelection(form);
});
