// api.js - the console's only way to the server: the REST API under /api/v1 with the session
// cookie. State-changing requests carry the session's CSRF token (the server refuses them
// without it); a 401 anywhere means the session ended, and the app returns to the login page.
// Errors come back in the API's one shape {code, message, details} and are thrown as ApiError
// so that pages can show the server's own message.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.details = body && body.details;
    this.body = body; // answers that are not the error shape (a failed response run) keep theirs
  }
}

let csrf = null;
let onUnauthorized = () => {};

export function setCsrf(token) { csrf = token; }
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export async function call(method, path, { body, headers = {}, raw = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) h['X-CSRF-Token'] = csrf;
  const resp = await fetch('/api/v1' + path, {
    method, headers: h, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (raw) return resp;
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: text }; }
  }
  if (resp.status === 401 && !path.startsWith('/session')) onUnauthorized();
  if (!resp.ok) throw new ApiError(resp.status, data);
  return { data, headers: resp.headers, status: resp.status };
}

export const get = (path, opts) => call('GET', path, opts).then((r) => r.data);
export const post = (path, body, opts = {}) => call('POST', path, { ...opts, body }).then((r) => r.data);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

// Lists come either as a bare array or wrapped ({"offenses": [...]}); pages want the array.
export function list(data, key) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}
