// The panel's shell: login, navigation by URL hash, the live event feed.

import { render } from "./vendor/preact.module.js";
import { useCallback, useEffect, useRef, useState } from "./vendor/hooks.module.js";
import {
  EventFeed,
  api,
  currentUser,
  errorText,
  fieldErrors,
  isDefaultPassword,
  login,
  onAuthFailure,
  setCredentials,
} from "./api.js";
import { html, TextInput } from "./ui.js";
import { Dashboard } from "./dashboard.js";
import { Sites } from "./sites.js";
import { Dns } from "./dns.js";
import { Mail } from "./mail.js";
import { Sftp } from "./sftp.js";
import { ConfigPage } from "./config.js";

const PAGES = [
  { path: "dashboard", title: "Dashboard", component: Dashboard },
  { path: "sites", title: "Sites", component: Sites },
  { path: "dns", title: "DNS", component: Dns },
  { path: "mail", title: "Mail", component: Mail },
  { path: "sftp", title: "SFTP users", component: Sftp },
  { path: "config", title: "Config", component: ConfigPage },
];

function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { page: parts[0] || "dashboard", params: parts.slice(1) };
}

function useRoute() {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const listener = () => setRoute(currentRoute());
    window.addEventListener("hashchange", listener);
    return () => window.removeEventListener("hashchange", listener);
  }, []);
  return route;
}

function LoginForm({ onLogin, message }) {
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(message || "");
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const status = await login(username, password);
      onLogin(status);
    } catch (failure) {
      setError(errorText(failure));
    } finally {
      setBusy(false);
    }
  }

  return html`<main class="login">
    <form onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title">OneStack admin</h1>
      <${TextInput} label="Username" name="username" value=${username}
        onInput=${setUsername} autocomplete="username" required />
      <${TextInput} label="Password" name="password" type="password" value=${password}
        onInput=${setPassword} autocomplete="current-password" required autofocus />
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
  </main>`;
}

function PasswordBanner({ onChanged }) {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    if (password !== repeat) {
      setError("The two passwords differ.");
      return;
    }
    if (password === "admin123") {
      setError("Choose a password other than the default one.");
      return;
    }
    setBusy(true);
    try {
      await api.put("/api/config", { server: { adminPanel: { password } } });
      setCredentials(currentUser(), password);
      onChanged();
    } catch (failure) {
      const fields = fieldErrors(failure);
      setError(fields.password || errorText(failure));
    } finally {
      setBusy(false);
    }
  }

  return html`<section class="banner warning" aria-label="Default password">
    <p>
      <strong>The admin password is still the default one.</strong> Anyone who
      can reach this port can log in. Change it now.
    </p>
    ${open
      ? html`<form class="inline-form" onSubmit=${submit}>
          <${TextInput} label="New password" type="password" name="new-password" value=${password}
            onInput=${setPassword} autocomplete="new-password" minlength="8" required />
          <${TextInput} label="Repeat it" type="password" name="repeat-password" value=${repeat}
            onInput=${setRepeat} autocomplete="new-password" required />
          ${error ? html`<p class="error" role="alert">${error}</p>` : null}
          <button type="submit" disabled=${busy}>Change password</button>
        </form>`
      : html`<button type="button" onClick=${() => setOpen(true)}>Change the password</button>`}
  </section>`;
}

function LiveIndicator({ feed }) {
  if (feed.connected) return html`<span class="live on" role="status">Live</span>`;
  const seconds = feed.retryAt ? Math.max(0, Math.round((feed.retryAt - Date.now()) / 1000)) : null;
  return html`<span class="live off" role="status">
    Disconnected${seconds !== null ? `, reconnecting in ${seconds} s` : ", connecting…"}
  </span>`;
}

function Shell({ onLogout, defaultPassword, onPasswordChanged }) {
  const route = useRoute();
  const [feed, setFeed] = useState({ connected: false, connecting: true });
  const subscribers = useRef(new Set());
  const [events, setEvents] = useState([]);
  const [, tick] = useState(0);

  useEffect(() => {
    const client = new EventFeed(
      (event) => {
        // The feed lists what happened; status ticks and the login reply are not events.
        if (event.type !== "status" && event.type !== "auth") {
          setEvents((previous) => [{ ...event, at: new Date() }, ...previous].slice(0, 100));
        }
        for (const subscriber of subscribers.current) subscriber(event);
      },
      (state) => setFeed(state),
    );
    client.connect();
    // Redraw the reconnect countdown once a second.
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => {
      client.close();
      clearInterval(timer);
    };
  }, []);

  const subscribe = useCallback((callback) => {
    subscribers.current.add(callback);
    return () => subscribers.current.delete(callback);
  }, []);
  const live = { connected: feed.connected, events, subscribe };
  const page = PAGES.find((candidate) => candidate.path === route.page) || PAGES[0];
  const Page = page.component;
  useEffect(() => {
    document.title = `${page.title} – OneStack admin`;
  }, [page]);

  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/dashboard">OneStack</a>
      <nav aria-label="Sections">
        <ul>
          ${PAGES.map(
            (candidate) => html`<li>
              <a href=${"#/" + candidate.path}
                aria-current=${candidate === page ? "page" : undefined}>${candidate.title}</a>
            </li>`,
          )}
        </ul>
      </nav>
      <div class="session">
        <${LiveIndicator} feed=${feed} />
        <span class="user">${currentUser()}</span>
        <button type="button" class="link" onClick=${onLogout}>Log out</button>
      </div>
    </header>
    ${defaultPassword ? html`<${PasswordBanner} onChanged=${onPasswordChanged} />` : null}
    <main id="content" tabindex="-1">
      <${Page} params=${route.params} live=${live} />
    </main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(null);
  const [message, setMessage] = useState("");

  useEffect(
    () =>
      onAuthFailure(() => {
        setCredentials(null);
        setMessage("The session is no longer valid (the password may have changed): sign in again.");
        setSession(null);
      }),
    [],
  );

  if (!session) {
    return html`<${LoginForm}
      message=${message}
      onLogin=${(status) => {
        setMessage("");
        const fromApi = status && typeof status.defaultPassword === "boolean";
        setSession({ defaultPassword: fromApi ? status.defaultPassword : isDefaultPassword() });
      }}
    />`;
  }
  return html`<${Shell}
    defaultPassword=${session.defaultPassword}
    onPasswordChanged=${() => setSession({ ...session, defaultPassword: false })}
    onLogout=${() => {
      setCredentials(null);
      setSession(null);
    }}
  />`;
}

const container = document.getElementById("app");
// Drop the loading text first: render() diffs against the existing children.
container.textContent = "";
render(html`<${App} />`, container);
