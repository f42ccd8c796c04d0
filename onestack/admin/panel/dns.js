// DNS: zones with their SOA, records with add, inline edit and delete,
// BIND zone file import and export.

import { useState } from "./vendor/hooks.module.js";
import { api, fieldErrors } from "./api.js";
import {
  html,
  Checkbox,
  ConfirmButton,
  ErrorBox,
  Field,
  TextInput,
  download,
  useApi,
  useLiveReload,
} from "./ui.js";

const TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "PTR", "CAA"];
const NEEDS_PRIORITY = new Set(["MX", "SRV"]);
const ZONE_EVENTS = ["dnsZoneCreated", "dnsZoneUpdated", "dnsZoneDeleted", "dnsRecordAdded",
  "dnsRecordUpdated", "dnsRecordDeleted"];

function recordBody(form) {
  const body = { name: form.name.trim() || "@", type: form.type, data: form.data.trim() };
  if (String(form.ttl).trim() !== "") body.ttl = Number(form.ttl);
  if (NEEDS_PRIORITY.has(form.type) && String(form.priority).trim() !== "") {
    body.priority = Number(form.priority);
  }
  return body;
}

// One record row; the edit form replaces the cells in place.
function RecordRow({ record, onChanged }) {
  const [editing, setEditing] = useState(false);
  const [form, setForm] = useState(null);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  function edit() {
    setForm({
      name: record.name,
      type: record.type,
      data: record.data,
      ttl: record.ttl ?? "",
      priority: record.priority ?? "",
    });
    setErrors({});
    setError(null);
    setEditing(true);
  }

  async function save(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    try {
      const body = recordBody(form);
      delete body.type;
      await api.put(`/api/dns/records/${record.id}`, body);
      setEditing(false);
      onChanged();
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  async function remove() {
    try {
      await api.del(`/api/dns/records/${record.id}`);
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  }

  if (editing) {
    return html`<tr class="editing" data-record=${record.id}>
      <td colspan="6">
        <form class="inline-form" onSubmit=${save} aria-label=${"Edit record " + record.name + " " + record.type}>
          <${TextInput} label="Name" value=${form.name} onInput=${set("name")} error=${errors.name} />
          <span class="type-label">${record.type}</span>
          <${TextInput} label="Data" value=${form.data} onInput=${set("data")} error=${errors.data} />
          <${TextInput} label="TTL" type="number" min="0" value=${form.ttl} onInput=${set("ttl")}
            error=${errors.ttl} />
          ${NEEDS_PRIORITY.has(record.type)
            ? html`<${TextInput} label="Priority" type="number" min="0" value=${form.priority}
                onInput=${set("priority")} error=${errors.priority} />`
            : null}
          <button type="submit">Save</button>
          <button type="button" class="secondary" onClick=${() => setEditing(false)}>Cancel</button>
          <${ErrorBox} error=${error} />
        </form>
      </td>
    </tr>`;
  }
  return html`<tr data-record=${record.id}>
    <td>${record.name}</td>
    <td>${record.type}</td>
    <td class="data"><code>${record.data}</code></td>
    <td>${record.ttl ?? ""}</td>
    <td>${record.priority ?? ""}</td>
    <td class="actions">
      <button type="button" onClick=${edit} aria-label=${`Edit ${record.name} ${record.type}`}>Edit</button>
      <${ConfirmButton} label="Delete" onConfirm=${remove} />
      <${ErrorBox} error=${error} />
    </td>
  </tr>`;
}

function AddRecord({ zone, onAdded }) {
  const blank = { name: "", type: "A", data: "", ttl: "", priority: "" };
  const [form, setForm] = useState(blank);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    try {
      await api.post(`/api/dns/zones/${encodeURIComponent(zone)}/records`, recordBody(form));
      setForm(blank);
      onAdded();
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  return html`<form class="card inline-form add-record" onSubmit=${submit} aria-label="Add a record">
    <${TextInput} label="Name" name="record-name" value=${form.name} onInput=${set("name")}
      error=${errors.name} placeholder="@ or www" />
    <${Field} label="Type" error=${errors.type}>
      ${(id) => html`<select id=${id} name="record-type" value=${form.type}
          onChange=${(event) => set("type")(event.currentTarget.value)}>
        ${TYPES.map((type) => html`<option value=${type}>${type}</option>`)}
      </select>`}
    <//>
    <${TextInput} label="Data" name="record-data" value=${form.data} onInput=${set("data")}
      error=${errors.data} required />
    <${TextInput} label="TTL" name="record-ttl" type="number" min="0" value=${form.ttl}
      onInput=${set("ttl")} error=${errors.ttl} />
    ${NEEDS_PRIORITY.has(form.type)
      ? html`<${TextInput} label="Priority" name="record-priority" type="number" min="0"
          value=${form.priority} onInput=${set("priority")} error=${errors.priority} />`
      : null}
    <button type="submit">Add record</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

function ImportZone({ zone, onImported }) {
  const [text, setText] = useState("");
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);

  async function submit(event) {
    event.preventDefault();
    setError(null);
    setResult(null);
    try {
      const answer = await api.post(`/api/dns/zones/${encodeURIComponent(zone)}/import`, { zoneFile: text });
      setResult(answer);
      onImported();
    } catch (failure) {
      setError(failure);
    }
  }

  return html`<form class="card form-grid" onSubmit=${submit}>
    <h3>Import a BIND zone file</h3>
    <p class="hint">The zone afterwards holds exactly the file's records.</p>
    <${Field} label="Zone file">
      ${(id) => html`<textarea id=${id} name="zone-file" rows="8" class="mono" value=${text}
        onInput=${(event) => setText(event.currentTarget.value)}></textarea>`}
    <//>
    <${Field} label="…or load it from a file">
      ${(id) => html`<input id=${id} type="file" accept=".zone,.txt,.db"
        onChange=${async (event) => {
          const file = event.currentTarget.files[0];
          if (file) setText(await file.text());
        }} />`}
    <//>
    <${ErrorBox} error=${error} feature="Zone import" />
    ${result ? html`<p class="notice" role="status">${result.recordsImported} records imported.</p>` : null}
    <div class="buttons"><button type="submit" disabled=${!text.trim()}>Import zone file</button></div>
  </form>`;
}

function ZoneView({ name, onDeleted, live }) {
  const zone = useApi(() => api.get(`/api/dns/zones/${encodeURIComponent(name)}`), [name]);
  useLiveReload(live, ZONE_EVENTS, zone.reload);
  const [error, setError] = useState(null);

  async function exportZone() {
    setError(null);
    try {
      const text = await api.get(`/api/dns/zones/${encodeURIComponent(name)}/export`);
      download(`${name}.zone`, typeof text === "string" ? text : JSON.stringify(text), "text/plain");
    } catch (failure) {
      setError(failure);
    }
  }

  async function remove() {
    try {
      await api.del(`/api/dns/zones/${encodeURIComponent(name)}`);
      onDeleted();
    } catch (failure) {
      setError(failure);
    }
  }

  async function toggle(enabled) {
    try {
      await api.put(`/api/dns/zones/${encodeURIComponent(name)}`, { enabled });
      zone.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  if (zone.error) return html`<${ErrorBox} error=${zone.error} feature="This zone" />`;
  if (!zone.data) return html`<p>Loading…</p>`;
  const soa = zone.data.soa || {};
  const records = zone.data.records || [];
  return html`<section class="zone" aria-labelledby="zone-title">
    <h2 id="zone-title">${zone.data.name}</h2>
    <dl class="pairs soa">
      <dt>Primary name server</dt><dd>${soa.primaryNS}</dd>
      <dt>Contact</dt><dd>${soa.email}</dd>
      <dt>Serial</dt><dd data-testid="serial">${soa.serial}</dd>
      <dt>Refresh / retry / expire / minimum</dt>
      <dd>${soa.refresh} / ${soa.retry} / ${soa.expire} / ${soa.minimum} s</dd>
      <dt>Default TTL</dt><dd>${zone.data.ttl}</dd>
    </dl>
    <div class="buttons">
      <${Checkbox} label="Zone enabled" checked=${zone.data.enabled !== false} onChange=${toggle} />
      <button type="button" onClick=${exportZone}>Export zone file</button>
      <${ConfirmButton} label=${"Delete zone " + zone.data.name} onConfirm=${remove} />
    </div>
    <${ErrorBox} error=${error} />
    <h3>Records</h3>
    <${AddRecord} zone=${name} onAdded=${zone.reload} />
    <div class="table-wrap"><table class="records stack">
      <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Data</th>
        <th scope="col">TTL</th><th scope="col">Priority</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        ${records.map((record) => html`<${RecordRow} key=${record.id} record=${record} onChanged=${zone.reload} />`)}
      </tbody>
    </table></div>
    <${ImportZone} zone=${name} onImported=${zone.reload} />
  </section>`;
}

function CreateZone({ onCreated }) {
  const [form, setForm] = useState({ name: "", primaryNS: "", email: "", ttl: "3600" });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    const options = { enabled: true };
    if (form.ttl) options.ttl = Number(form.ttl);
    if (form.primaryNS.trim()) options.primaryNS = form.primaryNS.trim();
    if (form.email.trim()) options.email = form.email.trim();
    try {
      const zone = await api.post("/api/dns/zones", { name: form.name.trim(), options });
      setForm({ name: "", primaryNS: "", email: "", ttl: "3600" });
      onCreated(zone.name || form.name.trim());
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  return html`<form class="card inline-form" onSubmit=${submit} aria-label="Add a zone">
    <${TextInput} label="Zone name" name="zone-name" value=${form.name} onInput=${set("name")}
      error=${errors.name} required placeholder="example.com" />
    <${TextInput} label="Primary name server" name="zone-ns" value=${form.primaryNS}
      onInput=${set("primaryNS")} error=${errors.primaryNS} placeholder="ns1.example.com" />
    <${TextInput} label="Contact (SOA mailbox)" name="zone-email" value=${form.email}
      onInput=${set("email")} error=${errors.email} placeholder="hostmaster.example.com" />
    <${TextInput} label="Default TTL" name="zone-ttl" type="number" min="0" value=${form.ttl}
      onInput=${set("ttl")} error=${errors.ttl} />
    <button type="submit">Add zone</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

export function Dns({ params, live }) {
  const zones = useApi(() => api.get("/api/dns/zones"));
  useLiveReload(live, ZONE_EVENTS, zones.reload);
  const selected = params[0] || null;
  const select = (name) => {
    location.hash = name ? `#/dns/${encodeURIComponent(name)}` : "#/dns";
  };

  return html`<div class="page dns">
    <h1>DNS</h1>
    <${ErrorBox} error=${zones.error} feature="DNS" />
    ${zones.data
      ? html`<div class="split">
          <nav class="side" aria-label="Zones">
            <h2>Zones</h2>
            <ul class="zone-list">
              ${zones.data.map(
                (zone) => html`<li><a href=${"#/dns/" + encodeURIComponent(zone.name)}
                  aria-current=${zone.name === selected ? "page" : undefined}>${zone.name}</a>
                  <small> ${(zone.records || []).length} records</small></li>`,
              )}
            </ul>
            <${CreateZone} onCreated=${(name) => {
              zones.reload();
              select(name);
            }} />
          </nav>
          <div class="main-column">
            ${selected
              ? html`<${ZoneView} key=${selected} name=${selected} live=${live} onDeleted=${() => {
                  zones.reload();
                  select(null);
                }} />`
              : html`<p class="hint">Choose a zone or add one.</p>`}
          </div>
        </div>`
      : zones.loading
        ? html`<p>Loading…</p>`
        : null}
  </div>`;
}
