// Sites: virtual hosts with stats, create, edit, certificates, delete.

import { useState } from "./vendor/hooks.module.js";
import { api, errorText, fieldErrors } from "./api.js";
import {
  html,
  Checkbox,
  ConfirmButton,
  ErrorBox,
  Field,
  TextInput,
  formatBytes,
  formatDate,
  splitList,
  useApi,
  useLiveReload,
} from "./ui.js";

const EMPTY = { domain: "", aliases: "", documentRoot: "", enabled: true, ssl: false, redirectToHttps: false };

function VhostForm({ initial, onSaved, onCancel, submitLabel, save }) {
  const [form, setForm] = useState(initial);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setError(null);
    try {
      const result = await save({
        domain: form.domain.trim(),
        aliases: splitList(form.aliases),
        documentRoot: form.documentRoot.trim() || undefined,
        enabled: form.enabled,
        ssl: form.ssl,
        redirectToHttps: form.redirectToHttps,
      });
      onSaved(result);
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return html`<form class="card form-grid" onSubmit=${submit}>
    <${TextInput} label="Domain" name="domain" value=${form.domain} onInput=${set("domain")}
      error=${errors.domain} required placeholder="example.com" />
    <${TextInput} label="Aliases (comma or space separated)" name="aliases" value=${form.aliases}
      onInput=${set("aliases")} error=${errors.aliases} placeholder="www.example.com" />
    <${TextInput} label="Document root (empty: created under the data directory)" name="documentRoot"
      value=${form.documentRoot} onInput=${set("documentRoot")} error=${errors.documentRoot} />
    <${Checkbox} label="Enabled" name="enabled" checked=${form.enabled} onChange=${set("enabled")} />
    <${Checkbox} label="HTTPS" name="ssl" checked=${form.ssl} onChange=${set("ssl")} />
    <${Checkbox} label="Redirect HTTP to HTTPS" name="redirectToHttps" checked=${form.redirectToHttps}
      onChange=${set("redirectToHttps")} />
    <${ErrorBox} error=${error} />
    <div class="buttons">
      <button type="submit" disabled=${busy}>${submitLabel}</button>
      ${onCancel ? html`<button type="button" class="secondary" onClick=${onCancel}>Cancel</button>` : null}
    </div>
  </form>`;
}

function CertificateUpload({ vhost, onSaved }) {
  const [certificate, setCertificate] = useState("");
  const [privateKey, setPrivateKey] = useState("");
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);

  async function readFile(event, setter) {
    const file = event.currentTarget.files[0];
    if (file) setter(await file.text());
  }

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    try {
      await api.put(`/api/vhosts/${vhost.id}/certificate`, { certificate, privateKey });
      setDone(true);
      setPrivateKey("");
      onSaved();
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  return html`<form class="form-grid" onSubmit=${submit}>
    <h4>Upload a certificate</h4>
    <${Field} label="Certificate chain (PEM)" error=${errors.certificate}>
      ${(id) => html`<textarea id=${id} rows="4" value=${certificate}
        onInput=${(event) => setCertificate(event.currentTarget.value)}></textarea>`}
    <//>
    <${Field} label="…or a PEM file">
      ${(id) => html`<input id=${id} type="file" accept=".pem,.crt,.cer"
        onChange=${(event) => readFile(event, setCertificate)} />`}
    <//>
    <${Field} label="Private key (PEM)" error=${errors.privateKey || errors.key}>
      ${(id) => html`<textarea id=${id} rows="4" value=${privateKey} autocomplete="off"
        onInput=${(event) => setPrivateKey(event.currentTarget.value)}></textarea>`}
    <//>
    <${ErrorBox} error=${error} feature="Certificate upload" />
    ${done ? html`<p class="notice" role="status">Certificate stored.</p>` : null}
    <div class="buttons"><button type="submit">Upload certificate</button></div>
  </form>`;
}

function VhostDetails({ vhost, onChanged }) {
  const [editing, setEditing] = useState(false);
  const [deleteFiles, setDeleteFiles] = useState(false);
  const [error, setError] = useState(null);
  const certificate = useApi(
    () => (vhost.ssl ? api.get(`/api/vhosts/${vhost.id}/certificate`) : Promise.resolve(null)),
    [vhost.id, vhost.ssl],
  );
  const displayedCertificate = certificate.data || vhost.certificate;

  async function renew() {
    setError(null);
    try {
      await api.post(`/api/vhosts/${vhost.id}/certificate/renew`);
      certificate.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  async function remove() {
    try {
      await api.del(`/api/vhosts/${vhost.id}`, { query: { deleteFiles: deleteFiles ? "true" : undefined } });
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  }

  if (editing) {
    return html`<${VhostForm}
      initial=${{
        domain: vhost.domain,
        aliases: (vhost.aliases || []).join(", "),
        documentRoot: vhost.documentRoot || "",
        enabled: vhost.enabled,
        ssl: !!vhost.ssl,
        redirectToHttps: !!vhost.redirectToHttps,
      }}
      submitLabel="Save"
      save=${(body) => api.put(`/api/vhosts/${vhost.id}`, body)}
      onSaved=${() => {
        setEditing(false);
        onChanged();
      }}
      onCancel=${() => setEditing(false)}
    />`;
  }
  return html`<div class="details">
    <dl class="pairs">
      <dt>Document root</dt><dd><code>${vhost.documentRoot}</code></dd>
      <dt>Aliases</dt><dd>${(vhost.aliases || []).join(", ") || "none"}</dd>
      <dt>HTTPS</dt><dd>${vhost.ssl ? "on" : "off"}${vhost.redirectToHttps ? ", HTTP redirects to HTTPS" : ""}</dd>
      ${vhost.ssl
        ? html`<dt>Certificate</dt><dd>${displayedCertificate
            ? html`${displayedCertificate.source || "unknown source"}, for ${(displayedCertificate.names || []).join(", ") || "–"},
                valid until ${formatDate(displayedCertificate.notAfter)}`
            : certificate.error && certificate.error.status !== 404
              ? errorText(certificate.error)
              : "none yet"}</dd>`
        : null}
      <dt>Average response time</dt><dd>${vhost.stats && vhost.stats.averageResponseTime !== undefined
        ? `${vhost.stats.averageResponseTime} ms` : "–"}</dd>
    </dl>
    ${vhost.ssl
      ? html`<div class="buttons">
            <button type="button" onClick=${renew}>Order a certificate by ACME</button>
          </div>
          <${CertificateUpload} vhost=${vhost} onSaved=${certificate.reload} />`
      : null}
    <div class="buttons">
      <button type="button" onClick=${() => setEditing(true)}>Edit ${vhost.domain}</button>
      <${Checkbox} label="Also delete the files it created" checked=${deleteFiles} onChange=${setDeleteFiles} />
      <${ConfirmButton} label=${"Delete " + vhost.domain} onConfirm=${remove} />
    </div>
    <${ErrorBox} error=${error} />
  </div>`;
}

const VHOST_EVENTS = ["vhostCreated", "vhostUpdated", "vhostDeleted", "certificateIssued"];

export function Sites({ params, live }) {
  const vhosts = useApi(() => api.get("/api/vhosts"));
  useLiveReload(live, VHOST_EVENTS, vhosts.reload);
  const [creating, setCreating] = useState(false);
  const [openId, setOpenId] = useState(params[0] || null);
  const [created, setCreated] = useState(null);

  return html`<div class="page sites">
    <h1>Sites</h1>
    <${ErrorBox} error=${vhosts.error} feature="Virtual hosts" />
    ${vhosts.error && vhosts.error.unavailable
      ? null
      : html`<div class="buttons">
          <button type="button" onClick=${() => setCreating(!creating)} aria-expanded=${creating}>
            ${creating ? "Close the form" : "Add a site"}</button>
        </div>`}
    ${creating
      ? html`<${VhostForm} initial=${EMPTY} submitLabel="Create site"
          save=${(body) => api.post("/api/vhosts", body)}
          onSaved=${(vhost) => {
            setCreating(false);
            setCreated(vhost);
            vhosts.reload();
          }}
          onCancel=${() => setCreating(false)} />`
      : null}
    ${created ? html`<p class="notice" role="status">Site ${created.domain} created.</p>` : null}
    ${vhosts.data
      ? html`<div class="table-wrap"><table class="vhosts stack">
          <thead><tr><th scope="col">Domain</th><th scope="col">Enabled</th><th scope="col">HTTPS</th>
            <th scope="col">Requests</th><th scope="col">Served</th><th scope="col">Last request</th>
            <th scope="col"><span class="sr-only">Details</span></th></tr></thead>
          <tbody>
            ${vhosts.data.length === 0
              ? html`<tr><td colspan="7">No sites yet.</td></tr>`
              : vhosts.data.map((vhost) => {
                  const open = String(openId) === String(vhost.id);
                  const stats = vhost.stats || {};
                  return html`<tr key=${vhost.id} data-domain=${vhost.domain}>
                      <th scope="row">${vhost.domain}</th>
                      <td>${vhost.enabled ? "yes" : "no"}</td>
                      <td>${vhost.ssl ? "yes" : "no"}</td>
                      <td>${stats.requests ?? 0}</td>
                      <td>${formatBytes(stats.bytesServed ?? 0)}</td>
                      <td>${formatDate(stats.lastRequest)}</td>
                      <td><button type="button" class="secondary" aria-expanded=${open}
                        onClick=${() => setOpenId(open ? null : vhost.id)}>
                        ${open ? "Close" : "Details"}<span class="sr-only"> of ${vhost.domain}</span></button></td>
                    </tr>
                    ${open
                      ? html`<tr class="expanded"><td colspan="7">
                          <${VhostDetails} vhost=${vhost} onChanged=${vhosts.reload} /></td></tr>`
                      : null}`;
                })}
          </tbody>
        </table></div>`
      : vhosts.loading
        ? html`<p>Loading…</p>`
        : null}
  </div>`;
}
