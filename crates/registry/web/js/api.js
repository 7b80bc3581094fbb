// The registry's API as the pages use it: same origin, the session cookie sent by the browser (scripts
// never see it), the session's CSRF token (kept in this module's memory only) on every change, problems
// turned into errors that say what went wrong.

let session = null;
const listeners = new Set();

/** The signed-in session ({role, permissions, csrf_token, ...}) or null. */
export function current() {
  return session;
}

export function can(permission) {
  return !!session && session.permissions.includes(permission);
}

/** Calls `fn` whenever the session changes (sign-in, sign-out, expiry). */
export function onSession(fn) {
  listeners.add(fn);
}

/** `why`: signed-in, resumed, signed-out or expired. */
function setSession(s, why) {
  session = s;
  for (const fn of listeners) fn(session, why);
}

/** An API answer that is not a success: `status`, the problem's `code`, `detail` and `body`. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.code = String(this.problem.type || '').split(':').pop();
  }
}

/** Sends a request; JSON in and out. `ifMatch` is the version the change is based on. Answers
 *  `{status, body, etag}`; throws ApiError for 4xx and 5xx. */
export async function request(method, path, { body, ifMatch, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (ifMatch !== undefined) init.headers['If-Match'] = `"${ifMatch}"`;
  if (method !== 'GET' && method !== 'HEAD' && session?.csrf_token) init.headers['X-CSRF-Token'] = session.csrf_token;
  // The API lives at the server's root, wherever the app is served (web.path).
  const res = await fetch(path, init);
  const type = res.headers.get('Content-Type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (res.status === 401 && session) setSession(null, 'expired');
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : { detail: String(data || '') });
  const etag = res.headers.get('ETag');
  return { status: res.status, body: data, etag: etag ? etag.replaceAll('"', '').replace(/^W\//, '') : null };
}

export const get = (path) => request('GET', path).then((r) => r.body);

/** Finds out who is signed in (after a reload the cookie may still hold a session). */
export async function resume() {
  try {
    const r = await request('GET', '/api/v1/sessions/current');
    setSession(r.body.via === 'session' ? r.body : null, 'resumed');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    setSession(null, 'resumed');
  }
  return session;
}

/** Signs in with an API token; the token is sent once and then forgotten. */
export async function signIn(token) {
  const r = await request('POST', '/api/v1/sessions', { body: { token } });
  setSession(r.body, 'signed-in');
  return session;
}

export async function signOut() {
  try {
    await request('DELETE', '/api/v1/sessions/current');
  } finally {
    setSession(null, 'signed-out');
  }
}

/** Uploads `file` with `metadata` as multipart, reporting progress (0..1) to `progress`. fetch() cannot
 *  report upload progress, so this one request uses XMLHttpRequest. */
export function upload(metadata, file, progress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('metadata', new Blob([JSON.stringify(metadata)], { type: 'application/json' }), 'metadata.json');
    form.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/uploads');
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    if (session?.csrf_token) xhr.setRequestHeader('X-CSRF-Token', session.csrf_token);
    xhr.upload.addEventListener('progress', (e) => e.lengthComputable && progress(e.loaded / e.total));
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { detail: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body: data });
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, { detail: 'the connection to the registry was lost' })));
    xhr.addEventListener('abort', () => reject(new ApiError(0, { detail: 'the upload was cancelled' })));
    xhr.send(form);
  });
}

