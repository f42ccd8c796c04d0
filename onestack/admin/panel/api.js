// Authenticated calls to the admin API and the WebSocket event feed.
//
// The credentials live only in this module's memory: a reload of the tab
// logs out. Every fetch sends its own Authorization header and uses
// credentials "omit", so the browser neither caches Basic credentials nor
// opens its own login dialog on a 401.

let credentials = null;

export function setCredentials(username, password) {
  credentials = username === null ? null : { username, password };
}

export function currentUser() {
  return credentials ? credentials.username : null;
}

export function isDefaultPassword() {
  return credentials !== null && credentials.password === "admin123";
}

function basicHeader(username, password) {
  // btoa takes Latin-1 only: encode as UTF-8 first, as RFC 7617 allows.
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return "Basic " + btoa(binary);
}

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.error) || `request failed with HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "";
    this.details = (body && body.details) || {};
    this.retryAfter = retryAfter;
  }

  // A 404 without details is the router's answer for a path it has no
  // route for: this server version lacks the feature. A missing resource
  // (a zone, a message) comes with details naming it.
  get unavailable() {
    return this.status === 404 && Object.keys(this.details).length === 0;
  }
}

const listeners = new Set();

// Called with the ApiError of every 401, so the app can return to login.
export function onAuthFailure(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export async function request(method, path, options = {}) {
  const headers = { Accept: "application/json" };
  if (credentials) {
    headers.Authorization = basicHeader(credentials.username, credentials.password);
  }
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    body = options.form;
  }
  let url = path;
  if (options.query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    const text = params.toString();
    if (text) url += "?" + text;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "omit", cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, { error: "the server cannot be reached: " + error.message });
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    const retryAfter = response.headers.get("Retry-After");
    const failure = new ApiError(response.status, data, retryAfter ? Number(retryAfter) : null);
    if (response.status === 401 && !options.login) {
      for (const listener of listeners) listener(failure);
    }
    throw failure;
  }
  if (options.raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, json, options = {}) => request("POST", path, { ...options, json }),
  put: (path, json, options = {}) => request("PUT", path, { ...options, json }),
  del: (path, options) => request("DELETE", path, options),
};

// Log in by checking the credentials against an authenticated route.
export async function login(username, password) {
  setCredentials(username, password);
  try {
    return await request("GET", "/api/status", { login: true });
  } catch (error) {
    setCredentials(null);
    throw error;
  }
}

// Map the API's validation details to {field: message}. Both shapes occur:
// {"field": "data"} for one field and {"errors": [{field, message}]} for many.
export function fieldErrors(error) {
  const result = {};
  if (!(error instanceof ApiError) || !error.details) return result;
  const add = (field, message) => {
    if (!field) return;
    result[field] = message;
    const last = field.split(".").pop();
    if (!(last in result)) result[last] = message;
  };
  if (error.details.field) add(error.details.field, error.message);
  for (const item of error.details.errors || []) add(item.field, item.message);
  return result;
}

export function errorText(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  if (error.status === 429) {
    const wait = error.retryAfter ?? error.details.retryAfter;
    return `Too many requests: try again in ${wait ?? "a few"} seconds.`;
  }
  if (error.status === 401) return "The username or password is wrong.";
  return error.message;
}

// RFC 6455 section 7.4.1: the server closes with this code on failed login.
const CLOSE_POLICY_VIOLATION = 1008;

// The event feed with reconnection. The browser WebSocket cannot send an
// Authorization header, so the first message authenticates.
export class EventFeed {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.socket = null;
    this.closed = false;
    this.attempt = 0;
    this.timer = null;
  }

  connect() {
    if (this.closed || !credentials) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/`);
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.onState({ connected: false, connecting: true });
    socket.onopen = () => {
      socket.send(
        JSON.stringify({
          type: "auth",
          username: credentials.username,
          password: credentials.password,
        }),
      );
      this.attempt = 0;
      this.onState({ connected: true, connecting: false });
    };
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (event && typeof event.type === "string") this.onEvent(event);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === CLOSE_POLICY_VIOLATION) {
        // The server rejected the credentials or throttled them. Retrying
        // would count as more failed logins, so stop and ask for a login.
        this.closed = true;
        this.onState({ connected: false, connecting: false, rejected: true });
        for (const listener of listeners) listener(new ApiError(401, { error: event.reason }));
        return;
      }
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.closed) return;
    // Exponential backoff from 1 s to 30 s, with jitter so that many tabs
    // do not reconnect in step after a server restart.
    const base = Math.min(30, 2 ** this.attempt);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    const retryAt = Date.now() + delay * 1000;
    this.onState({ connected: false, connecting: false, retryAt });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay * 1000);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
    }
  }
}
