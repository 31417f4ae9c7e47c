// ECG upload with a progress bar: the form is sent by XMLHttpRequest (its
// upload events give the progress, also on phones); the server answers JSON
// (the recording's URL, or a translated error). Without this script the form
// posts normally. Translated strings come from the page ([data-strings]).

const form = document.querySelector("[data-ecg-upload]");

if (form) {
  const strings = {};
  for (const item of document.querySelectorAll("[data-strings] [data-key]")) strings[item.dataset.key] = item.textContent;
  const t = (key) => strings[key] ?? key;
  const input = form.querySelector("input[type=file]");
  const errorBox = form.querySelector("[data-upload-error]");
  const progress = form.querySelector("[data-upload-progress]");
  const bar = form.querySelector("[data-upload-bar]");
  const percent = form.querySelector("[data-upload-percent]");
  const send = form.querySelector("[data-upload-send]");
  const cancel = form.querySelector("[data-upload-cancel]");
  const maxBytes = Number(form.dataset.maxBytes || 0);
  let request = null;

  const showError = (message) => {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  };

  const setProgress = (fraction, label) => {
    const value = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    bar.value = value;
    percent.textContent = label ?? `${value} %`;
    // the highest value reached, for people who look away and for tests
    form.dataset.progressMax = String(Math.max(value, Number(form.dataset.progressMax || 0)));
  };

  const finish = () => {
    request = null;
    send.disabled = false;
    input.disabled = false;
    cancel.hidden = true;
  };

  input.addEventListener("change", () => showError(""));

  cancel.addEventListener("click", () => {
    if (request) request.abort();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (request) return;
    const file = input.files && input.files[0];
    if (!file) {
      showError(t("choose"));
      return;
    }
    if (maxBytes && file.size > maxBytes) {
      showError(t("too_large"));
      return;
    }
    showError("");
    const body = new FormData(form);
    request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.responseType = "json";
    request.upload.addEventListener("progress", (progressEvent) => {
      if (progressEvent.lengthComputable) setProgress(progressEvent.loaded / progressEvent.total);
    });
    request.upload.addEventListener("load", () => setProgress(1, t("checking")));
    request.addEventListener("load", () => {
      const answer = request.response || {};
      const status = request.status;
      finish();
      if (status >= 200 && status < 300 && answer.url) {
        window.location.assign(answer.url);
        return;
      }
      progress.hidden = true;
      showError(answer.error || t("failed"));
    });
    request.addEventListener("error", () => {
      finish();
      progress.hidden = true;
      showError(t("failed"));
    });
    request.addEventListener("abort", () => {
      finish();
      progress.hidden = true;
      showError(t("cancelled"));
    });
    progress.hidden = false;
    setProgress(0, t("uploading"));
    send.disabled = true;
    input.disabled = true;
    cancel.hidden = false;
    request.send(body);
  });
}
