// davgate's folder pages: sorting, uploads, new folders, renames and deletions.
//
// Every change is the WebDAV request any client sends (PUT, MKCOL, MOVE,
// DELETE) to the same server, so every check of the server applies; what the
// user reads on a refusal is the server's own one-line reason. Uploads send
// the File itself as the request body: the browser streams it from disk.
// Credentials are never handled here: the browser sends the ones the page was
// loaded with (Basic: by itself; a bearer token: whatever added it to the page
// adds it to these requests too).
"use strict";

(() => {
  const body = document.body;
  const folderPath = body.dataset.path; // quoted, ends in '/'
  const writable = body.dataset.writable === "true";
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const sorting = { key: "name", ascending: true };

  const $ = (id) => document.getElementById(id);
  // Absolute URLs from the origin: a page opened as http://user:password@host/... has a base URL
  // with credentials, which fetch() refuses and which must never reach a Destination header.
  const here = location.origin + folderPath;
  const urlOf = (name, isFolder) => here + encodeURIComponent(name) + (isFolder ? "/" : "");

  // --- messages ---------------------------------------------------------------

  function say(text, kind) {
    const item = document.createElement("p");
    item.className = "message " + (kind || "info");
    item.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.append(close);
    $("messages").append(item);
    if (kind !== "error") setTimeout(() => item.remove(), 8000);
  }

  // The server's one-line reason: davgate's plain text ("403 Forbidden: reason"),
  // a DAV:error with davgate:reason, or WsgiDAV's HTML error page (its paragraph).
  function reasonOf(status, statusText, contentType, text) {
    let reason = "";
    try {
      if (contentType.includes("xml")) {
        const doc = new DOMParser().parseFromString(text, "application/xml");
        const node = doc.getElementsByTagNameNS("urn:davgate", "reason")[0];
        reason = node ? node.textContent : "";
      } else if (contentType.includes("html")) {
        const doc = new DOMParser().parseFromString(text, "text/html");
        const node = doc.querySelector("p");
        reason = node ? node.textContent : "";
      } else {
        reason = text.split("\n")[0];
      }
    } catch (error) {
      reason = "";
    }
    reason = reason.trim().slice(0, 300);
    return reason || `${status} ${statusText}`.trim();
  }

  async function dav(method, url, headers) {
    const response = await fetch(url, { method, headers: headers || {}, credentials: "same-origin", cache: "no-store" });
    const text = response.ok ? "" : await response.text();
    const reason = response.ok ? "" : reasonOf(response.status, response.statusText, response.headers.get("Content-Type") || "", text);
    return { ok: response.ok, status: response.status, reason };
  }

  // --- the listing: refresh, sort, times ---------------------------------------

  function rows() {
    return Array.from(document.querySelectorAll("#listing tbody tr"));
  }

  async function refresh() {
    const response = await fetch(here, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("#listing tbody");
    const count = doc.querySelector("#listing caption");
    if (!fresh) return;
    document.querySelector("#listing tbody").replaceWith(document.adoptNode(fresh));
    if (count) document.querySelector("#listing caption").textContent = count.textContent;
    const empty = document.querySelector("p.empty");
    if (empty) empty.hidden = rows().length > 0;
    showTimes();
    sortRows();
  }

  function value(row, key) {
    if (key === "name") return row.dataset.name;
    const text = row.dataset[key];
    return text === "" ? -1 : Number(text);
  }

  function sortRows() {
    const { key, ascending } = sorting;
    const sign = ascending ? 1 : -1;
    const sorted = rows().sort((a, b) => {
      const folders = (b.dataset.kind === "folder") - (a.dataset.kind === "folder");
      if (folders) return folders; // folders first, whichever way
      const order = key === "name" ? collator.compare(value(a, key), value(b, key)) : value(a, key) - value(b, key);
      return sign * (order || collator.compare(a.dataset.name, b.dataset.name));
    });
    const tbody = document.querySelector("#listing tbody");
    sorted.forEach((row) => tbody.append(row));
    document.querySelectorAll("#listing th[scope=col]").forEach((th) => {
      const button = th.querySelector("button[data-sort]");
      if (button && button.dataset.sort === key) th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  function onSort(event) {
    const button = event.target.closest("button[data-sort]");
    if (!button) return;
    const key = button.dataset.sort;
    sorting.ascending = sorting.key === key ? !sorting.ascending : true;
    sorting.key = key;
    sortRows();
  }

  const pad = (n) => String(n).padStart(2, "0");

  function showTimes() {
    document.querySelectorAll("#listing time[datetime]").forEach((node) => {
      const when = new Date(node.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) return;
      node.title = when.toString();
      node.textContent = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())} ${pad(when.getHours())}:${pad(when.getMinutes())}`;
    });
  }

  // --- the dialog (names and confirmations) ------------------------------------

  function ask({ title, text, label, value, ok, check }) {
    const dialog = $("dialog");
    const input = $("dialog-input");
    $("dialog-title").textContent = title;
    $("dialog-text").textContent = text || "";
    $("dialog-label").textContent = label || "";
    $("dialog-error").textContent = "";
    $("dialog-ok").textContent = ok;
    $("dialog-ok").classList.toggle("danger", ok === "Delete");
    input.hidden = !label;
    $("dialog-label").hidden = !label;
    input.value = value || "";
    return new Promise((resolve) => {
      const onSubmit = (event) => {
        const problem = label && check ? check(input.value) : "";
        if (problem) {
          event.preventDefault();
          $("dialog-error").textContent = problem;
        }
      };
      const onClose = () => {
        dialog.removeEventListener("close", onClose);
        dialog.querySelector("form").removeEventListener("submit", onSubmit);
        resolve(dialog.returnValue === "ok" ? input.value : null);
      };
      dialog.returnValue = "";
      dialog.addEventListener("close", onClose);
      dialog.querySelector("form").addEventListener("submit", onSubmit);
      dialog.showModal();
      if (label) {
        input.focus();
        const dot = input.value.lastIndexOf(".");
        input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
      } else {
        $("dialog-ok").focus();
      }
    });
  }

  function checkName(name) {
    if (!name.trim()) return "A name is needed.";
    if (name.includes("/")) return "A name cannot contain '/'.";
    if (name === "." || name === "..") return "That name is reserved.";
    return "";
  }

  // --- actions: new folder, rename, delete ---------------------------------------

  async function newFolder() {
    const name = await ask({ title: "New folder", label: "Name", ok: "Create", check: checkName });
    if (name === null) return;
    const result = await dav("MKCOL", urlOf(name, true));
    if (!result.ok) return say(`Could not create the folder ${name}: ${result.reason}`, "error");
    say(`Created the folder ${name}.`, "success");
    await refresh();
  }

  async function rename(row) {
    const old = row.dataset.name;
    const isFolder = row.dataset.kind === "folder";
    const check = (name) => checkName(name) || (name === old ? "That is its name already." : "");
    const name = await ask({ title: `Rename ${old}`, label: "New name", value: old, ok: "Rename", check });
    if (name === null) return;
    const result = await dav("MOVE", urlOf(old, isFolder), { Destination: urlOf(name, isFolder), Overwrite: "F" });
    if (!result.ok) {
      const reason = result.status === 412 ? `${name} exists already` : result.reason;
      return say(`Could not rename ${old}: ${reason}`, "error");
    }
    say(`Renamed ${old} to ${name}.`, "success");
    await refresh();
  }

  async function remove(row) {
    const name = row.dataset.name;
    const isFolder = row.dataset.kind === "folder";
    const text = isFolder ? `The folder ${name} and everything in it will be deleted.` : `The file ${name} will be deleted.`;
    const confirmed = await ask({ title: `Delete ${name}?`, text, ok: "Delete" });
    if (confirmed === null) return;
    const result = await dav("DELETE", urlOf(name, isFolder));
    if (!result.ok) return say(`Could not delete ${name}: ${result.reason}`, "error");
    say(`Deleted ${name}.`, "success");
    await refresh();
  }

  function onRowAction(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    if (button.dataset.action === "rename") rename(row);
    if (button.dataset.action === "delete") remove(row);
  }

  // --- uploads: one at a time, each File streamed as the PUT body --------------------

  function uploadItem(file) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "upload-name";
    label.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "waiting";
    item.append(label, bar, state);
    $("uploads").append(item);
    $("uploads").hidden = false;
    return { item, bar, state };
  }

  function put(file, view) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", urlOf(file.name, false));
      if (!$("replace").checked) xhr.setRequestHeader("If-None-Match", "*");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable || !event.total) return;
        const percent = Math.floor((100 * event.loaded) / event.total);
        view.bar.value = percent;
        view.state.textContent = `${percent} %`;
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve({ ok: true });
        const reason =
          xhr.status === 412
            ? `${file.name} exists already (tick "Replace existing files" to replace it)`
            : reasonOf(xhr.status, xhr.statusText, xhr.getResponseHeader("Content-Type") || "", xhr.responseText || "");
        resolve({ ok: false, reason });
      });
      xhr.addEventListener("error", () => resolve({ ok: false, reason: "the connection failed" }));
      xhr.addEventListener("abort", () => resolve({ ok: false, reason: "cancelled" }));
      xhr.send(file); // the File itself: read from disk as it is sent
    });
  }

  async function upload(files) {
    const list = Array.from(files).filter((file) => file.name);
    if (!list.length) return;
    const views = list.map(uploadItem);
    let failed = 0;
    for (let index = 0; index < list.length; index += 1) {
      const view = views[index];
      view.state.textContent = "0 %";
      const result = await put(list[index], view);
      view.item.classList.add(result.ok ? "done" : "failed");
      view.state.textContent = result.ok ? "uploaded" : result.reason;
      if (result.ok) view.bar.value = 100;
      else failed += 1;
    }
    if (failed) say(`${failed} of ${list.length} uploads failed; the reasons are beside them.`, "error");
    else say(`Uploaded ${list.length} file${list.length === 1 ? "" : "s"}.`, "success");
    await refresh();
  }

  function setUpDropping() {
    const zone = $("drop-zone");
    let depth = 0;
    const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
    document.addEventListener("dragenter", (event) => {
      if (!carriesFiles(event)) return;
      depth += 1;
      zone.hidden = false;
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.hidden = true;
    });
    document.addEventListener("dragover", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("drop", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth = 0;
      zone.hidden = true;
      upload(event.dataTransfer.files);
    });
  }

  // --- copying the URL and commands ---------------------------------------------

  async function onCopy(event) {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = $(button.dataset.copy);
    const text = source.value !== undefined ? source.value : source.textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const range = document.createRange();
      range.selectNodeContents(source);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      if (source.select) source.select();
      document.execCommand("copy");
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  }

  // --- DISPEL: choosing a window -------------------------------------------------------

  // The result's name from the grid's pattern: literals and the fields' numbers, in turn, then the format.
  function windowName(box, form) {
    const literals = JSON.parse(box.dataset.literals);
    const fields = JSON.parse(box.dataset.fields);
    let name = literals[0];
    for (let index = 0; index < fields.length; index += 1) {
      const text = form.elements[fields[index]].value.trim();
      if (!/^[0-9]+$/.test(text)) throw new Error(`${fields[index]} must be a whole number`);
      name += String(Number(text)) + literals[index + 1];
    }
    return `${name}.${form.elements.format.value}`;
  }

  async function previewFailed(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    const text = response.ok ? "" : await response.text();
    return response.ok ? "the browser cannot show it" : reasonOf(response.status, response.statusText, response.headers.get("Content-Type") || "", text);
  }

  function showWindow(event) {
    event.preventDefault();
    const form = event.target;
    const box = form.closest(".window");
    $("window-error").textContent = "";
    let name;
    try {
      name = windowName(box, form);
    } catch (error) {
      $("window-error").textContent = error.message;
      return;
    }
    const url = urlOf(name, false);
    $("window-url").value = url;
    $("window-link").href = url;
    $("window-result").hidden = false;
    const image = $("window-preview");
    const state = $("window-state");
    if (!JSON.parse(box.dataset.images).includes(form.elements.format.value)) {
      image.hidden = true;
      image.removeAttribute("src");
      state.textContent = "This format has no preview: open the result or copy its URL.";
      return;
    }
    state.textContent = "Making the preview…";
    image.hidden = false;
    image.src = url;
  }

  function setUpWindowForm() {
    const form = $("window-form");
    if (!form) return;
    const image = $("window-preview");
    image.addEventListener("load", () => {
      $("window-state").textContent = `${image.naturalWidth} × ${image.naturalHeight} pixels`;
    });
    image.addEventListener("error", async () => {
      if (!image.getAttribute("src")) return;
      image.hidden = true;
      $("window-state").textContent = `No preview: ${await previewFailed(image.src)}`;
    });
    form.addEventListener("submit", showWindow);
  }

  // --- wiring ---------------------------------------------------------------------

  $("dialog-cancel").addEventListener("click", () => $("dialog").close("cancel")); // Enter submits OK, not this

  showTimes();
  document.querySelector("#listing thead").addEventListener("click", onSort);
  document.addEventListener("click", onCopy);
  if (writable) {
    document.querySelector("#listing").addEventListener("click", onRowAction);
    $("new-folder").addEventListener("click", newFolder);
    $("upload-button").addEventListener("click", () => $("upload-input").click());
    $("upload-input").addEventListener("change", (event) => {
      upload(event.target.files);
      event.target.value = "";
    });
    setUpDropping();
  }
  setUpWindowForm();
  // A thumbnail that cannot be made (a window too small to shrink) leaves its place empty, not a broken image.
  document.addEventListener("error", (event) => event.target.matches && event.target.matches("img.thumb") && event.target.classList.add("failed"), true);
  body.dataset.ready = "true";
})();
