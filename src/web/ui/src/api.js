// The daemon's JSON API (proto/web/API.md): one fetch wrapper that adds the CSRF header to
// every state-changing request and turns a non-2xx answer into an ApiError.

let csrf = null;
let onLoggedOut = null;

export function setCsrf(token) {
  csrf = token;
}
export function whenLoggedOut(fn) {
  onLoggedOut = fn;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || 'HTTP ' + status);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? 'offline' : null);
    this.field = (body && body.field) || null;
    this.body = body || {};
  }
}

export async function api(method, path, body) {
  const headers = {};
  // a file (an upload: POST /api/attachments) goes as its bytes, anything else as JSON
  const raw = typeof Blob !== 'undefined' && body instanceof Blob;
  if (body !== undefined) headers['Content-Type'] = raw ? 'application/octet-stream' : 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let r;
  try {
    r = await fetch('/api' + path, {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, null);
  }
  const type = r.headers.get('content-type') || '';
  let data = {};
  if (type.includes('json')) {
    try {
      data = await r.json();
    } catch (e) {
      data = {};
    }
  }
  if (!r.ok) {
    const err = new ApiError(r.status, data);
    if (r.status === 401 && path !== '/login' && onLoggedOut) onLoggedOut(err);
    throw err;
  }
  return data;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

// A query string from an object, leaving out empty values.
export function qs(o) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}
