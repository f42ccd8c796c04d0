// Shared components: the html tag, error boxes, labelled fields, formatting.

import { h } from "./vendor/preact.module.js";
import { useEffect, useState, useCallback } from "./vendor/hooks.module.js";
import htm from "./vendor/htm.module.js";
import { ApiError, errorText } from "./api.js";

export const html = htm.bind(h);

let nextId = 0;
export function useId(prefix) {
  const [id] = useState(() => `${prefix}-${++nextId}`);
  return id;
}

// One request's state: {data, error, loading, reload}.
export function useApi(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const reload = useCallback(() => {
    setState((previous) => ({ ...previous, loading: true }));
    return load().then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => setState({ data: null, error, loading: false }),
    );
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { ...state, reload };
}

// Call ``reload`` when the event feed reports one of ``types``, so a page
// shows changes made elsewhere (another tab, a mail client, the API).
export function useLiveReload(live, types, reload) {
  const subscribe = live ? live.subscribe : null;
  useEffect(() => {
    if (!subscribe) return undefined;
    let timer = null;
    const unsubscribe = subscribe((event) => {
      if (!types.includes(event.type)) return;
      // A burst of events (an import, a queue run) causes one reload.
      clearTimeout(timer);
      timer = setTimeout(reload, 300);
    });
    return () => {
      clearTimeout(timer);
      unsubscribe();
    };
  }, [subscribe, reload]);
}

export function ErrorBox({ error, feature }) {
  if (!error) return null;
  if (error instanceof ApiError && error.unavailable && feature) {
    return html`<p class="notice unavailable" role="status">
      ${feature} is not available in this version of the server.
    </p>`;
  }
  return html`<p class="error" role="alert">${errorText(error)}</p>`;
}

export function Field({ label, error, children, hint }) {
  const id = useId("field");
  const child = typeof children === "function" ? children(id) : children;
  return html`<div class=${"field" + (error ? " invalid" : "")}>
    <label for=${id}>${label}</label>
    ${child}
    ${hint && !error ? html`<small class="hint">${hint}</small>` : null}
    ${error ? html`<small class="field-error" role="alert">${error}</small>` : null}
  </div>`;
}

export function TextInput({ label, value, onInput, error, type = "text", name, hint, ...rest }) {
  return html`<${Field} label=${label} error=${error} hint=${hint}>
    ${(id) => html`<input
      id=${id}
      name=${name}
      type=${type}
      value=${value}
      aria-invalid=${error ? "true" : "false"}
      onInput=${(event) => onInput(event.currentTarget.value)}
      ...${rest}
    />`}
  <//>`;
}

export function Checkbox({ label, checked, onChange, name }) {
  const id = useId("check");
  return html`<div class="field check">
    <input
      id=${id}
      name=${name}
      type="checkbox"
      checked=${checked}
      onChange=${(event) => onChange(event.currentTarget.checked)}
    />
    <label for=${id}>${label}</label>
  </div>`;
}

// A delete button that asks again in place, so no modal dialog is needed.
export function ConfirmButton({ label, confirmLabel, onConfirm, disabled }) {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return undefined;
    const timer = setTimeout(() => setArmed(false), 5000);
    return () => clearTimeout(timer);
  }, [armed]);
  if (!armed) {
    return html`<button type="button" class="danger" disabled=${disabled}
      onClick=${() => setArmed(true)}>${label}</button>`;
  }
  return html`<button type="button" class="danger armed" disabled=${disabled}
    onClick=${() => {
      setArmed(false);
      onConfirm();
    }}>${confirmLabel || "Confirm: " + label}</button>`;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(Number(bytes))) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  const total = Math.floor(Number(seconds) || 0);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  if (days) return `${days} d ${hours} h`;
  if (hours) return `${hours} h ${minutes} min`;
  if (minutes) return `${minutes} min ${rest} s`;
  return `${rest} s`;
}

export function formatDate(value) {
  if (!value) return "–";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function splitList(text) {
  return text
    .split(/[\s,]+/)
    .map((item) => item.trim())
    .filter(Boolean);
}

// Save a string or Blob as a file download without navigating away.
export function download(filename, content, type) {
  const blob = content instanceof Blob ? content : new Blob([content], { type });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
