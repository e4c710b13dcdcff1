/*
 * Progressive enhancement of the forms that overrides/hooks/forms.py renders.
 *
 * Without this script a form posts as plain HTML and the service answers
 * with a redirect or an error page. With it, problems are shown next to
 * their fields and in a summary, files are checked before a long upload,
 * the upload shows progress, and a lost connection keeps what was typed.
 * What is typed is also kept as a draft in this tab (sessionStorage), so
 * that a reload or a tab the phone dropped loses nothing, until the service
 * accepts the form; then the thank-you page's text is shown in place before
 * that page is opened, so a connection lost at that moment still leaves
 * the person told that they were heard.
 * Every text comes from the page (data-* attributes and a template rendered
 * from the catalogues and the thank-you page), so this file holds no
 * language of its own.
 */
(function () {
  "use strict";

  /* Fields whose rendered constraints we check before sending: the same
     checks the browser would do, but with the page's own messages. */
  function problemOf(control) {
    if (control.type === "file") {
      return fileProblem(control);
    }
    if (control.validity.valueMissing) {
      return control.dataset.errorRequired;
    }
    if (control.validity.typeMismatch) {
      return control.dataset.errorEmail;
    }
    return "";
  }

  /* A file is refused here rather than after minutes of upload on a weak line. */
  function fileProblem(input) {
    var file = input.files[0];
    if (!file) {
      return input.required ? input.dataset.errorRequired : "";
    }
    if (!accepted(file, input.accept)) {
      return input.dataset.errorFileType;
    }
    if (file.size > Number(input.dataset.maxBytes)) {
      return input.dataset.errorFileTooBig;
    }
    return "";
  }

  /* The accept attribute lists extensions and MIME types; either may match. */
  function accepted(file, accept) {
    var name = file.name.toLowerCase();
    return accept.split(",").some(function (token) {
      token = token.trim().toLowerCase();
      return token.charAt(0) === "." ? name.endsWith(token) : token === file.type;
    });
  }

  /* Whether the select an element's condition names (data-<kind>-when) holds one of its values. */
  function holds(form, element, kind) {
    var control = form.elements.namedItem(element.dataset[kind + "When"]);
    return element.dataset[kind + "Values"].split(" ").indexOf(control ? control.value : "") !== -1;
  }

  /* The definition's conditions, as form.html renders them: a field required only for some
     answers (the phone, for a call) and a question asked only for some (which other language).
     A question not asked is disabled, so its value is not sent. */
  function applyConditions(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-required-when]"), function (control) {
      control.required = holds(form, control, "required");
    });
    Array.prototype.forEach.call(form.querySelectorAll("[data-shown-when]"), function (field) {
      var shown = holds(form, field, "shown");
      field.hidden = !shown;
      Array.prototype.forEach.call(field.querySelectorAll("[name]"), function (control) {
        control.disabled = !shown;
      });
    });
  }

  /* Every problem found without asking the service: name -> message. */
  function localProblems(form) {
    var problems = {};
    Array.prototype.forEach.call(form.elements, function (control) {
      var problem = control.name && control.willValidate ? problemOf(control) : "";
      if (problem) {
        problems[control.name] = problem;
      }
    });
    return problems;
  }

  /* aria-describedby keeps the hint and adds or drops the error message. */
  function describe(control, id, present) {
    var ids = (control.getAttribute("aria-describedby") || "").split(" ").filter(function (each) {
      return each && each !== id;
    });
    if (present) {
      ids.unshift(id);
    }
    if (ids.length) {
      control.setAttribute("aria-describedby", ids.join(" "));
    } else {
      control.removeAttribute("aria-describedby");
    }
  }

  /* Show (or, with no message, clear) a field's error right next to it. */
  function markField(control, message) {
    var error = document.getElementById(control.id + "-error");
    error.textContent = message || "";
    error.hidden = !message;
    describe(control, error.id, Boolean(message));
    if (message) {
      control.setAttribute("aria-invalid", "true");
    } else {
      control.removeAttribute("aria-invalid");
    }
  }

  /* The parts of a form the template marks with cch-form__<name> classes. */
  function part(form, name) {
    return form.querySelector(".cch-form__" + name);
  }

  /* The summary at the top: either a list of links to fields, or one message. */
  function showSummary(form, items, message) {
    var summary = part(form, "summary");
    var list = part(form, "summary-list");
    list.replaceChildren.apply(list, items);
    list.hidden = !items.length;
    part(form, "summary-intro").hidden = !items.length;
    part(form, "summary-message").textContent = message || "";
    part(form, "summary-message").hidden = !message;
    summary.hidden = false;
    summary.focus();
  }

  /* "Label: message", in the order and punctuation of the page's language. */
  function summaryItem(form, control, message) {
    var item = document.createElement("li");
    var link = document.createElement("a");
    var label = labelText(control);
    link.href = "#" + control.id;
    link.textContent = label ? fill(form.dataset.summaryItem, { label: label, message: message }) : message;
    item.appendChild(link);
    return item;
  }

  /* Fill {placeholders} as the catalogues write them. */
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? values[key] : whole;
    });
  }

  /* The field's label without the "required" marker or a closing full stop. */
  function labelText(control) {
    var label = control.labels && control.labels[0];
    var text = label && label.querySelector(".cch-form__label");
    return text ? text.textContent.trim().replace(/[.:]$/, "") : "";
  }

  /* Errors by field name, from our checks or the service's 400 answer. */
  function showProblems(form, problems) {
    var items = [];
    Object.keys(problems).forEach(function (name) {
      var control = form.elements.namedItem(name);
      if (control && control.id) {
        markField(control, problems[name]);
        items.push(summaryItem(form, control, problems[name]));
      } else {
        // A page built before the service learned a field: still say it.
        items.push(Object.assign(document.createElement("li"), { textContent: problems[name] }));
      }
    });
    showSummary(form, items, "");
  }

  /* A new attempt starts clean: old errors would mislead. */
  function clearProblems(form) {
    part(form, "summary").hidden = true;
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (control) {
      markField(control, "");
    });
  }

  /* While sending: no second submission, and a visible, labelled progress bar. */
  function setBusy(form, busy) {
    var progress = form.querySelector("progress");
    form.setAttribute("aria-busy", String(busy));
    form.querySelector("[type=submit]").disabled = busy;
    part(form, "sending").hidden = !busy;
    progress.removeAttribute("value");
  }

  /* The kinds of control a draft keeps: what is typed or chosen, never a file, a tick or a hidden value. */
  var DRAFTED = ["text", "email", "tel", "textarea", "select-one"];
  /* How long the confirmation stays at least, to be read (and for a screen reader to begin saying it). */
  var READING_MS = 1500;

  /* This tab's storage, or null where the browser refuses it (then nothing is kept, and nothing said). */
  function tabStorage() {
    try {
      return window.sessionStorage;
    } catch (error) {
      return null;
    }
  }

  function draftKey(form) {
    return "cch-draft:" + form.id;
  }

  function draftedControls(form) {
    return Array.prototype.filter.call(form.elements, function (control) {
      return control.name && DRAFTED.indexOf(control.type) !== -1 && !control.closest(".cch-form__trap");
    });
  }

  /* On every change: one small write, of the fields that hold something. */
  function saveDraft(form) {
    var draft = {};
    draftedControls(form).forEach(function (control) {
      if (control.value) {
        draft[control.name] = control.value;
      }
    });
    try {
      tabStorage().setItem(draftKey(form), JSON.stringify(draft));
    } catch (error) {
      // Storage full or refused: the form works as before, without a draft.
    }
  }

  /* A field the browser already gave back (Back, a restored tab) keeps its value. */
  function restoreDraft(form) {
    var draft;
    try {
      draft = JSON.parse(tabStorage().getItem(draftKey(form))) || {};
    } catch (error) {
      return;
    }
    draftedControls(form).forEach(function (control) {
      if (!control.value && typeof draft[control.name] === "string") {
        control.value = draft[control.name];
      }
    });
  }

  function eraseDraft(form) {
    try {
      tabStorage().removeItem(draftKey(form));
    } catch (error) {
      // Nothing was kept.
    }
  }

  /* Accepted: the draft goes, the form is emptied, and the thank-you page's text takes
     its place, focused (a status, so it is also announced), before that page opens. */
  function confirmInPlace(form) {
    var status = document.getElementById(form.id.replace(/form$/, "accepted"));
    var thanks = document.getElementById(form.id.replace(/form$/, "thanks"));
    eraseDraft(form);
    form.reset();
    form.hidden = true;
    status.replaceChildren(thanks.content.cloneNode(true));
    status.hidden = false;
    status.focus();
    openWhenReachable(form.dataset.thanks);
  }

  /* The thank-you page opens only once it has come back whole: if it cannot load,
     the confirmation stays in view rather than the browser's error page. */
  function openWhenReachable(url) {
    var shown = Date.now();
    fetch(url, { cache: "no-cache" })
      .then(function (response) {
        if (response.ok) {
          window.setTimeout(function () {
            window.location.assign(url);
          }, Math.max(0, READING_MS - (Date.now() - shown)));
        }
      })
      .catch(function () {
        // Offline: the confirmation in place is the answer.
      });
  }

  /* 202: said in place, then the thank-you page of the page's language; otherwise say why, keep every value. */
  function answered(form, status, body) {
    if (status === 202) {
      confirmInPlace(form);
      return;
    }
    setBusy(form, false);
    if (status === 400 && body && body.errors) {
      showProblems(form, body.errors);
    } else {
      showSummary(form, [], (body && body.error) || form.dataset.errorFailed);
    }
  }

  /* XMLHttpRequest rather than fetch: only it reports upload progress. A 503 that says when
     to try again (every upload slot was taken for a moment) is sent again by itself, twice. */
  function send(form, retries) {
    var request = new XMLHttpRequest();
    var progress = form.querySelector("progress");
    setBusy(form, true);
    request.open("POST", form.getAttribute("action"));
    request.setRequestHeader("Accept", "application/json");
    // Refusals sent before the body is read (403, 413, 429) then speak the page's language too.
    request.setRequestHeader("Accept-Language", document.documentElement.lang);
    request.responseType = "json";
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        progress.value = Math.round((event.loaded / event.total) * 100);
      }
    });
    request.addEventListener("load", function () {
      var wait = Number(request.getResponseHeader("Retry-After"));
      if (request.status === 503 && wait > 0 && wait <= 60 && retries > 0) {
        window.setTimeout(send, wait * 1000, form, retries - 1);
        return;
      }
      answered(form, request.status, request.response);
    });
    request.addEventListener("error", function () {
      setBusy(form, false);
      showSummary(form, [], form.dataset.errorNetwork);
    });
    request.send(new FormData(form));
  }

  /* Check locally first, so a missing field costs no upload. */
  function submit(event) {
    var form = event.currentTarget;
    var problems;
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") {
      return;
    }
    clearProblems(form);
    problems = localProblems(form);
    if (Object.keys(problems).length) {
      showProblems(form, problems);
    } else {
      send(form, 2);
    }
  }

  /* Say at once that a chosen file will be refused, before anything is sent;
     an answer may change which other fields are asked or required. */
  function changed(event) {
    if (event.target.type === "file") {
      markField(event.target, fileProblem(event.target));
    }
    applyConditions(event.currentTarget);
  }

  /* A summary link moves focus into its field, not only the view. */
  function followLink(event) {
    var link = event.target.closest("a");
    var control = link && document.getElementById(link.hash.slice(1));
    if (control) {
      event.preventDefault();
      control.focus();
    }
  }

  /* Take over one form; until this runs, the plain HTML post still works. */
  function enhance(form) {
    // Our messages, in the page's language, replace the browser's bubbles.
    form.noValidate = true;
    form.addEventListener("submit", submit);
    form.addEventListener("change", changed);
    if (tabStorage()) {
      restoreDraft(form);
      form.addEventListener("input", function () {
        saveDraft(form);
      });
      form.addEventListener("change", function () {
        saveDraft(form);
      });
      document.getElementById(form.id.replace(/form$/, "draft-note")).hidden = false;
    }
    applyConditions(form);
    part(form, "summary").addEventListener("click", followLink);
    // Back from the thank-you page, the page may come from the cache still busy.
    window.addEventListener("pageshow", function () {
      setBusy(form, false);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.cch-form"), enhance);
})();
