// The playground: pick or paste a module, check it against the server's limits, run it
// through POST /upload and show the result. Output is always shown as text, never HTML;
// the files a run wrote are offered as downloads made here from their base64 content.
"use strict";

(function () {
  var form = document.getElementById("run-form");
  if (!form) {
    return;
  }
  var limits = {
    wasm: Number(form.dataset.maxWasmSize),
    input: Number(form.dataset.maxInputSize),
    files: Number(form.dataset.maxFilesSize),
    fileCount: Number(form.dataset.maxFiles)
  };
  var $ = function (id) { return document.getElementById(id); };
  var fileInput = $("wasm-file");
  var dropzone = $("dropzone");
  var source = $("wat-source");
  var stdin = $("stdin");
  var formError = $("form-error");
  var runButton = $("run-button");
  var progress = $("progress");
  var progressBar = $("progress-bar");
  var progressText = $("progress-text");
  var resultPanel = $("result");
  var runFiles = $("run-files");
  var selectedFile = null;
  var mode = "file";
  var collectAsked = false;
  var fileUrls = [];

  var OUTCOMES = {
    success: "The program finished normally.",
    exit_nonzero: "The program exited with a non-zero code.",
    trap: "The program crashed (a WebAssembly trap).",
    timeout: "Stopped: the program ran past the time limit.",
    memory_limit: "Stopped: the program needed more memory than allowed.",
    stack_overflow: "Stopped: the call stack overflowed.",
    output_limit: "Stopped: the program printed more than the output limit.",
    fuel_exhausted: "Stopped: the program used up its fuel budget."
  };

  function formatBytes(bytes) {
    if (bytes < 1024) { return bytes + " B"; }
    if (bytes < 1024 * 1024) { return (bytes / 1024).toFixed(1) + " KiB"; }
    return (bytes / (1024 * 1024)).toFixed(1) + " MiB";
  }

  function showError(message) {
    formError.textContent = message;
    formError.hidden = false;
  }

  function clearError() {
    formError.textContent = "";
    formError.hidden = true;
  }

  // Tabs: file or pasted text, with arrow-key movement as the ARIA pattern asks.
  var tabs = [$("tab-file"), $("tab-text"), $("tab-runtime")];
  function selectTab(tab) {
    tabs.forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    });
    mode = { "tab-text": "text", "tab-runtime": "runtime" }[tab.id] || "file";
    // A runtime's program is its stdin: the input field has nothing to give it.
    $("stdin-field").hidden = mode === "runtime";
  }
  tabs.forEach(function (tab, index) {
    tab.addEventListener("click", function () { selectTab(tab); });
    tab.addEventListener("keydown", function (event) {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        var next = tabs[(index + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
        selectTab(next);
        next.focus();
        event.preventDefault();
      }
    });
  });

  function chooseFile(file) {
    selectedFile = file || null;
    $("file-name").textContent = file ? file.name + " (" + formatBytes(file.size) + ")" : "";
    clearError();
    if (file) {
      var problem = checkFile(file);
      if (problem) { showError(problem); }
    }
  }

  function checkFile(file) {
    var name = file.name.toLowerCase();
    if (!name.endsWith(".wasm") && !name.endsWith(".wat")) {
      return "“" + file.name + "” is not a WebAssembly file: choose a .wasm or .wat file.";
    }
    if (file.size > limits.wasm) {
      return "“" + file.name + "” is " + formatBytes(file.size) + "; the limit is " +
        formatBytes(limits.wasm) + ". Strip debug info or optimise the module for size.";
    }
    if (file.size === 0) {
      return "“" + file.name + "” is empty.";
    }
    return null;
  }

  fileInput.addEventListener("change", function () { chooseFile(fileInput.files[0]); });
  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add("is-dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function () { dropzone.classList.remove("is-dragging"); });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer.files.length) {
      chooseFile(event.dataTransfer.files[0]);
    }
  });

  // Arguments split like a shell would: spaces separate, quotes group. A quote left open
  // is refused rather than passed on as a character of the argument.
  function splitWords(text, what) {
    var words = [];
    var pattern = /"([^"]*)"|'([^']*)'|([^\s"']+)|(["'])/g;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      if (match[4] !== undefined) {
        throw new Error(what + " have a " + match[4] + " that is never closed: close it, or " +
          "put it inside the other kind of quotes.");
      }
      words.push(match[1] !== undefined ? match[1] : match[2] !== undefined ? match[2] : match[3]);
    }
    return words;
  }

  function parseEnv(text) {
    var env = {};
    var words = splitWords(text, "The environment variables");
    for (var i = 0; i < words.length; i++) {
      var at = words[i].indexOf("=");
      if (at < 1) {
        throw new Error("“" + words[i] + "” is not a NAME=value pair.");
      }
      env[words[i].slice(0, at)] = words[i].slice(at + 1);
    }
    return env;
  }

  function buildForm() {
    var data = new FormData();
    if (mode === "runtime") {
      var program = $("program").value;
      if (!program.trim()) {
        throw new Error("Write a program first, or pick Run JavaScript or Run Lua above.");
      }
      var code = new Blob([program]);
      if (code.size > limits.input) {
        throw new Error("The program is " + formatBytes(code.size) + "; the limit is " + formatBytes(limits.input) + ".");
      }
      data.append("module", $("runtime").value);
      data.append("input", code, "program");
      appendArgsAndEnv(data);
      appendFiles(data);
      return data;
    }
    if (mode === "file") {
      if (!selectedFile) {
        throw new Error("Choose a .wasm or .wat file first, or paste WebAssembly text.");
      }
      var problem = checkFile(selectedFile);
      if (problem) { throw new Error(problem); }
      data.append("wasm", selectedFile, selectedFile.name);
    } else {
      var text = source.value;
      if (!text.trim()) {
        throw new Error("Paste some WebAssembly text first, or pick an example.");
      }
      var blob = new Blob([text], { type: "text/plain" });
      if (blob.size > limits.wasm) {
        throw new Error("The text is " + formatBytes(blob.size) + "; the limit is " + formatBytes(limits.wasm) + ".");
      }
      data.append("wasm", blob, "main.wat");
    }
    var input = new Blob([stdin.value]);
    if (input.size > limits.input) {
      throw new Error("The input is " + formatBytes(input.size) + "; the limit is " + formatBytes(limits.input) + ".");
    }
    if (input.size) { data.append("input", input, "stdin"); }
    appendArgsAndEnv(data);
    appendFiles(data);
    return data;
  }

  function appendArgsAndEnv(data) {
    var args = splitWords($("args").value, "The arguments");
    if (args.length) { data.append("args", JSON.stringify(args)); }
    var env = parseEnv($("env").value);
    if (Object.keys(env).length) { data.append("env", JSON.stringify(env)); }
  }

  // Each chosen file is a `files` part named as the file: its path in the run's directory.
  function appendFiles(data) {
    var chosen = Array.prototype.slice.call(runFiles.files);
    if (chosen.length > limits.fileCount) {
      throw new Error(chosen.length + " files are chosen; a run takes at most " + limits.fileCount + ".");
    }
    var total = chosen.reduce(function (sum, file) { return sum + file.size; }, 0);
    if (total > limits.files) {
      throw new Error("The files are " + formatBytes(total) + " in all; the limit is " + formatBytes(limits.files) + ".");
    }
    chosen.forEach(function (file) { data.append("files", file, file.name); });
    var patterns = splitWords($("collect").value, "The patterns to collect");
    if (patterns.length) { data.append("collect", JSON.stringify(patterns)); }
  }

  function setBusy(busy, message) {
    if (!busy) { resultPanel.removeAttribute("aria-busy"); }
    runButton.disabled = busy;
    runButton.textContent = busy ? "Running…" : "Run";
    progress.hidden = !busy;
    if (message) { progressText.textContent = message; }
  }

  function problemMessage(status, text) {
    var problem = null;
    try { problem = JSON.parse(text); } catch (error) { problem = null; }
    if (problem && problem.detail) {
      var prefix = {
        401: "You are signed out. ",
        403: "Not allowed. ",
        413: "Too large. ",
        422: "The module was refused. ",
        429: "Slow down. ",
        503: "The service is busy. "
      }[status] || "";
      return prefix + problem.detail;
    }
    return "The server answered with an error (HTTP " + status + "). Try again in a moment.";
  }

  function showStream(name, stream) {
    var pre = $(name);
    var note = $(name + "-note");
    var link = $(name + "-download");
    pre.textContent = stream.text;
    var notes = [];
    if (stream.truncated) { notes.push("Truncated: only the first " + formatBytes(stream.bytes) + " are kept."); }
    if (stream.binary) { notes.push("Binary output: shown with replacement characters."); }
    note.textContent = notes.join(" ");
    if (link.href) { URL.revokeObjectURL(link.href); }
    if (stream.binary && stream.base64) {
      link.href = downloadUrl(stream.base64);
      link.hidden = false;
    } else {
      link.removeAttribute("href");
      link.hidden = true;
    }
  }

  // A blob: URL of the bytes base64 holds, to download as they are.
  function downloadUrl(base64) {
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  }

  // The files the run wrote that `collect` matched: each a download named as the file,
  // or, past the server's cap on collected files, its path and size only.
  function showFiles(files, truncated) {
    fileUrls.forEach(function (url) { URL.revokeObjectURL(url); });
    fileUrls = [];
    var list = $("files-list");
    list.textContent = "";
    $("files-section").hidden = !collectAsked && files.length === 0;
    $("files-empty").hidden = files.length > 0;
    $("files-note").textContent = truncated ?
      "Some files were too large to send back: they passed the limit on collected files." : "";
    files.forEach(function (file) {
      var item = document.createElement("li");
      var size = document.createElement("span");
      size.className = "file-size";
      size.textContent = formatBytes(file.size);
      var name;
      if (file.content === null) {
        name = document.createElement("span");
        size.textContent += ", not sent back";
      } else {
        name = document.createElement("a");
        name.href = downloadUrl(file.content);
        name.download = file.path.split("/").pop();
        fileUrls.push(name.href);
      }
      name.className = "file-path";
      name.textContent = file.path;
      item.appendChild(name);
      item.appendChild(size);
      list.appendChild(item);
    });
  }

  // One sentence per outcome: the server's `error` repeats the outcome's name ("trap: …")
  // and, for a non-zero exit, only the code, which the sentence already says.
  function outcomeMessage(result) {
    if (result.status === "exit_nonzero") {
      return "The program exited with code " + result.exit_code + ".";
    }
    var message = OUTCOMES[result.status] || "";
    if (result.error && result.status !== "success") {
      var detail = result.error.replace(new RegExp("^" + result.status + ": "), "");
      message += " " + detail.charAt(0).toUpperCase() + detail.slice(1);
      if (!/[.!?]$/.test(message)) { message += "."; }
    }
    return message;
  }

  function showResult(result) {
    resultPanel.classList.remove("is-running");
    $("result-empty").hidden = true;
    $("result-body").hidden = false;
    var badge = $("result-status");
    badge.textContent = result.status;
    badge.className = "badge badge-" + result.status;
    $("result-message").textContent = outcomeMessage(result);
    $("stat-exit").textContent = result.exit_code === null ? "—" : String(result.exit_code);
    $("stat-duration").textContent = result.duration_ms < 1000 ? result.duration_ms.toFixed(1) + " ms" : (result.duration_ms / 1000).toFixed(2) + " s";
    $("stat-memory").textContent = formatBytes(result.memory_peak_bytes);
    // Fuel is counted only for a run with a fuel budget (null otherwise). After a timeout
    // the count is only what was stored at the guest's last call: say so.
    $("stat-fuel").textContent = result.fuel_consumed === null ? "not metered" :
      result.fuel_consumed_is_lower_bound ?
        "at least " + result.fuel_consumed.toLocaleString("en") + " (stopped by the time limit)" :
        result.fuel_consumed.toLocaleString("en");
    showStream("stdout", result.stdout);
    showStream("stderr", result.stderr);
    showFiles(result.files, result.files_truncated);
  }

  // A refusal (429, 422, 503…) is this run's result: shown in the panel, not below the form.
  function showRefusal(status, message) {
    resultPanel.classList.remove("is-running");
    $("result-empty").hidden = true;
    $("result-body").hidden = false;
    var badge = $("result-status");
    badge.textContent = "refused (" + status + ")";
    badge.className = "badge badge-refused";
    $("result-message").textContent = message;
    ["stat-exit", "stat-duration", "stat-memory", "stat-fuel"].forEach(function (id) {
      $(id).textContent = "—";
    });
    var nothing = { text: "", truncated: false, binary: false, bytes: 0 };
    showStream("stdout", nothing);
    showStream("stderr", nothing);
    collectAsked = false;
    showFiles([], false);
  }

  function run() {
    clearError();
    var data;
    try {
      data = buildForm();
    } catch (error) {
      showError(error.message);
      return;
    }
    collectAsked = data.has("collect");
    var request = new XMLHttpRequest();
    request.open("POST", "/upload");
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        progressBar.value = Math.round((event.loaded / event.total) * 100);
        progressText.textContent = "Uploading… " + progressBar.value + "%";
      }
    });
    request.upload.addEventListener("load", function () {
      progressBar.removeAttribute("value");
      progressText.textContent = "Running…";
    });
    request.addEventListener("load", function () {
      setBusy(false);
      if (request.status === 200) {
        showResult(JSON.parse(request.responseText));
      } else {
        showRefusal(request.status, problemMessage(request.status, request.responseText));
      }
    });
    request.addEventListener("error", function () {
      setBusy(false);
      showRefusal("no answer", "The request did not reach the server. Check your connection and try again.");
    });
    // The previous result stays readable but dimmed, marked as not this run's, until the answer.
    resultPanel.classList.add("is-running");
    resultPanel.setAttribute("aria-busy", "true");
    $("result-status").textContent = "running…";
    $("result-status").className = "badge";
    $("result-message").textContent = "";
    $("result-empty").textContent = "Running…";
    progressBar.value = 0;
    setBusy(true, "Uploading…");
    request.send(data);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run();
  });

  document.querySelectorAll("[data-runtime]").forEach(function (button) {
    button.addEventListener("click", function () {
      $("runtime").value = button.getAttribute("data-runtime");
      $("program").value = button.getAttribute("data-program");
      selectTab($("tab-runtime"));
      run();
    });
  });

  document.querySelectorAll("[data-example]").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = button.getAttribute("data-example");
      fetch("/examples/" + encodeURIComponent(name) + ".wat", { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("The example could not be loaded."); }
          return response.text();
        })
        .then(function (text) {
          source.value = text;
          stdin.value = button.getAttribute("data-stdin") || "";
          selectTab($("tab-text"));
          run();
        })
        .catch(function (error) { showError(error.message); });
    });
  });
})();
