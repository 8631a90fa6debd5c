// Keeps submissions' status, stage and progress current on "your submissions" and on a
// submission's page, by polling the JSON API while they are active. Without JavaScript the
// pages are plain and a reload shows the same. A file, not inline script: the CSP allows
// scripts from this origin only. Text goes in with textContent, never as HTML.
(function () {
  "use strict";

  var ACTIVE = ["queued", "running", "waiting"];
  var INTERVAL_MS = 3000;
  var MAX_INTERVAL_MS = 60000;

  function field(root, name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function setText(root, name, text) {
    var element = field(root, name);
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function render(root, submission) {
    root.dataset.status = submission.status;
    setText(root, "status", submission.status);
    setText(root, "stage", submission.stage || "");
    setText(root, "reason", submission.reason || "");
    setText(root, "percent", submission.progress + " %");
    var bar = field(root, "progress");
    if (bar) {
      bar.value = submission.progress;
    }
    var status = field(root, "status");
    if (status) {
      status.className = "status status-" + submission.status;
    }
    var result = field(root, "set");
    if (result && submission.status === "published" && submission.set_id && !result.firstChild) {
      var link = document.createElement("a");
      link.href = root.dataset.setUrlPattern.replace("2147483647", String(submission.set_id));
      link.textContent = "Open the set";
      result.appendChild(link);
    }
    if (ACTIVE.indexOf(submission.status) === -1) {
      delete root.dataset.live;
    }
  }

  function poll(root, delay) {
    window.setTimeout(function () {
      fetch(root.dataset.submissionUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (submission) {
          render(root, submission);
          if ("live" in root.dataset) {
            poll(root, INTERVAL_MS);
          }
        })
        .catch(function () {
          // Signed out, offline or rate limited: look again later, less often.
          poll(root, Math.min(delay * 2, MAX_INTERVAL_MS));
        });
    }, delay);
  }

  document.querySelectorAll("[data-live][data-submission-url]").forEach(function (root) {
    poll(root, INTERVAL_MS);
  });
})();
