// The consult note editor (templates/care/note_editor.html): autosaves the
// draft (debounced POST with the version the page holds; a 409 means the
// note changed elsewhere and autosave stops), searches ICD-10 as the doctor
// types, and saves before signing. Without JavaScript the page's Save,
// Search and Sign buttons do the same.

const AUTOSAVE_DELAY_MS = 1500;
const RETRY_DELAY_MS = 5000;
const SEARCH_DELAY_MS = 250;

const form = document.querySelector("[data-note-editor]");
if (form) {
  const words = {};
  for (const item of form.querySelectorAll("[data-words] [data-key]")) words[item.dataset.key] = item.textContent;
  const statusLine = form.querySelector("[data-save-status]");
  const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const versionInputs = () => document.querySelectorAll("input[name=version]");
  let dirty = false;
  let stopped = false; // after a conflict: never overwrite newer text
  let timer = null;
  let inFlight = null;

  const setStatus = (text, isError = false) => {
    statusLine.textContent = text;
    statusLine.classList.toggle("errorlist", isError);
  };

  const clearFieldErrors = () => {
    for (const el of form.querySelectorAll("[data-autosave-error]")) el.remove();
  };

  const showFieldErrors = (fields) => {
    clearFieldErrors();
    for (const [name, messages] of Object.entries(fields || {})) {
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (!input) continue;
      const p = document.createElement("span");
      p.className = "errorlist";
      p.dataset.autosaveError = "";
      p.textContent = messages.join(" ");
      input.after(p);
    }
  };

  const save = async () => {
    if (stopped || !dirty) return true;
    if (inFlight) await inFlight;
    if (!dirty) return true;
    dirty = false;
    setStatus(words.saving);
    const body = new FormData(form);
    body.delete("action");
    inFlight = fetch(form.dataset.autosaveUrl, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    })
      .then(async (response) => {
        const data = await response.json().catch(() => ({}));
        if (response.ok) {
          for (const input of versionInputs()) input.value = data.version;
          clearFieldErrors();
          setStatus(dirty ? words.unsaved : words.saved.replace("%(time)s", data.saved_at));
          return true;
        }
        if (response.status === 409) {
          stopped = true;
          setStatus(data.error || "", true);
          return false;
        }
        dirty = true;
        showFieldErrors(data.fields);
        setStatus(data.error || "", true);
        return false;
      })
      .catch(() => {
        dirty = true;
        setStatus(words.offline, true);
        clearTimeout(timer);
        timer = setTimeout(save, RETRY_DELAY_MS);
        return false;
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  };

  form.addEventListener("input", () => {
    if (stopped) return;
    dirty = true;
    setStatus(words.unsaved);
    clearTimeout(timer);
    timer = setTimeout(save, AUTOSAVE_DELAY_MS);
  });

  // The plain Save button still works; it just needs no warning on leaving.
  form.addEventListener("submit", () => {
    dirty = false;
    clearTimeout(timer);
  });

  window.addEventListener("beforeunload", (event) => {
    if (dirty && !stopped) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // Sign: save what is typed first, then ask once more.
  const signForm = document.querySelector("[data-sign-form]");
  if (signForm) {
    signForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearTimeout(timer);
      const saved = await save();
      if (!saved || stopped) return;
      if (!window.confirm(signForm.dataset.confirmText)) return;
      for (const input of signForm.querySelectorAll("input[name=version]")) {
        input.value = form.querySelector("input[name=version]").value;
      }
      const action = document.createElement("input");
      action.type = "hidden";
      action.name = "action";
      action.value = "sign";
      signForm.append(action);
      // submit(), not requestSubmit(): we may still be inside this submit
      // event's dispatch, where a second submission would be ignored.
      signForm.submit();
    });
  }
}

// The ICD-10 picker: results as the doctor types; a click adds the diagnosis.
const searchForm = document.querySelector("[data-icd-search]");
const addForm = document.querySelector("[data-diagnosis-add]");
const resultsList = document.querySelector("[data-icd-results]");
if (searchForm && addForm && resultsList) {
  const input = searchForm.querySelector("input[type=search]");
  const noResults = document.querySelector("[data-words] [data-key=no_results]")?.textContent || "";
  let timer = null;
  let latest = 0;

  const render = (results) => {
    resultsList.replaceChildren();
    if (!results.length && input.value.trim()) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = noResults;
      resultsList.append(li);
      return;
    }
    for (const result of results) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.dataset.code = result.code;
      const code = document.createElement("strong");
      code.textContent = result.code;
      button.append(code, " ", result.label);
      button.addEventListener("click", () => {
        addForm.querySelector("[name=code]").value = result.code;
        addForm.requestSubmit();
      });
      li.append(button);
      resultsList.append(li);
    }
  };

  const search = async () => {
    const query = input.value.trim();
    const ticket = ++latest;
    if (!query) {
      render([]);
      return;
    }
    const url = `${searchForm.dataset.url}?q=${encodeURIComponent(query)}`;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok || ticket !== latest) return;
      const data = await response.json();
      if (ticket === latest) render(data.results);
    } catch {
      // Offline: the Search button still works when the network is back.
    }
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, SEARCH_DELAY_MS);
  });
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search();
  });
}
