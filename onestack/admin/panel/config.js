// Config: one form per module, the whole document as JSON, export, import.

import { useState } from "./vendor/hooks.module.js";
import { ApiError, api, errorText, request } from "./api.js";
import { html, ConfirmButton, ErrorBox, Field, download, useApi } from "./ui.js";

// Every validation problem of an error as [{field, message}].
function problems(error) {
  if (!(error instanceof ApiError)) return [];
  const list = [...(error.details.errors || [])];
  if (error.details.field) list.push({ field: error.details.field, message: error.message });
  return list;
}

// The parts of ``edited`` that differ from ``original``. PUT /api/config
// deep-merges, so sending only the changes keeps redacted secrets (shown as
// "********") from being written back as values.
export function changes(original, edited) {
  if (!isObject(original) || !isObject(edited)) {
    return JSON.stringify(original) === JSON.stringify(edited) ? undefined : edited;
  }
  const result = {};
  for (const [key, value] of Object.entries(edited)) {
    const difference = changes(original[key], value);
    if (difference !== undefined) result[key] = difference;
  }
  return Object.keys(result).length ? result : undefined;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function setPath(object, path, value) {
  const copy = structuredClone(object);
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path[path.length - 1]] = value;
  return copy;
}

// Inputs for one config object, nested objects as fieldsets.
function ConfigFields({ value, path, onChange, errors }) {
  return Object.entries(value).map(([key, item]) => {
    const itemPath = [...path, key];
    const name = itemPath.join(".");
    const error = errors[name];
    if (isObject(item)) {
      return html`<fieldset key=${name}><legend>${key}</legend>
        <${ConfigFields} value=${item} path=${itemPath} onChange=${onChange} errors=${errors} /></fieldset>`;
    }
    if (typeof item === "boolean") {
      return html`<${Field} key=${name} label=${key} error=${error}>
        ${(id) => html`<input id=${id} name=${name} type="checkbox" checked=${item}
          onChange=${(event) => onChange(itemPath, event.currentTarget.checked)} />`}
      <//>`;
    }
    if (typeof item === "number") {
      return html`<${Field} key=${name} label=${key} error=${error}>
        ${(id) => html`<input id=${id} name=${name} type="number" step="any" value=${item}
          aria-invalid=${error ? "true" : "false"}
          onInput=${(event) => onChange(itemPath, event.currentTarget.valueAsNumber)} />`}
      <//>`;
    }
    if (Array.isArray(item)) {
      return html`<${Field} key=${name} label=${key + " (one per line)"} error=${error}>
        ${(id) => html`<textarea id=${id} name=${name} rows="2" value=${item.join("\n")}
          onInput=${(event) =>
            onChange(itemPath, event.currentTarget.value.split("\n").map((line) => line.trim()).filter(Boolean))} />`}
      <//>`;
    }
    return html`<${Field} key=${name} label=${key} error=${error}>
      ${(id) => html`<input id=${id} name=${name} type="text" value=${item ?? ""}
        aria-invalid=${error ? "true" : "false"}
        onInput=${(event) => onChange(itemPath, event.currentTarget.value)} />`}
    <//>`;
  });
}

function ModuleForm({ name, config, onSaved }) {
  const [value, setValue] = useState(config);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    setSaved(false);
    const update = changes(config, value);
    if (!update) {
      setSaved(true);
      return;
    }
    try {
      await api.put(`/api/modules/${encodeURIComponent(name)}/config`, update);
      setSaved(true);
      onSaved();
    } catch (failure) {
      const byField = {};
      for (const item of problems(failure)) {
        // The API names fields from the module ("port") or the whole config
        // ("modules.http.port"); the form's names are the former.
        byField[item.field.replace(new RegExp(`^modules\\.${name}\\.`), "")] = item.message;
      }
      setErrors(byField);
      if (!Object.keys(byField).length) setError(failure);
    }
  }

  return html`<form class="card form-grid module-form" onSubmit=${submit} aria-labelledby=${"config-" + name}>
    <h3 id=${"config-" + name}>${name}</h3>
    <${ConfigFields} value=${value} path=${[]} errors=${errors}
      onChange=${(path, item) => setValue(setPath(value, path, item))} />
    <${ErrorBox} error=${error} />
    ${saved ? html`<p class="notice" role="status">Saved; the module applies it now.</p>` : null}
    <div class="buttons"><button type="submit">Save ${name}</button></div>
  </form>`;
}

function JsonEditor({ config, onSaved }) {
  const [text, setText] = useState(JSON.stringify(config, null, 2));
  const [error, setError] = useState(null);
  const [parseError, setParseError] = useState("");
  const [saved, setSaved] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setError(null);
    setSaved(false);
    let edited;
    try {
      edited = JSON.parse(text);
      setParseError("");
    } catch (failure) {
      setParseError("The text is not valid JSON: " + failure.message);
      return;
    }
    const update = changes(config, edited);
    if (!update) {
      setSaved(true);
      return;
    }
    try {
      await api.put("/api/config", update);
      // The page reloads and remounts this editor, so the page shows the
      // notice: a notice kept in this component would vanish with it.
      onSaved("Config saved.");
    } catch (failure) {
      setError(failure);
    }
  }

  const list = problems(error);
  return html`<form class="card form-grid" onSubmit=${submit} aria-labelledby="json-title">
    <h2 id="json-title">Whole config as JSON</h2>
    <p class="hint">Only the keys you change are sent. Keys removed here are not removed on the server.</p>
    <${Field} label="Config JSON" error=${parseError}>
      ${(id) => html`<textarea id=${id} name="config-json" rows="18" class="mono" spellcheck="false"
        value=${text} onInput=${(event) => setText(event.currentTarget.value)}></textarea>`}
    <//>
    ${list.length
      ? html`<ul class="error validation" role="alert">
          ${list.map((item) => html`<li><code>${item.field}</code>: ${item.message}</li>`)}
        </ul>`
      : html`<${ErrorBox} error=${error} />`}
    ${saved ? html`<p class="notice" role="status">Nothing changed.</p>` : null}
    <div class="buttons"><button type="submit">Save config</button></div>
  </form>`;
}

export function ConfigPage() {
  const config = useApi(() => api.get("/api/config"));
  const [generation, setGeneration] = useState(0);
  const [error, setError] = useState(null);
  const [message, setMessage] = useState("");

  const reloadAll = () => config.reload().then(() => setGeneration((n) => n + 1));

  async function exportConfig() {
    setError(null);
    try {
      const response = await request("GET", "/api/config/export", { raw: true });
      download("onestack-config.json", await response.blob());
    } catch (failure) {
      setError(failure);
    }
  }

  async function importConfig(event) {
    const file = event.currentTarget.files[0];
    event.currentTarget.value = "";
    if (!file) return;
    setError(null);
    setMessage("");
    const form = new FormData();
    form.append("file", file);
    try {
      await request("POST", "/api/config/import", { form });
      setMessage(`Imported ${file.name}.`);
      reloadAll();
    } catch (failure) {
      setError(failure);
    }
  }

  async function act(path, done) {
    setError(null);
    setMessage("");
    try {
      await api.post(path);
      setMessage(done);
      reloadAll();
    } catch (failure) {
      setError(failure);
    }
  }

  if (config.error) {
    return html`<div class="page config"><h1>Config</h1><${ErrorBox} error=${config.error} feature="Config" /></div>`;
  }
  if (!config.data) return html`<div class="page config"><h1>Config</h1><p>Loading…</p></div>`;
  return html`<div class="page config" key=${generation}>
    <h1>Config</h1>
    <div class="buttons">
      <button type="button" onClick=${exportConfig}>Export</button>
      <label class="button" for="config-import">Import a file…</label>
      <input id="config-import" class="visually-hidden-file" type="file" accept="application/json,.json"
        onChange=${importConfig} />
      <button type="button" onClick=${() => act("/api/config/reload", "Config re-read from its file.")}>
        Re-read the file</button>
      <${ConfirmButton} label="Reset to defaults" onConfirm=${() => act("/api/config/reset", "Defaults restored.")} />
    </div>
    ${message ? html`<p class="notice" role="status">${message}</p>` : null}
    ${error
      ? html`<ul class="error" role="alert">
          ${problems(error).length
            ? problems(error).map((item) => html`<li><code>${item.field}</code>: ${item.message}</li>`)
            : html`<li>${errorText(error)}</li>`}
        </ul>`
      : null}
    <h2>Modules</h2>
    <div class="module-forms">
      ${Object.entries(config.data.modules || {}).map(
        ([name, section]) => html`<${ModuleForm} key=${name + generation} name=${name} config=${section}
          onSaved=${config.reload} />`,
      )}
    </div>
    <${JsonEditor} key=${"json" + generation} config=${config.data}
      onSaved=${(notice) => { setMessage(notice); reloadAll(); }} />
  </div>`;
}
