// The only network code: the Stats API and, for admins, the key and link endpoints of the
// collector that served the page. Every request carries the config's headers (CSRF token, or
// the share token and its grant) and goes to the page's own origin.

/** The message of a failed response: the API's one-line `{"error"}`, else the status. */
export async function errorMessage(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: fall through to the status line
  }
  return `HTTP ${response.status}${response.statusText ? ' ' + response.statusText : ''}`;
}

/** POSTs a Stats API query; the parsed JSON, or a Blob of CSV with `csv`. Throws Error(message). */
export async function query(config, body, { signal, csv = false } = {}) {
  const response = await fetch(config.api + (csv ? '?format=csv' : ''), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: csv ? 'text/csv' : 'application/json', ...config.headers },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw new Error(await errorMessage(response));
  return csv ? response.blob() : response.json();
}

/** A JSON request to an admin endpoint (`GET` without a body, `POST` with one). */
export async function admin(config, url, body) {
  const response = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...config.headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}
