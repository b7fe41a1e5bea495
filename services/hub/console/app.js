// The hub's web console (index.html): signs in with a bearer token or API key,
// keeps one client session per tab, connects servers and calls their tools,
// prompts and resources through the client-session API (/api/...). Served by
// the hub under a strict CSP: no inline code or styles, no eval, no framework;
// the DOM is built with createElement and text nodes only (never innerHTML).
//
// Test hooks (stable; * = used by tests/browser/console.mjs):
//   sign in    #sign-in-form, #scheme-bearer, #scheme-apikey, #token*, #sign-in*, #sign-out
//   messages   #status (role=status), #error (role=alert)
//   page       <body data-ready="true">* once the first sign-in/restore has settled
//   session    #session-id*, #session-expires, #refresh-session, #delete-session,
//              #connections > [data-testid=connection-<server>]*, [data-testid=disconnect-<server>]
//   servers    #servers > [data-testid=server-<name>], [data-testid=connect-<name>]*,
//              #connect-url-form: #url-server, #url, #url-transport, #url-header-name,
//              #url-header-value, #connect-url
//   tools      #tools > [data-testid=tool-<server>-<name>]* (buttons), #tool-detail, #tool-form*,
//              #arg-<property>*, #call-tool*, #tool-result* (data-state = pending | done | error;
//              class is-error when the result has isError), [data-testid=tool-result-text]
//              (each text content item), [data-testid=tool-result-structured] (<pre>)
//   prompts    #prompts > [data-testid=prompt-<server>-<name>], #prompt-form, #prompt-arg-<name>,
//              #get-prompt, #prompt-result (data-state as above)
//   resources  #resources > [data-testid=resource-<server>-<name>], #resource-result (data-state)

const KEY_CREDENTIAL = 'mcpHubConsole.credential';
const KEY_SESSION = 'mcpHubConsole.clientSession';

const $ = (selector) => document.querySelector(selector);

const state = {
  credential: null, // {scheme: 'Bearer' | 'ApiKey', secret}
  servers: [],
  session: null,
  tools: [],
  prompts: [],
  resources: [],
  selected: { tools: null, prompts: null, resources: null }, // "server\n name" keys
};

// ---- DOM helpers -------------------------------------------------------------

/** Creates an element: props are attributes, except class, testid, on<event>
 * and boolean DOM properties (hidden, required, checked, disabled, ...). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (typeof value === 'boolean' && key in el) el[key] = value;
    else el.setAttribute(key, String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const idPart = (text) => String(text).replace(/\s+/g, '_');
const keyOf = (item, field = 'name') => `${item.server}\n${item[field]}`;

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, String(iso ?? ''));
  return h('time', { datetime: iso }, date.toLocaleString());
}

/** Decoded size in bytes of a base64 string. */
function base64Size(data = '') {
  const clean = data.replace(/\s+/g, '');
  const padding = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

function setStatus(text) {
  $('#status').textContent = text;
}

function showError(text) {
  $('#error').textContent = text ?? '';
}

// ---- API -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, description) {
    super(description);
    this.status = status;
    this.code = code;
  }
}

/** Calls the hub's API; resolves to the JSON body (null for 204), rejects with
 * an ApiError carrying the body's error and error_description. */
async function api(method, path, body) {
  const headers = {
    Accept: 'application/json',
    Authorization: `${state.credential.scheme} ${state.credential.secret}`,
  };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network_error', `The hub could not be reached (${err.message}).`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): described by the status below.
  }
  if (!response.ok) {
    const code = data?.error ?? `http_${response.status}`;
    const description = data?.error_description ?? data?.error ?? `HTTP ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, code, description);
  }
  return data;
}

function sessionPath(suffix = '') {
  if (!state.session) throw new ApiError(0, 'no_client_session', 'There is no client session: start a new one.');
  return `/api/client-sessions/${encodeURIComponent(state.session.id)}${suffix}`;
}

/** Shows an error of a user action; a 401 means the credential no longer
 * works, so the user is signed out. Bugs (not ApiErrors) also go to the
 * console, where the browser test sees them. */
function handleError(err, context) {
  setStatus('');
  if (err instanceof ApiError && err.status === 401) {
    signOut({ quiet: true });
    showError(`Sign-in failed: ${err.message}`);
    return;
  }
  if (!(err instanceof ApiError)) console.error(err);
  showError(context ? `${context}: ${err.message}` : err.message);
}

/** Runs a user action with a status line and error handling. */
async function run(doing, action) {
  showError('');
  setStatus(`${doing}…`);
  try {
    await action();
  } catch (err) {
    handleError(err, `${doing} failed`);
  }
}

// ---- Sign in and out -------------------------------------------------------

function readStoredCredential() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY_CREDENTIAL) ?? 'null');
    if (saved && ['Bearer', 'ApiKey'].includes(saved.scheme) && typeof saved.secret === 'string') return saved;
  } catch {
    // A damaged entry: sign in again.
  }
  sessionStorage.removeItem(KEY_CREDENTIAL);
  return null;
}

function showSignedIn(signedIn) {
  $('#sign-in-section').hidden = signedIn;
  $('#app').hidden = !signedIn;
  $('#sign-out').hidden = !signedIn;
}

async function signIn(credential) {
  state.credential = credential;
  showSignedIn(true);
  try {
    const { servers } = await api('GET', '/api/servers');
    state.servers = servers ?? [];
  } catch (err) {
    state.credential = null;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) sessionStorage.removeItem(KEY_CREDENTIAL);
    showSignedIn(false);
    setStatus('');
    showError(`Sign-in failed: ${err.message}`);
    if (!(err instanceof ApiError)) console.error(err);
    $('#token').focus();
    return;
  }
  sessionStorage.setItem(KEY_CREDENTIAL, JSON.stringify(credential));
  renderServers();
  await ensureSession();
  await refreshCapabilities();
  setStatus('Signed in.');
}

function signOut({ quiet = false } = {}) {
  sessionStorage.removeItem(KEY_CREDENTIAL);
  sessionStorage.removeItem(KEY_SESSION);
  Object.assign(state, { credential: null, servers: [], session: null, tools: [], prompts: [], resources: [] });
  state.selected = { tools: null, prompts: null, resources: null };
  for (const list of ['#servers', '#connections', '#tools', '#prompts', '#resources']) $(list).replaceChildren();
  for (const detail of ['#tool-detail', '#prompt-detail', '#resource-detail']) $(detail).hidden = true;
  $('#token').value = '';
  showSignedIn(false);
  if (!quiet) {
    showError('');
    setStatus('Signed out.');
  }
  $('#token').focus();
}

// ---- Client session ----------------------------------------------------------

/** Reuses the tab's client session if the hub still has it, else starts one. */
async function ensureSession() {
  const id = sessionStorage.getItem(KEY_SESSION);
  if (id) {
    try {
      state.session = await api('GET', `/api/client-sessions/${encodeURIComponent(id)}`);
      renderSession();
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }
  state.session = await api('POST', '/api/client-sessions', {});
  sessionStorage.setItem(KEY_SESSION, state.session.id);
  renderSession();
}

async function reloadSession() {
  if (!state.session) return ensureSession();
  state.session = await api('GET', sessionPath());
  renderSession();
}

async function newSession() {
  if (state.session) {
    try {
      await api('DELETE', sessionPath());
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }
  sessionStorage.removeItem(KEY_SESSION);
  state.session = null;
  await ensureSession();
  await refreshCapabilities();
  setStatus(`Started client session ${state.session.id}.`);
}

const connections = () => state.session?.connections ?? [];
const isConnected = (server) => connections().some((c) => c.server === server);

function renderSession() {
  const session = state.session;
  $('#session-id').textContent = session?.id ?? '';
  $('#session-expires').replaceChildren(session ? formatTime(session.expiresAt) : '');
  $('#connections').replaceChildren(
    ...connections().map((c) =>
      h('li', { testid: `connection-${c.server}` },
        h('div', { class: 'item-head' },
          h('strong', {}, c.server),
          h('span', { class: 'badge' }, c.kind === 'url' ? 'URL' : 'configured'),
          h('button', {
            type: 'button', testid: `disconnect-${c.server}`, 'aria-label': `Disconnect ${c.server}`,
            onclick: () => disconnect(c.server),
          }, 'Disconnect')),
        c.url ? h('p', { class: 'hint' }, h('code', {}, c.url)) : null,
        h('p', { class: 'hint' }, 'Connected ', formatTime(c.connectedAt),
          c.credentialHeaders?.length ? `; credential headers: ${c.credentialHeaders.join(', ')}` : ''))),
  );
  $('#no-connections').hidden = connections().length > 0;
  renderServers();
}

// ---- Servers -------------------------------------------------------------------

function renderServers() {
  $('#servers').replaceChildren(
    ...state.servers.map((s) => {
      const connected = isConnected(s.name);
      return h('li', { testid: `server-${s.name}` },
        h('div', { class: 'item-head' },
          h('strong', {}, s.name),
          h('span', { class: 'badge' }, s.transport ?? ''),
          h('button', {
            type: 'button', testid: `connect-${s.name}`, disabled: connected,
            'aria-label': connected ? `${s.name} is connected` : `Connect ${s.name}`,
            onclick: () => connect({ server: s.name }),
          }, connected ? 'Connected' : 'Connect')),
        s.description ? h('p', { class: 'hint' }, s.description) : null);
    }),
  );
  if (state.servers.length === 0) $('#servers').append(h('li', { class: 'hint' }, 'No configured servers.'));
}

async function connect(body) {
  await run(`Connecting ${body.server}`, async () => {
    await api('POST', sessionPath('/connect'), body);
    await reloadSession();
    await refreshCapabilities();
    setStatus(`Connected ${body.server}.`);
  });
}

async function disconnect(server) {
  await run(`Disconnecting ${server}`, async () => {
    await api('POST', sessionPath('/disconnect'), { server });
    await reloadSession();
    await refreshCapabilities();
    setStatus(`Disconnected ${server}.`);
  });
}

async function connectUrl(event) {
  event.preventDefault();
  const name = $('#url-header-name').value.trim();
  const value = $('#url-header-value').value;
  if (!name && value) {
    $('#url-header-name').setCustomValidity('Name the header the value is for.');
    $('#url-header-name').reportValidity();
    return;
  }
  const body = {
    server: $('#url-server').value.trim(),
    url: $('#url').value.trim(),
    transport: $('#url-transport').value,
  };
  if (name) body.headers = { [name.toLowerCase()]: value };
  await connect(body);
  if (isConnected(body.server)) event.target.reset();
}

// ---- Tools, prompts, resources: lists ----------------------------------------

const KINDS = {
  tools: { label: 'tool', field: 'name', detail: '#tool-detail', select: selectTool },
  prompts: { label: 'prompt', field: 'name', detail: '#prompt-detail', select: selectPrompt },
  resources: { label: 'resource', field: 'uri', detail: '#resource-detail', select: selectResource },
};

/** Lists the tools, prompts and resources of the connected servers. */
async function refreshCapabilities() {
  const connected = connections().length > 0;
  await Promise.all(Object.keys(KINDS).map(async (kind) => {
    let note = connected ? '' : 'Connect a server to list its ' + kind + '.';
    state[kind] = [];
    if (connected) {
      try {
        state[kind] = (await api('GET', sessionPath(`/${kind}`)))?.[kind] ?? [];
        if (state[kind].length === 0) note = `The connected servers offer no ${kind}.`;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) throw err;
        if (!(err instanceof ApiError)) console.error(err);
        note = `Listing ${kind} failed: ${err.message}`;
      }
    }
    if (!state.credential) return; // signed out meanwhile
    $(`#${kind}-note`).textContent = note;
    renderList(kind);
  }));
}

function renderList(kind) {
  const { label, field, detail, select } = KINDS[kind];
  const items = [...state[kind]].sort((a, b) =>
    a.server.localeCompare(b.server) || String(a[field]).localeCompare(String(b[field])));
  $(`#${kind}`).replaceChildren(
    ...items.map((item) => {
      const selected = state.selected[kind] === keyOf(item, field);
      return h('li', { class: selected ? 'selected' : null },
        h('button', {
          type: 'button', class: 'link', testid: `${label}-${item.server}-${item.name ?? item.uri}`,
          'aria-current': selected ? 'true' : null, onclick: () => select(item),
        }, item.name ?? item.uri),
        h('span', { class: 'badge' }, item.server),
        item.uri && item.name ? h('code', { class: 'uri' }, item.uri) : null,
        item.mimeType ? h('span', { class: 'hint' }, ` ${item.mimeType}`) : null,
        item.description ? h('p', { class: 'hint' }, item.description) : null);
    }),
  );
  // A selection whose server went away closes its detail.
  if (state.selected[kind] && !items.some((item) => keyOf(item, field) === state.selected[kind])) {
    state.selected[kind] = null;
    $(detail).hidden = true;
  }
}

function openDetail(kind, item, prefix) {
  state.selected[kind] = keyOf(item, KINDS[kind].field);
  renderList(kind);
  $(`#${prefix}-title`).textContent = `${item.name ?? item.uri} (${item.server})`;
  const description = $(`#${prefix}-description`);
  if (description) description.textContent = item.description ?? '';
  const result = $(`#${prefix}-result`);
  result.replaceChildren();
  result.className = 'result';
  delete result.dataset.state;
  $(KINDS[kind].detail).hidden = false;
  $(`#${prefix}-title`).focus();
}

// ---- Forms generated from schemas ----------------------------------------------

/** The JSON type a form field is made for: the first non-null type. */
function schemaType(schema) {
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? type[0];
  if (!type && Array.isArray(schema.enum) && schema.enum.every((v) => typeof v === 'string')) type = 'string';
  return type;
}

/** One labelled field: number/integer → number input, string → text (enum →
 * select), boolean → checkbox, anything else → a textarea for JSON. */
function argField(prefix, name, schema, required) {
  const id = `${prefix}-${idPart(name)}`;
  const type = schemaType(schema);
  const hintId = schema.description ? `${id}-hint` : null;
  const base = { id, name, 'aria-describedby': hintId };
  const fallback = schema.default;
  let input;
  let kind;
  if (type === 'number' || type === 'integer') {
    kind = 'number';
    input = h('input', {
      ...base, type: 'number', required, step: type === 'integer' ? '1' : 'any',
      inputmode: type === 'integer' ? 'numeric' : 'decimal',
      min: schema.minimum, max: schema.maximum, value: typeof fallback === 'number' ? fallback : null,
    });
  } else if (type === 'string' && Array.isArray(schema.enum)) {
    kind = 'string';
    input = h('select', { ...base, required },
      h('option', { value: '' }, required ? 'Choose…' : '(none)'),
      schema.enum.map((v) => h('option', { value: v, selected: v === fallback }, String(v))));
  } else if (type === 'string') {
    kind = 'string';
    input = h('input', {
      ...base, type: 'text', required, autocomplete: 'off',
      minlength: schema.minLength, maxlength: schema.maxLength,
      value: typeof fallback === 'string' ? fallback : null,
    });
  } else if (type === 'boolean') {
    kind = 'boolean';
    input = h('input', { ...base, type: 'checkbox', checked: fallback === true });
  } else {
    kind = 'json';
    input = h('textarea', {
      ...base, required, rows: 3, spellcheck: 'false',
      placeholder: type === 'array' ? 'JSON array, e.g. [1, 2]' : 'JSON, e.g. {"key": "value"}',
      oninput: (e) => e.target.setCustomValidity(''),
    }, fallback === undefined ? '' : JSON.stringify(fallback));
  }
  input.dataset.kind = kind;
  const mark = required && kind !== 'boolean' ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null;
  const typeNote = kind === 'json' ? h('span', { class: 'hint' }, ` (${type ?? 'any'}, as JSON)`) : null;
  const hint = hintId ? h('p', { id: hintId, class: 'hint' }, schema.description) : null;
  if (kind === 'boolean') {
    return h('div', { class: 'field check' }, input, h('label', { for: id }, name), hint);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, name, mark, typeNote), input, hint);
}

/** The arguments a generated form holds, or null (and the field is flagged)
 * when a JSON field does not parse. Empty optional fields are left out. */
function collectArgs(form) {
  const args = {};
  for (const el of form.querySelectorAll('[data-kind]')) {
    const { kind } = el.dataset;
    if (kind === 'boolean') {
      args[el.name] = el.checked;
    } else if (el.value === '') {
      continue;
    } else if (kind === 'number') {
      args[el.name] = el.valueAsNumber;
    } else if (kind === 'json') {
      try {
        args[el.name] = JSON.parse(el.value);
      } catch {
        el.setCustomValidity('Enter valid JSON.');
        el.reportValidity();
        return null;
      }
    } else {
      args[el.name] = el.value;
    }
  }
  return args;
}

/** Fills a generated form and wires its submit: `call(args)` resolves to what
 * `render(result)` turns into the result region's children. */
function buildForm(form, { fields, submitId, submitLabel, resultId, call, render }) {
  const button = h('button', { type: 'submit', id: submitId }, submitLabel);
  const note = fields.some((f) => f.querySelector('.required'))
    ? h('p', { class: 'hint' }, 'Fields marked * are required.') : null;
  form.replaceChildren(...[note, ...fields, button].filter(Boolean));
  form.onsubmit = async (event) => {
    event.preventDefault();
    const args = collectArgs(form);
    if (!args) return;
    const out = $(resultId);
    out.className = 'result';
    out.dataset.state = 'pending';
    out.replaceChildren(h('p', { class: 'hint' }, 'Working…'));
    out.setAttribute('aria-busy', 'true');
    button.disabled = true;
    showError('');
    try {
      const result = await call(args);
      out.replaceChildren(...render(result, out).filter(Boolean));
      out.dataset.state = 'done';
    } catch (err) {
      out.dataset.state = 'error';
      out.replaceChildren();
      if (err instanceof ApiError && err.status === 401) {
        handleError(err);
        return;
      }
      if (!(err instanceof ApiError)) console.error(err);
      out.classList.add('is-error');
      out.append(h('p', { class: 'error', role: 'alert' }, err.message));
      if (err.code) out.append(h('p', { class: 'hint' }, 'Error code: ', h('code', {}, err.code)));
    } finally {
      out.removeAttribute('aria-busy');
      button.disabled = false;
    }
  };
}

// ---- Rendering MCP content -------------------------------------------------------

/** Embedded resource contents: text in a <pre>, a blob by its size and type. */
function renderResourceContents(contents, testid) {
  return h('div', { class: 'content' },
    h('p', { class: 'hint' }, h('code', {}, contents.uri ?? ''), contents.mimeType ? ` (${contents.mimeType})` : ''),
    typeof contents.text === 'string'
      ? h('pre', { testid }, contents.text)
      : h('p', {}, `Binary content: ${base64Size(contents.blob)} bytes${contents.mimeType ? ` of ${contents.mimeType}` : ''}.`));
}

/** One MCP content item (text, image, audio, resource link, embedded resource). */
function renderContent(item, testid) {
  switch (item?.type) {
    case 'text':
      return h('pre', { testid }, item.text ?? '');
    case 'image':
      return /^image\/[\w.+-]+$/.test(item.mimeType ?? '')
        ? h('img', { src: `data:${item.mimeType};base64,${item.data}`, alt: `Image (${item.mimeType}) returned by the server` })
        : h('p', {}, `Image: ${base64Size(item.data)} bytes.`);
    case 'audio':
      return h('p', {}, `Audio: ${base64Size(item.data)} bytes of ${item.mimeType ?? 'unknown type'}.`);
    case 'resource_link':
      return h('p', {}, 'Resource link: ', h('code', {}, item.uri ?? ''), item.name ? ` (${item.name})` : '');
    case 'resource':
      return renderResourceContents(item.resource ?? {}, testid);
    default:
      return h('pre', {}, JSON.stringify(item, null, 2));
  }
}

function renderToolResult(result, out) {
  const parts = [];
  if (result?.isError === true) {
    out.classList.add('is-error');
    parts.push(h('p', { class: 'error' }, 'The tool reported an error:'));
  }
  for (const item of result?.content ?? []) parts.push(renderContent(item, 'tool-result-text'));
  if (result?.structuredContent !== undefined) {
    parts.push(h('p', { class: 'hint' }, 'Structured content:'),
      h('pre', { testid: 'tool-result-structured' }, JSON.stringify(result.structuredContent, null, 2)));
  }
  if (parts.length === 0) parts.push(h('p', { class: 'hint' }, 'The tool returned no content.'));
  return parts;
}

function renderPromptResult(result) {
  const messages = result?.messages ?? [];
  return [
    result?.description ? h('p', { class: 'hint' }, result.description) : null,
    h('ol', { class: 'messages' },
      messages.map((m) => h('li', {},
        h('strong', {}, m.role ?? 'message'),
        (Array.isArray(m.content) ? m.content : [m.content]).map((c) => renderContent(c, 'prompt-result-text'))))),
    messages.length === 0 ? h('p', { class: 'hint' }, 'The prompt has no messages.') : null,
  ];
}

function renderResourceResult(result) {
  const contents = result?.contents ?? [];
  if (contents.length === 0) return [h('p', { class: 'hint' }, 'The resource is empty.')];
  return contents.map((c) => renderResourceContents(c, 'resource-result-text'));
}

// ---- Selecting one tool, prompt or resource --------------------------------------

function selectTool(tool) {
  const schema = tool.inputSchema ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {})
    .map(([name, s]) => argField('arg', name, s ?? {}, required.has(name)));
  buildForm($('#tool-form'), {
    fields, submitId: 'call-tool', submitLabel: 'Call tool', resultId: '#tool-result',
    call: (args) => api('POST', sessionPath('/tools'), { server: tool.server, name: tool.name, arguments: args }),
    render: renderToolResult,
  });
  openDetail('tools', tool, 'tool');
}

function selectPrompt(prompt) {
  const fields = (prompt.arguments ?? []).map((a) =>
    argField('prompt-arg', a.name, { type: 'string', description: a.description }, a.required === true));
  buildForm($('#prompt-form'), {
    fields, submitId: 'get-prompt', submitLabel: 'Get prompt', resultId: '#prompt-result',
    call: (args) => api('POST', sessionPath('/prompts'), { server: prompt.server, name: prompt.name, arguments: args }),
    render: renderPromptResult,
  });
  openDetail('prompts', prompt, 'prompt');
}

async function selectResource(resource) {
  openDetail('resources', resource, 'resource');
  const out = $('#resource-result');
  out.dataset.state = 'pending';
  out.replaceChildren(h('p', { class: 'hint' }, 'Reading…'));
  try {
    const result = await api('POST', sessionPath('/resources'), { server: resource.server, uri: resource.uri });
    out.replaceChildren(...renderResourceResult(result));
    out.dataset.state = 'done';
  } catch (err) {
    out.dataset.state = 'error';
    out.replaceChildren();
    if (err instanceof ApiError && err.status === 401) {
      handleError(err);
      return;
    }
    if (!(err instanceof ApiError)) console.error(err);
    out.classList.add('is-error');
    out.append(h('p', { class: 'error', role: 'alert' }, err.message));
  }
}

// ---- Start -------------------------------------------------------------------------

function init() {
  $('#sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const secret = $('#token').value.trim().replace(/^(Bearer|ApiKey)\s+/i, '');
    if (!/^[\x21-\x7e]+$/.test(secret)) {
      showError('The token or key may contain only visible ASCII characters, without spaces.');
      return;
    }
    const scheme = $('#scheme-apikey').checked ? 'ApiKey' : 'Bearer';
    showError('');
    setStatus('Signing in…');
    try {
      await signIn({ scheme, secret });
    } catch (err) {
      handleError(err, 'Sign-in failed');
    }
  });
  $('#sign-out').addEventListener('click', () => signOut());
  $('#refresh-session').addEventListener('click', () => run('Refreshing', async () => {
    await reloadSession();
    await refreshCapabilities();
    setStatus('Refreshed.');
  }));
  $('#delete-session').addEventListener('click', () => run('Starting a new client session', newSession));
  $('#connect-url-form').addEventListener('submit', connectUrl);
  $('#url-header-name').addEventListener('input', (e) => e.target.setCustomValidity(''));
}

async function start() {
  init();
  const saved = readStoredCredential();
  if (saved) {
    setStatus('Restoring your session…');
    try {
      await signIn(saved);
    } catch (err) {
      handleError(err, 'Restoring the session failed');
    }
  }
  document.body.dataset.ready = 'true';
}

start();
