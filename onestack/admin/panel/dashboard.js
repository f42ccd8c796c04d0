// Dashboard: server status, module controls, traffic charts, event feed.

import { useEffect, useRef, useState } from "./vendor/hooks.module.js";
import uPlot from "./vendor/uPlot.esm.js";
import { api, errorText } from "./api.js";
import { html, ErrorBox, formatBytes, formatDuration } from "./ui.js";

const HOUR = 3600;

// Rates over the last hour survive navigation between pages of the tab.
const history = {
  times: [],
  http: [],
  dns: [],
  mail: [],
  previous: null,
};

// Read the cumulative counters behind the charts. A status event's own
// "counters" object is used when the server sends one. Without it, HTTP
// comes from the vhosts' stats and mail from the email stats, and DNS has
// no source.
async function readCounters(status) {
  const counters = status && status.counters;
  if (counters && typeof counters === "object") {
    return {
      http: numberOrNull(counters.httpRequests),
      dns: numberOrNull(counters.dnsQueries),
      mail: numberOrNull(counters.mailMessages),
    };
  }
  const [vhosts, email] = await Promise.allSettled([
    api.get("/api/vhosts"),
    api.get("/api/email/stats"),
  ]);
  let http = null;
  if (vhosts.status === "fulfilled" && Array.isArray(vhosts.value)) {
    http = vhosts.value.reduce((sum, vhost) => sum + Number((vhost.stats || {}).requests || 0), 0);
  }
  let mail = null;
  if (email.status === "fulfilled" && email.value) {
    mail = Number(email.value.messagesReceived || 0) + Number(email.value.messagesSent || 0);
  }
  // NOTE: no API reports DNS queries yet, so the DNS chart stays empty until
  // status events carry counters.dnsQueries.
  return { http, dns: null, mail };
}

function numberOrNull(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

async function recordSample(status) {
  const now = Date.now() / 1000;
  const counters = await readCounters(status);
  const previous = history.previous;
  history.previous = { at: now, counters };
  if (!previous || now - previous.at < 1) return;
  const elapsed = now - previous.at;
  const rate = (key) => {
    const before = previous.counters[key];
    const after = counters[key];
    // A counter that went down was reset by a restart: skip that interval.
    if (before === null || after === null || after < before) return null;
    return (after - before) / elapsed;
  };
  history.times.push(now);
  history.http.push(rate("http"));
  history.dns.push(rate("dns"));
  history.mail.push(rate("mail"));
  while (history.times.length && history.times[0] < now - HOUR) {
    for (const key of ["times", "http", "dns", "mail"]) history[key].shift();
  }
}

function Chart({ title, series, color, unavailable }) {
  const holder = useRef(null);
  const plot = useRef(null);

  useEffect(() => {
    const element = holder.current;
    const options = {
      width: Math.max(240, element.clientWidth),
      height: 160,
      legend: { show: false },
      scales: {
        // Always the last hour, so a few points do not stretch over years.
        x: { time: true, range: () => [Date.now() / 1000 - HOUR, Date.now() / 1000] },
        y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] },
      },
      axes: [{}, { size: 48 }],
      series: [{}, { label: title, stroke: color, width: 2, spanGaps: false }],
    };
    plot.current = new uPlot(options, [history.times, history[series]], element);
    const observer = new ResizeObserver(() => {
      plot.current.setSize({ width: Math.max(240, element.clientWidth), height: 160 });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.current.destroy();
    };
  }, []);

  useEffect(() => {
    if (plot.current) plot.current.setData([history.times.slice(), history[series].slice()]);
  });

  const values = history[series].filter((value) => value !== null);
  const latest = values.length ? values[values.length - 1] : null;
  return html`<figure class="chart">
    <figcaption>
      ${title}: <strong>${latest === null ? "–" : latest.toFixed(2)}</strong> per second
      ${unavailable ? html`<small class="hint"> (${unavailable})</small>` : null}
    </figcaption>
    <div ref=${holder} class="chart-area" role="img" aria-label=${title + " over the last hour"}></div>
  </figure>`;
}

function modulePorts(config) {
  if (!config) return [];
  const ports = [];
  if (config.port) ports.push(config.port);
  if (config.smtp && config.smtp.port) ports.push(`SMTP ${config.smtp.port}`);
  if (config.imap && config.imap.port) ports.push(`IMAP ${config.imap.port}`);
  return ports;
}

function ModuleRow({ name, module, onChanged }) {
  const [busy, setBusy] = useState("");
  const [error, setError] = useState(null);

  async function act(action) {
    setBusy(action);
    setError(null);
    try {
      await api.post(`/api/modules/${encodeURIComponent(name)}/${action}`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy("");
      onChanged();
    }
  }

  const running = module.running;
  return html`<tr data-module=${name}>
    <th scope="row">${name}</th>
    <td>
      <span class=${"state " + (running ? "running" : "stopped")} data-state=${running ? "running" : "stopped"}>
        ${running ? "running" : "stopped"}
      </span>
    </td>
    <td>${module.workers}</td>
    <td>${modulePorts(module.config).join(", ") || "–"}</td>
    <td class="actions">
      <button type="button" disabled=${!!busy || running} onClick=${() => act("start")}
        aria-label=${"Start " + name}>Start</button>
      <button type="button" disabled=${!!busy || !running} onClick=${() => act("stop")}
        aria-label=${"Stop " + name}>Stop</button>
      <button type="button" disabled=${!!busy || !running} onClick=${() => act("reload")}
        aria-label=${"Reload " + name}>Reload</button>
      ${error ? html`<span class="error" role="alert">${errorText(error)}</span>` : null}
    </td>
  </tr>`;
}

function EventFeedList({ events }) {
  if (!events.length) return html`<p class="hint">No events yet in this session.</p>`;
  return html`<ol class="events" aria-live="polite">
    ${events.slice(0, 30).map(
      (event) => html`<li>
        <time>${event.at.toLocaleTimeString()}</time>
        <strong>${event.type}</strong>
        <code>${summarise(event.data)}</code>
      </li>`,
    )}
  </ol>`;
}

function summarise(data) {
  if (!data || typeof data !== "object") return "";
  const keys = ["module", "domain", "name", "zone", "email", "from", "to", "id", "status"];
  const parts = [];
  for (const key of keys) {
    if (data[key] !== undefined && typeof data[key] !== "object") parts.push(`${key}=${data[key]}`);
  }
  return parts.join(" ");
}

export function Dashboard({ live }) {
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const [, setSamples] = useState(0);

  async function refresh() {
    try {
      const fresh = await api.get("/api/status");
      setStatus(fresh);
      setError(null);
      return fresh;
    } catch (failure) {
      setError(failure);
      return null;
    }
  }

  useEffect(() => {
    refresh();
    const unsubscribe = live.subscribe((event) => {
      if (event.type === "status") {
        setStatus(event.data);
        recordSample(event.data).then(() => setSamples((n) => n + 1));
      } else if (event.type.startsWith("module") || event.type === "workerRestarted") {
        refresh();
      }
    });
    return unsubscribe;
  }, []);

  // Without the WebSocket, poll every 5 s so the page stays current.
  useEffect(() => {
    if (live.connected) return undefined;
    const timer = setInterval(async () => {
      const fresh = await refresh();
      if (fresh) recordSample(fresh).then(() => setSamples((n) => n + 1));
    }, 5000);
    return () => clearInterval(timer);
  }, [live.connected]);

  const modules = status ? Object.entries(status.modules || {}) : [];
  const memory = (status && status.memory) || {};
  return html`<div class="page dashboard">
    <h1>Dashboard</h1>
    <${ErrorBox} error=${error} />
    ${status
      ? html`<dl class="summary">
          <div><dt>Uptime</dt><dd data-testid="uptime">${formatDuration(status.uptime)}</dd></div>
          <div><dt>Memory (all processes)</dt><dd>${formatBytes(memory.rss)}</dd></div>
          <div><dt>Supervisor</dt><dd>${formatBytes(memory.heapTotal)}</dd></div>
          <div><dt>Workers</dt><dd>${formatBytes(memory.external)}</dd></div>
        </dl>`
      : html`<p>Loading status…</p>`}
    <section aria-labelledby="modules-title">
      <h2 id="modules-title">Modules</h2>
      <div class="table-wrap">
        <table class="modules">
          <thead><tr><th scope="col">Module</th><th scope="col">State</th><th scope="col">Workers</th>
            <th scope="col">Ports</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${modules.map(([name, module]) => html`<${ModuleRow} key=${name} name=${name}
              module=${module} onChanged=${refresh} />`)}
          </tbody>
        </table>
      </div>
    </section>
    <section aria-labelledby="traffic-title">
      <h2 id="traffic-title">Traffic, last hour</h2>
      <div class="charts">
        <${Chart} title="HTTP requests" series="http" color="#1f5fa8" />
        <${Chart} title="DNS queries" series="dns" color="#2e7d32"
          unavailable=${history.dns.some((value) => value !== null) ? null : "needs the server's DNS query counter"} />
        <${Chart} title="Mail messages" series="mail" color="#b45309" />
      </div>
    </section>
    <section aria-labelledby="events-title">
      <h2 id="events-title">Live events</h2>
      <${EventFeedList} events=${live.events} />
    </section>
  </div>`;
}
