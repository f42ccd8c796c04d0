// Mail: mailboxes with quotas, messages per folder, message view, compose.

import { useEffect, useState } from "./vendor/hooks.module.js";
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
  useApi,
  useLiveReload,
} from "./ui.js";
import { frameDocument, sanitizeMessageHtml } from "./sanitize.js";

const FOLDERS = ["inbox", "sent", "drafts", "trash", "junk", "archive"];
const PAGE_SIZE = 25;
const MIB = 1024 * 1024;
const MAIL_EVENTS = ["mailboxCreated", "mailboxUpdated", "mailboxDeleted", "emailSent",
  "emailReceived", "messageUpdated", "messageDeleted"];

function QuotaBar({ used, quota }) {
  const percent = quota ? Math.min(100, Math.round((100 * (used || 0)) / quota)) : 0;
  return html`<div class="quota">
    <progress max="100" value=${percent} aria-label="Quota used">${percent}%</progress>
    <small>${formatBytes(used || 0)} of ${quota ? formatBytes(quota) : "unlimited"} (${percent}%)</small>
  </div>`;
}

function MailboxForm({ mailbox, onSaved, onCancel }) {
  const creating = !mailbox;
  const [form, setForm] = useState({
    email: mailbox ? mailbox.email : "",
    name: mailbox ? mailbox.name || "" : "",
    password: "",
    quotaMiB: mailbox && mailbox.quota ? String(Math.round(mailbox.quota / MIB)) : "100",
    enabled: mailbox ? mailbox.enabled !== false : true,
  });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    const body = { name: form.name, quota: Math.round(Number(form.quotaMiB) * MIB), enabled: form.enabled };
    if (form.password) body.password = form.password;
    try {
      const result = creating
        ? await api.post("/api/mailboxes", { email: form.email.trim(), ...body })
        : await api.put(`/api/mailboxes/${encodeURIComponent(mailbox.email)}`, body);
      onSaved(result);
    } catch (failure) {
      const fields = fieldErrors(failure);
      if (fields.quota) fields.quotaMiB = fields.quota;
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  return html`<form class="card form-grid" onSubmit=${submit}
      aria-label=${creating ? "New mailbox" : "Edit " + mailbox.email}>
    ${creating
      ? html`<${TextInput} label="Address" name="mailbox-email" type="email" value=${form.email}
          onInput=${set("email")} error=${errors.email} required placeholder="user@example.com" />`
      : null}
    <${TextInput} label="Name" name="mailbox-name" value=${form.name} onInput=${set("name")} error=${errors.name} />
    <${TextInput} label=${creating ? "Password (empty: generate one)" : "New password (empty: keep)"}
      name="mailbox-password" type="password" value=${form.password} onInput=${set("password")}
      error=${errors.password} autocomplete="new-password" />
    <${TextInput} label="Quota (MiB)" name="mailbox-quota" type="number" min="0" step="1"
      value=${form.quotaMiB} onInput=${set("quotaMiB")} error=${errors.quotaMiB} />
    <${Checkbox} label="Enabled" checked=${form.enabled} onChange=${set("enabled")} />
    <${ErrorBox} error=${error} />
    <div class="buttons">
      <button type="submit">${creating ? "Create mailbox" : "Save"}</button>
      <button type="button" class="secondary" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

// The generated password is shown once, until dismissed, and kept nowhere else.
function GeneratedPassword({ created, onDismiss }) {
  return html`<div class="notice password-once" role="status">
    <p>Mailbox <strong>${created.email}</strong> created.</p>
    ${created.password
      ? html`<p>Its generated password, shown only this once:
          <code class="secret" data-testid="generated-password">${created.password}</code></p>`
      : null}
    <button type="button" onClick=${onDismiss}>Done, I stored it</button>
  </div>`;
}

function MessageView({ id, onChanged, onClose }) {
  const message = useApi(() => api.get(`/api/messages/${id}`), [id]);
  const [folder, setFolder] = useState("archive");
  const [error, setError] = useState(null);

  useEffect(() => {
    // Opening a message marks it read, as mail clients do.
    if (message.data && message.data.read === false) {
      api.put(`/api/messages/${id}/read`, { read: true }).then(onChanged, () => {});
    }
  }, [message.data]);

  async function act(promise) {
    setError(null);
    try {
      await promise;
      onChanged();
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  }

  if (message.error) return html`<${ErrorBox} error=${message.error} feature="This message" />`;
  if (!message.data) return html`<p>Loading message…</p>`;
  const data = message.data;
  const sanitized = data.html ? sanitizeMessageHtml(data.html) : null;
  return html`<article class="message card" aria-labelledby="message-subject">
    <h3 id="message-subject">${data.subject || "(no subject)"}</h3>
    <dl class="pairs">
      <dt>From</dt><dd>${data.from}</dd>
      <dt>To</dt><dd>${Array.isArray(data.to) ? data.to.join(", ") : data.to}</dd>
      <dt>Date</dt><dd>${formatDate(data.date)}</dd>
    </dl>
    ${sanitized
      ? html`${sanitized.blocked
            ? html`<p class="hint">Remote content was blocked (${sanitized.blocked} references).</p>`
            : null}
          <iframe class="message-frame" title="Message content" sandbox=""
            referrerpolicy="no-referrer" srcdoc=${frameDocument(sanitized.html)}></iframe>`
      : html`<pre class="message-body">${data.body}</pre>`}
    ${data.attachments && data.attachments.length
      ? html`<ul class="attachments">${data.attachments.map(
          (file) => html`<li>${file.filename || file.name} (${file.contentType || file.type}, ${formatBytes(file.size)})</li>`,
        )}</ul>`
      : null}
    <div class="buttons">
      <button type="button" onClick=${() => act(api.put(`/api/messages/${id}/read`, { read: false }))}>
        Mark unread</button>
      <label for="move-folder">Move to</label>
      <select id="move-folder" value=${folder} onChange=${(event) => setFolder(event.currentTarget.value)}>
        ${FOLDERS.map((name) => html`<option value=${name}>${name}</option>`)}
      </select>
      <button type="button" onClick=${() => act(api.put(`/api/messages/${id}/move`, { folder })).then((ok) => ok && onClose())}>
        Move</button>
      <${ConfirmButton} label="Delete message" onConfirm=${() => act(api.del(`/api/messages/${id}`)).then((ok) => ok && onClose())} />
      <button type="button" class="secondary" onClick=${onClose}>Close</button>
    </div>
    <${ErrorBox} error=${error} />
  </article>`;
}

function MessageList({ mailbox, live }) {
  const [folder, setFolder] = useState("inbox");
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [offset, setOffset] = useState(0);
  const [openId, setOpenId] = useState(null);
  const messages = useApi(
    () =>
      api.get(`/api/mailboxes/${encodeURIComponent(mailbox)}/messages`, {
        query: { folder, unreadOnly: unreadOnly ? "true" : undefined, limit: PAGE_SIZE, offset },
      }),
    [mailbox, folder, unreadOnly, offset],
  );
  useLiveReload(live, MAIL_EVENTS, messages.reload);

  return html`<section class="messages" aria-labelledby="messages-title">
    <h2 id="messages-title">Messages of ${mailbox}</h2>
    <div class="toolbar">
      <div role="group" aria-label="Folders" class="folders">
        ${FOLDERS.map(
          (name) => html`<button type="button" aria-pressed=${name === folder}
            onClick=${() => {
              setFolder(name);
              setOffset(0);
              setOpenId(null);
            }}>${name}</button>`,
        )}
      </div>
      <${Checkbox} label="Unread only" checked=${unreadOnly} onChange=${(value) => {
        setUnreadOnly(value);
        setOffset(0);
      }} />
      <button type="button" class="secondary" onClick=${messages.reload}>Refresh</button>
    </div>
    <${ErrorBox} error=${messages.error} feature="Messages" />
    ${messages.data
      ? html`<div class="table-wrap"><table class="message-list stack">
          <thead><tr><th scope="col">From</th><th scope="col">Subject</th><th scope="col">Date</th>
            <th scope="col">Size</th></tr></thead>
          <tbody>
            ${messages.data.length === 0
              ? html`<tr><td colspan="4">No messages in ${folder}${unreadOnly ? " that are unread" : ""}.</td></tr>`
              : messages.data.map(
                  (message) => html`<tr key=${message.id} class=${message.read ? "read" : "unread"}
                      data-message=${message.id}>
                    <td>${message.from}</td>
                    <td><a href=${"#/mail/" + encodeURIComponent(mailbox) + "/" + message.id}
                      onClick=${(event) => {
                        event.preventDefault();
                        setOpenId(message.id);
                      }}>${message.subject || "(no subject)"}</a>
                      ${message.read ? null : html`<span class="badge">unread</span>`}</td>
                    <td>${formatDate(message.date)}</td>
                    <td>${formatBytes(message.size)}</td>
                  </tr>`,
                )}
          </tbody>
        </table></div>
        <div class="pager">
          <button type="button" disabled=${offset === 0}
            onClick=${() => setOffset(Math.max(0, offset - PAGE_SIZE))}>Newer</button>
          <span>Messages ${messages.data.length ? offset + 1 : 0}–${offset + messages.data.length}</span>
          <button type="button" disabled=${messages.data.length < PAGE_SIZE}
            onClick=${() => setOffset(offset + PAGE_SIZE)}>Older</button>
        </div>`
      : null}
    ${openId !== null
      ? html`<${MessageView} key=${openId} id=${openId} onChanged=${messages.reload}
          onClose=${() => setOpenId(null)} />`
      : null}
  </section>`;
}

function Compose({ mailboxes }) {
  const first = mailboxes.length ? mailboxes[0].email : "";
  const [form, setForm] = useState({ from: first, to: "", subject: "", body: "", html: "" });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [sent, setSent] = useState(null);
  const set = (key) => (value) => setForm({ ...form, [key]: value });

  // The mailbox list may arrive after the form is first drawn.
  useEffect(() => {
    if (!form.from && first) setForm({ ...form, from: first });
  }, [first]);

  async function submit(event) {
    event.preventDefault();
    setErrors({});
    setError(null);
    setSent(null);
    const body = { from: form.from.trim(), to: form.to.trim(), subject: form.subject, body: form.body };
    if (form.html.trim()) body.html = form.html;
    try {
      const answer = await api.post("/api/send-email", body);
      setSent(answer.message || {});
      setForm({ ...form, to: "", subject: "", body: "", html: "" });
    } catch (failure) {
      const fields = fieldErrors(failure);
      setErrors(fields);
      if (!Object.keys(fields).length) setError(failure);
    }
  }

  return html`<form class="card form-grid compose" onSubmit=${submit} aria-labelledby="compose-title">
    <h2 id="compose-title">Send a message</h2>
    <${TextInput} label="From" name="compose-from" value=${form.from} onInput=${set("from")}
      error=${errors.from} required list="compose-senders" />
    <datalist id="compose-senders">
      ${mailboxes.map((mailbox) => html`<option value=${mailbox.email}></option>`)}
    </datalist>
    <${TextInput} label="To" name="compose-to" value=${form.to} onInput=${set("to")} error=${errors.to} required />
    <${TextInput} label="Subject" name="compose-subject" value=${form.subject} onInput=${set("subject")}
      error=${errors.subject} />
    <${Field} label="Text" error=${errors.body}>
      ${(id) => html`<textarea id=${id} name="compose-body" rows="6" value=${form.body}
        onInput=${(event) => set("body")(event.currentTarget.value)}></textarea>`}
    <//>
    <${Field} label="HTML version (optional)" error=${errors.html}>
      ${(id) => html`<textarea id=${id} name="compose-html" rows="3" class="mono" value=${form.html}
        onInput=${(event) => set("html")(event.currentTarget.value)}></textarea>`}
    <//>
    <${ErrorBox} error=${error} feature="Sending" />
    ${sent ? html`<p class="notice" role="status">Message sent${sent.messageId ? ` (${sent.messageId})` : ""}.</p>` : null}
    <div class="buttons"><button type="submit">Send</button></div>
  </form>`;
}

export function Mail({ params, live }) {
  const mailboxes = useApi(() => api.get("/api/mailboxes"));
  const stats = useApi(() => api.get("/api/email/stats"));
  useLiveReload(live, MAIL_EVENTS, mailboxes.reload);
  useLiveReload(live, MAIL_EVENTS, stats.reload);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState(null);
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const selected = params[0] || null;

  async function remove(mailbox, deleteMessages) {
    setError(null);
    try {
      await api.del(`/api/mailboxes/${encodeURIComponent(mailbox.email)}`, {
        query: { deleteMessages: deleteMessages ? "true" : undefined },
      });
      mailboxes.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  if (mailboxes.error) {
    return html`<div class="page mail"><h1>Mail</h1>
      <${ErrorBox} error=${mailboxes.error} feature="Mail" /></div>`;
  }
  const list = mailboxes.data || [];
  return html`<div class="page mail">
    <h1>Mail</h1>
    ${stats.data
      ? html`<dl class="summary">
          <div><dt>Mailboxes</dt><dd>${stats.data.mailboxCount}</dd></div>
          <div><dt>Messages</dt><dd>${stats.data.totalMessages}</dd></div>
          <div><dt>Received</dt><dd>${stats.data.messagesReceived}</dd></div>
          <div><dt>Sent</dt><dd>${stats.data.messagesSent}</dd></div>
          <div><dt>Storage</dt><dd>${formatBytes(stats.data.totalStorage)}</dd></div>
        </dl>`
      : null}
    ${created ? html`<${GeneratedPassword} created=${created} onDismiss=${() => setCreated(null)} />` : null}
    <section aria-labelledby="mailboxes-title">
      <h2 id="mailboxes-title">Mailboxes</h2>
      <div class="buttons">
        <button type="button" aria-expanded=${creating} onClick=${() => setCreating(!creating)}>
          ${creating ? "Close the form" : "Add a mailbox"}</button>
      </div>
      ${creating
        ? html`<${MailboxForm} onSaved=${(mailbox) => {
            setCreating(false);
            setCreated(mailbox);
            mailboxes.reload();
          }} onCancel=${() => setCreating(false)} />`
        : null}
      <${ErrorBox} error=${error} />
      <div class="table-wrap"><table class="mailboxes stack">
        <thead><tr><th scope="col">Address</th><th scope="col">Name</th><th scope="col">Quota</th>
          <th scope="col">Messages</th><th scope="col">Enabled</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          ${list.length === 0 && !mailboxes.loading ? html`<tr><td colspan="6">No mailboxes yet.</td></tr>` : null}
          ${list.map(
            (mailbox) => html`<tr key=${mailbox.email} data-mailbox=${mailbox.email}>
                <th scope="row"><a href=${"#/mail/" + encodeURIComponent(mailbox.email)}
                  aria-current=${mailbox.email === selected ? "page" : undefined}>${mailbox.email}</a></th>
                <td>${mailbox.name}</td>
                <td><${QuotaBar} used=${mailbox.quotaUsed} quota=${mailbox.quota} /></td>
                <td>${mailbox.messageCount ?? "–"} (${mailbox.unreadCount ?? 0} unread)</td>
                <td>${mailbox.enabled === false ? "no" : "yes"}</td>
                <td class="actions">
                  <button type="button" onClick=${() => setEditing(mailbox.email)}>Edit</button>
                  <${ConfirmButton} label="Delete" confirmLabel="Confirm: delete with its messages"
                    onConfirm=${() => remove(mailbox, true)} />
                </td>
              </tr>
              ${editing === mailbox.email
                ? html`<tr class="expanded"><td colspan="6"><${MailboxForm} mailbox=${mailbox}
                    onSaved=${() => {
                      setEditing(null);
                      mailboxes.reload();
                    }} onCancel=${() => setEditing(null)} /></td></tr>`
                : null}`,
          )}
        </tbody>
      </table></div>
    </section>
    ${selected ? html`<${MessageList} key=${selected} mailbox=${selected} live=${live} />` : null}
    <${Compose} mailboxes=${list} />
    ${stats.error && !stats.error.unavailable ? html`<p class="hint">${errorText(stats.error)}</p>` : null}
  </div>`;
}
