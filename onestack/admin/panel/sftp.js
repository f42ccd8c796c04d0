// SFTP users: accounts confined to a site's document root, with keys.

import { useState } from "./vendor/hooks.module.js";
import { api, fieldErrors } from "./api.js";
import { html, Checkbox, ConfirmButton, ErrorBox, Field, TextInput, useApi, useLiveReload } from "./ui.js";

function keyLines(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

function SshUserForm({ user, vhosts, onSaved, onCancel }) {
  const creating = !user;
  const [form, setForm] = useState({
    username: user ? user.username : "",
    password: "",
    publicKeys: user ? (user.publicKeys || []).join("\n") : "",
    vhostId: user && user.vhostId !== undefined && user.vhostId !== null ? String(user.vhostId) : "",
    enabled: user ? user.enabled !== false : true,
  });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    const body = { publicKeys: keyLines(form.publicKeys), enabled: form.enabled };
    if (form.vhostId) body.vhostId = Number(form.vhostId);
    if (form.password) body.password = form.password;
    try {
      const result = creating
        ? await api.post("/api/ssh/users", { username: form.username.trim(), ...body })
        : await api.put(`/api/ssh/users/${encodeURIComponent(user.username)}`, body);
      onSaved(result);
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  return html`<form class="card form-grid" onSubmit=${submit}
      aria-label=${creating ? "New SFTP user" : "Edit " + user.username}>
    ${creating
      ? html`<${TextInput} label="Username" name="ssh-username" value=${form.username}
          onInput=${set("username")} error=${errors.username} required autocomplete="off" />`
      : null}
    <${TextInput} label=${creating ? "Password (empty: generate one)" : "New password (empty: keep)"}
      name="ssh-password" type="password" value=${form.password} onInput=${set("password")}
      error=${errors.password} autocomplete="new-password" />
    <${Field} label="Site (its document root is the account's root)" error=${errors.vhostId}>
      ${(id) => html`<select id=${id} name="ssh-vhost" value=${form.vhostId}
          onChange=${(event) => set("vhostId")(event.currentTarget.value)}>
        <option value="">(choose a site)</option>
        ${vhosts.map((vhost) => html`<option value=${String(vhost.id)}>${vhost.domain}</option>`)}
      </select>`}
    <//>
    <${Field} label="Public keys (OpenSSH format, one per line)" error=${errors.publicKeys}>
      ${(id) => html`<textarea id=${id} name="ssh-keys" rows="4" class="mono" value=${form.publicKeys}
        onInput=${(event) => set("publicKeys")(event.currentTarget.value)}></textarea>`}
    <//>
    <${Checkbox} label="Enabled" checked=${form.enabled} onChange=${set("enabled")} />
    <${ErrorBox} error=${error} />
    <div class="buttons">
      <button type="submit">${creating ? "Create user" : "Save"}</button>
      <button type="button" class="secondary" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

const SSH_EVENTS = ["sshUserCreated", "sshUserUpdated", "sshUserDeleted"];

export function Sftp({ live }) {
  const users = useApi(() => api.get("/api/ssh/users"));
  useLiveReload(live, SSH_EVENTS, users.reload);
  const vhosts = useApi(() => api.get("/api/vhosts"));
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState(null);
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const sites = vhosts.data || [];
  const siteName = (id) => {
    const vhost = sites.find((candidate) => String(candidate.id) === String(id));
    return vhost ? vhost.domain : id ?? "–";
  };

  async function remove(user) {
    setError(null);
    try {
      await api.del(`/api/ssh/users/${encodeURIComponent(user.username)}`);
      users.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  if (users.error) {
    return html`<div class="page sftp"><h1>SFTP users</h1>
      <${ErrorBox} error=${users.error} feature="SFTP accounts" /></div>`;
  }
  return html`<div class="page sftp">
    <h1>SFTP users</h1>
    ${created
      ? html`<div class="notice password-once" role="status">
          <p>SFTP user <strong>${created.username}</strong> created.</p>
          ${created.password
            ? html`<p>Its generated password, shown only this once:
                <code class="secret">${created.password}</code></p>`
            : null}
          <button type="button" onClick=${() => setCreated(null)}>Done, I stored it</button>
        </div>`
      : null}
    <div class="buttons">
      <button type="button" aria-expanded=${creating} onClick=${() => setCreating(!creating)}>
        ${creating ? "Close the form" : "Add an SFTP user"}</button>
    </div>
    ${creating
      ? html`<${SshUserForm} vhosts=${sites} onSaved=${(user) => {
          setCreating(false);
          setCreated(user);
          users.reload();
        }} onCancel=${() => setCreating(false)} />`
      : null}
    <${ErrorBox} error=${error} />
    <div class="table-wrap"><table class="ssh-users stack">
      <thead><tr><th scope="col">User</th><th scope="col">Site</th><th scope="col">Keys</th>
        <th scope="col">Password</th><th scope="col">Enabled</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        ${(users.data || []).length === 0 && !users.loading ? html`<tr><td colspan="6">No SFTP users yet.</td></tr>` : null}
        ${(users.data || []).map(
          (user) => html`<tr key=${user.username} data-user=${user.username}>
              <th scope="row">${user.username}</th>
              <td>${siteName(user.vhostId)}</td>
              <td>${(user.publicKeys || []).length}</td>
              <td>${user.hasPassword === false ? "none" : "set"}</td>
              <td>${user.enabled === false ? "no" : "yes"}</td>
              <td class="actions">
                <button type="button" onClick=${() => setEditing(user.username)}>Edit</button>
                <${ConfirmButton} label="Delete" onConfirm=${() => remove(user)} />
              </td>
            </tr>
            ${editing === user.username
              ? html`<tr class="expanded"><td colspan="6"><${SshUserForm} user=${user} vhosts=${sites}
                  onSaved=${() => {
                    setEditing(null);
                    users.reload();
                  }} onCancel=${() => setEditing(null)} /></td></tr>`
              : null}`,
        )}
      </tbody>
    </table></div>
  </div>`;
}
