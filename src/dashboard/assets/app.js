// hookroom dashboard. No framework: every element is built with
// document.createElement and every value from a webhook is set as text
// (textContent), never parsed as HTML.
'use strict';

const API = document.querySelector('meta[name="hookroom-api"]').content;
const TOKEN_KEY = 'hookroom.token';
const PAYLOAD_SHOWN = 64 * 1024; // characters of a payload shown at most
const TASKS_PAGE = 50;

// What each role may do in the page; the APIs decide in the end.
const ROLES = {
  admin: { answer: true, replay: true, deliveries: true, routes: true, routes_edit: true, alerts: true },
  operator: { answer: true, replay: true, deliveries: true, routes: true, alerts: true },
  viewer: {},
  reporter: {},
  agent: {},
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  who: null,
  can: {},
  tasks: new Map(), // id -> row element, in the listed page
  cursor: null,
  lastEventId: null,
  stream: null,
  taskShown: null, // id of the task in the detail view
};

const $ = (id) => document.getElementById(id);

// el('td', {class: 'x'}, 'text', child): text children become text nodes.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Only http(s) links from a webhook or an artifact become links.
function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(API + path, {
    method: options.method || 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: 'no-store',
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(response.status, error.code, error.message);
  }
  return body;
}

// ---- time ----

// "3 min ago", or "in 3 min" for a time to come (a lease's end).
function ago(iso) {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return String(iso);
  const size = Math.abs(seconds);
  if (size < 5) return 'just now';
  let span;
  if (size < 60) span = `${size} s`;
  else if (size < 3600) span = `${Math.round(size / 60)} min`;
  else if (size < 86400) span = `${Math.round(size / 3600)} h`;
  else span = `${Math.round(size / 86400)} d`;
  return seconds > 0 ? `${span} ago` : `in ${span}`;
}

function when(iso) {
  if (!iso) return '—';
  return el('time', { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso));
}

function refreshTimes() {
  for (const node of document.querySelectorAll('time[datetime]')) {
    node.textContent = ago(node.getAttribute('datetime'));
  }
}

function toast(text) {
  $('toast').textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { $('toast').textContent = ''; }, 4000);
}

function statusBadge(status) {
  return el('span', { class: `status s-${status}`, 'data-status': status }, status);
}

// ---- sign-in ----

// Who the token is: /api/whoami, or from what it may read where the
// server has no whoami (an admin token reads the routes, an agent token
// is shown as a viewer).
async function whoAmI() {
  try {
    return await api('/api/whoami');
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  await api('/api/rooms'); // refuses a token that is no token at all
  try {
    await api('/api/routes');
    return { name: 'admin token', role: 'admin', rooms: '*', payloads: true };
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      return { name: 'agent token', role: 'viewer', rooms: '*', payloads: true };
    }
    throw error;
  }
}

async function signIn(token) {
  state.token = token;
  try {
    state.who = await whoAmI();
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('signin-error').textContent = error.status === 401
      ? 'This token is not accepted.' : `Cannot sign in: ${error.message}`;
    show('signin');
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.can = ROLES[state.who.role] || {};
  $('role').textContent = `${state.who.role}`;
  $('role').title = state.who.name || '';
  $('who').hidden = false;
  $('nav').hidden = false;
  for (const node of document.querySelectorAll('[data-needs]')) {
    node.hidden = !state.can[node.dataset.needs];
  }
  document.body.dataset.role = state.who.role;
  if (state.can.alerts) {
    loadAlerts();
    setInterval(loadAlerts, 30000);
  }
  follow();
  route();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.stream) state.stream.abort();
  location.hash = '';
  location.reload();
}

// ---- views ----

const VIEWS = ['signin', 'view-rooms', 'view-tasks', 'view-task', 'view-deliveries', 'view-routes'];

function show(id) {
  for (const view of VIEWS) $(view).hidden = view !== id;
  for (const link of document.querySelectorAll('nav a')) {
    const current = `view-${link.getAttribute('href').slice(1)}` === id;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function route() {
  if (!state.who) return show('signin');
  const [view, arg] = location.hash.slice(1).split('/');
  state.taskShown = null;
  switch (view) {
    case 'tasks': show('view-tasks'); return loadTasks(true);
    case 'task': show('view-task'); return loadTask(decodeURIComponent(arg || ''));
    case 'deliveries': show('view-deliveries'); return loadDeliveries();
    case 'routes': show('view-routes'); return loadRoutes();
    default: show('view-rooms'); return loadRooms();
  }
}

function failed(where, error) {
  toast(`${where}: ${error.message}`);
}

// ---- rooms ----

async function loadRooms() {
  let rooms;
  try {
    rooms = (await api('/api/rooms')).rooms;
  } catch (error) {
    return failed('Rooms', error);
  }
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  let recent = [];
  try {
    recent = (await api(`/api/tasks?limit=500`)).tasks.filter((t) => t.updated_at >= since);
  } catch { /* the charts stay empty */ }
  fillRoomFilter(rooms.map((r) => r.room));
  $('rooms-empty').hidden = rooms.length > 0;
  $('rooms').replaceChildren(...rooms.map((room) => roomCard(room, recent.filter((t) => t.room === room.room))));
}

function roomCard(room, recent) {
  const c = room.counts;
  const count = (n, label) => el('div', {}, el('b', {}, n), el('span', {}, label));
  const finished = recent.filter((t) => t.status === 'DONE' || t.status === 'FAILED');
  const failures = finished.filter((t) => t.status === 'FAILED').length;
  return el('article', { class: 'card', 'data-room': room.room },
    el('h2', {}, el('a', { href: '#tasks', onclick: () => { $('f-room').value = room.room; } }, room.room)),
    el('div', { class: 'counts' },
      count(c.pending, 'pending'), count(c.running, 'running'), count(c.needs_input, 'input'),
      count(c.done, 'done'), count(c.failed, 'failed')),
    el('p', { class: 'muted' }, room.oldest_pending_age_seconds == null
      ? 'Nothing waiting.' : `Oldest pending: ${Math.round(room.oldest_pending_age_seconds / 60)} min`),
    chart(finished),
    el('p', { class: 'hint' }, `Last hour: ${finished.length} finished, ${failures} failed` +
      (finished.length ? ` (${Math.round((100 * failures) / finished.length)} %)` : '')),
    el('p', { class: 'hint' }, room.agents.length ? 'Agents: ' : 'No agent joined.',
      ...room.agents.map((a, i) => [i ? ', ' : '', a.agent_id, ' (', when(a.last_seen), ')'])));
}

// Finished tasks per 5 minutes over the last hour; failed ones in red.
function chart(finished) {
  const buckets = Array.from({ length: 12 }, () => ({ done: 0, failed: 0 }));
  for (const task of finished) {
    const age = (Date.now() - Date.parse(task.updated_at)) / 300000;
    const bucket = buckets[11 - Math.min(11, Math.floor(age))];
    if (task.status === 'FAILED') bucket.failed++; else bucket.done++;
  }
  const most = Math.max(1, ...buckets.map((b) => b.done + b.failed));
  const bars = buckets.map((b) => {
    const bar = el('i', { class: b.failed ? 'failed' : '' });
    bar.style.height = `${(100 * (b.done + b.failed)) / most}%`;
    return bar;
  });
  return el('div', { class: 'chart', role: 'img', 'aria-label': 'Tasks finished per 5 minutes, last hour' }, bars);
}

function fillRoomFilter(rooms) {
  const select = $('f-room');
  const chosen = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  for (const room of rooms) if (!known.has(room)) select.append(el('option', { value: room }, room));
  select.value = chosen;
}

// ---- tasks ----

function taskQuery(cursor) {
  const params = new URLSearchParams({ limit: TASKS_PAGE });
  const status = $('f-status').value;
  const source = $('f-source').value.trim();
  if (status) params.set('status', status);
  if (source) params.set('source', source);
  if (cursor) params.set('cursor', cursor);
  const room = $('f-room').value;
  return room ? `/api/rooms/${encodeURIComponent(room)}/tasks?${params}` : `/api/tasks?${params}`;
}

async function loadTasks(fresh) {
  let page;
  try {
    page = await api(taskQuery(fresh ? null : state.cursor));
  } catch (error) {
    return failed('Tasks', error);
  }
  if (fresh) {
    state.tasks.clear();
    $('tasks').tBodies[0].replaceChildren();
  }
  for (const task of page.tasks) addTaskRow(task, false);
  state.cursor = page.next_cursor;
  $('more').hidden = !page.next_cursor;
}

function matchesFilter(task) {
  const room = $('f-room').value;
  const status = $('f-status').value;
  const source = $('f-source').value.trim();
  return (!room || task.room === room) && (!status || task.status === status) && (!source || task.source === source);
}

function taskRow(task) {
  return el('tr', { 'data-task': task.id, 'data-room': task.room },
    el('td', {}, el('a', { href: `#task/${encodeURIComponent(task.id)}` }, task.title || task.id)),
    el('td', {}, task.room),
    el('td', { class: 'status-cell' }, statusBadge(task.status)),
    el('td', {}, task.source),
    el('td', {}, when(task.created_at)));
}

function addTaskRow(task, onTop) {
  const row = taskRow(task);
  const old = state.tasks.get(task.id);
  state.tasks.set(task.id, row);
  const body = $('tasks').tBodies[0];
  if (old) old.replaceWith(row);
  else if (onTop) { row.classList.add('fresh'); body.prepend(row); }
  else body.append(row);
}

// ---- one task and its job ----

async function loadTask(id) {
  state.taskShown = id;
  let task;
  let job = null;
  try {
    task = (await api(`/api/tasks/${encodeURIComponent(id)}`)).task;
  } catch (error) {
    $('task-title').textContent = 'Task not found';
    $('task').replaceChildren(el('p', { class: 'error' }, error.message));
    return;
  }
  try {
    job = (await api(`/api/jobs/${encodeURIComponent(id)}?include_history=true`));
  } catch { /* a task without a job (no status sink) */ }
  if (state.taskShown !== id) return;
  renderTask(task, job);
}

function renderTask(task, view) {
  $('task-title').textContent = task.title || task.id;
  const source = task.source_url && safeUrl(task.source_url);
  const parts = [
    el('dl', { class: 'facts' },
      el('dt', {}, 'Id'), el('dd', {}, el('code', { id: 'task-id' }, task.id), ' ',
        el('button', { type: 'button', class: 'secondary', onclick: () => copy(task.id) }, 'Copy id')),
      el('dt', {}, 'Status'), el('dd', { id: 'task-status' }, statusBadge(task.status)),
      el('dt', {}, 'Room'), el('dd', {}, task.room),
      el('dt', {}, 'Source'), el('dd', {}, `${task.source} · ${task.source_event} `,
        source ? el('a', { href: source, rel: 'noopener noreferrer', target: '_blank' }, 'open') : null),
      el('dt', {}, 'Created'), el('dd', {}, when(task.created_at)),
      el('dt', {}, 'Attempts'), el('dd', {}, task.attempts),
      el('dt', {}, 'Held by'), el('dd', {}, task.claimed_by || '—',
        task.lease_expires_at ? [', lease ends ', when(task.lease_expires_at)] : null),
      task.failure ? [el('dt', {}, 'Failure'), el('dd', { class: 'error' }, task.failure)] : null),
  ];
  if (task.status === 'NEEDS_INPUT') parts.push(inputForm(task));
  if (view) parts.push(jobPanel(view));
  parts.push(el('details', { class: 'card' },
    el('summary', {}, 'Payload'),
    el('pre', { class: 'payload', id: 'payload', tabindex: 0 }, payloadText(task.payload))));
  if (task.result !== null && task.result !== undefined) {
    parts.push(el('h2', {}, 'Result'), el('pre', { class: 'payload', tabindex: 0 }, JSON.stringify(task.result, null, 2)));
  }
  $('task').replaceChildren(...parts);
}

function payloadText(payload) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2);
  if (text.length <= PAYLOAD_SHOWN) return text;
  return `${text.slice(0, PAYLOAD_SHOWN)}\n… (${text.length - PAYLOAD_SHOWN} more characters not shown)`;
}

function jobPanel(view) {
  const job = view.job;
  const progress = job.progress || {};
  const steps = progress.total_steps ? `${progress.completed_steps || 0}/${progress.total_steps} steps` : '';
  const bar = el('progress', { id: 'job-progress', max: 100, 'aria-label': 'Job progress' });
  bar.value = progress.percentage ?? (job.status === 'DONE' ? 100 : 0);
  return el('section', { class: 'card', 'aria-labelledby': 'job-title' },
    el('h2', { id: 'job-title' }, 'Job ', statusBadge(job.status)),
    bar,
    el('p', { id: 'job-step' }, [progress.current_step, steps,
      progress.percentage != null ? `${progress.percentage} %` : null,
      progress.estimated_remaining ? `about ${progress.estimated_remaining} left` : null]
      .filter(Boolean).join(' · ') || 'No progress reported.'),
    job.artifacts.length ? el('h2', {}, 'Artifacts') : null,
    el('ul', { class: 'list', id: 'artifacts' }, job.artifacts.map(artifactItem)),
    view.history ? el('h2', {}, 'History') : null,
    view.history ? el('ol', { class: 'timeline', id: 'history' }, view.history.map((h) =>
      el('li', {}, when(h.timestamp), ' ', statusBadge(h.status), ' ', h.step ? `[${h.step}] ` : '', h.message || ''))) : null);
}

function artifactItem(artifact) {
  const url = artifact.download_url && safeUrl(artifact.download_url);
  const size = artifact.size != null ? ` · ${artifact.size} bytes` : '';
  const label = `${artifact.name} (${artifact.type || 'file'}${size})`;
  return el('li', {}, url ? el('a', { href: url, rel: 'noopener noreferrer' }, label) : label);
}

function inputForm(task) {
  const prompt = el('p', { id: 'input-prompt' }, task.input_request || '');
  if (!state.can.answer) {
    return el('section', { class: 'card' }, el('h2', {}, 'Waiting for input'), prompt);
  }
  const field = el('textarea', { id: 'input-answer', rows: 3, required: true });
  const form = el('form', { class: 'card', id: 'input-form' },
    el('h2', {}, 'Waiting for input'), prompt,
    el('label', { for: 'input-answer' }, 'Answer (JSON, or plain text)'), field,
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Send answer')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let input;
    try { input = JSON.parse(field.value); } catch { input = field.value; }
    if (!confirm('Send this answer to the agent?')) return;
    try {
      await api(`/api/tasks/${encodeURIComponent(task.id)}/input`, { method: 'POST', body: { input } });
      toast('Answer sent.');
      loadTask(task.id);
    } catch (error) {
      failed('Answer', error);
    }
  });
  return form;
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied.');
  } catch {
    toast('Copy is not allowed here; select the id instead.');
  }
}

// ---- deliveries ----

async function loadDeliveries() {
  let page;
  try {
    page = await api('/api/deliveries?limit=100');
  } catch (error) {
    return failed('Deliveries', error);
  }
  $('deliveries').tBodies[0].replaceChildren(...page.deliveries.map((d) => el('tr', {},
    el('td', {}, when(d.created_at)), el('td', {}, d.source), el('td', {}, d.event),
    el('td', {}, d.room), el('td', {}, el('a', { href: `#task/${encodeURIComponent(d.task_id)}` }, statusBadge(d.status))),
    el('td', {}, state.can.replay
      ? el('button', { type: 'button', class: 'secondary', onclick: () => replay(d) }, 'Replay') : null))));
}

async function replay(delivery) {
  if (!confirm(`Route delivery ${delivery.delivery_id} again as a new task?`)) return;
  try {
    const answer = await api(`/api/deliveries/${encodeURIComponent(delivery.task_id)}/replay`, { method: 'POST', body: {} });
    toast(answer.status === 'accepted' ? `Replayed into ${answer.room}.` : `Not replayed: ${answer.reason}`);
    loadDeliveries();
  } catch (error) {
    failed('Replay', error);
  }
}

// ---- routes ----

async function loadRoutes() {
  let answer;
  try {
    answer = await api('/api/routes');
  } catch (error) {
    return failed('Routes', error);
  }
  const items = answer.routes.map((r) => el('li', {},
    el('code', {}, `${r.source} ${r.event}`), ' → ', el('strong', {}, r.target_room),
    r.filter ? el('span', { class: 'muted' }, ` if ${JSON.stringify(r.filter)}`) : null, ' ',
    state.can.routes_edit
      ? el('button', { type: 'button', class: 'secondary', onclick: () => removeRoute(r) }, 'Remove') : null));
  if (answer.default_room) items.push(el('li', { class: 'muted' }, `Anything else → ${answer.default_room}`));
  $('routes').replaceChildren(...items);
}

async function removeRoute(route) {
  if (!confirm(`Remove the route ${route.source} ${route.event} → ${route.target_room}?`)) return;
  try {
    await api(`/api/routes/${encodeURIComponent(route.id)}`, { method: 'DELETE' });
    toast('Route removed.');
    loadRoutes();
  } catch (error) {
    failed('Remove', error);
  }
}

async function addRoute(event) {
  event.preventDefault();
  let route;
  try { route = JSON.parse($('route-json').value); } catch (error) { return failed('Route', error); }
  try {
    await api('/api/routes', { method: 'POST', body: route });
    toast('Route added.');
    loadRoutes();
  } catch (error) {
    failed('Add', error);
  }
}

async function explain(event) {
  event.preventDefault();
  let payload;
  try { payload = JSON.parse($('x-payload').value || 'null'); } catch (error) { return failed('Payload', error); }
  const out = $('explained');
  try {
    const answer = await api('/api/routes/explain', {
      method: 'POST', body: { source: $('x-source').value, event: $('x-event').value, payload },
    });
    out.replaceChildren(el('p', { id: 'decision' }, decisionText(answer.decision)),
      el('ol', { class: 'list' }, answer.routes.map((check) => el('li', { 'data-result': check.result },
        el('code', {}, `${check.source} ${check.event}`), ` → ${check.target_room}: `, verdictText(check)))));
  } catch (error) {
    out.replaceChildren(el('p', { class: 'error' }, error.message));
  }
  out.hidden = false;
}

function decisionText(decision) {
  switch (decision.outcome) {
    case 'route': return `Goes to ${decision.room} (priority ${decision.priority}).`;
    case 'default_room': return `No route matches; goes to the default room ${decision.room}.`;
    default: return `Ignored: ${decision.reason}`;
  }
}

function verdictText(check) {
  if (check.result === 'selected') return 'matches, chosen';
  if (check.result === 'outranked') return `matches, outranked by route ${check.by}`;
  const failed = check.failed || {};
  const { condition, ...details } = failed;
  return `no match: ${condition} (${JSON.stringify(details)})`;
}

// ---- alerts: the firing alerts from /health, for those who may read it ----

async function loadAlerts() {
  let report;
  try {
    report = await api('/health');
  } catch {
    return; // not allowed, or no gateway health here
  }
  const alerts = (report && report.alerts) || [];
  $('alerts').hidden = alerts.length === 0;
  $('alerts').replaceChildren(...alerts.map((a) => el('p', {}, `${a.kind}: ${a.summary}`)));
}

// ---- live events: GET /api/events read with fetch, so the token goes in
// a header and never in a URL ----

async function follow() {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  let delay = 1000;
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
      if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
      const response = await fetch(`${API}/api/events`, { headers, signal: controller.signal, cache: 'no-store' });
      if (!response.ok) throw new ApiError(response.status);
      setLive(true);
      delay = 1000;
      await readEvents(response.body);
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

function setLive(on) {
  $('live').textContent = on ? 'live' : 'reconnecting…';
  $('live').classList.toggle('on', on);
}

async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { event: 'message', data: '' };
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon === 0) continue; // a comment (keep-alive)
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') state.lastEventId = text;
        else if (field === 'event') message.event = text;
        else if (field === 'data') message.data += (message.data ? '\n' : '') + text;
      }
      if (message.data) onEvent(message.event, message.data);
    }
  }
}

let roomsTimer = null;

function onEvent(kind, data) {
  let event;
  try { event = JSON.parse(data); } catch { return; }
  if (kind === 'resync') {
    route();
    return;
  }
  if (kind === 'job.updated') {
    if (state.taskShown === event.id) loadTask(event.id);
    return;
  }
  // task.*: the listed row, the open task, the room counts.
  const row = state.tasks.get(event.id);
  if (row) {
    row.querySelector('.status-cell').replaceChildren(statusBadge(event.status));
  } else if (!$('view-tasks').hidden && (!$('f-room').value || $('f-room').value === event.room)) {
    api(`/api/tasks/${encodeURIComponent(event.id)}`)
      .then((answer) => { if (matchesFilter(answer.task)) addTaskRow(answer.task, true); })
      .catch(() => {});
  }
  if (state.taskShown === event.id) loadTask(event.id);
  if (!$('view-rooms').hidden) {
    clearTimeout(roomsTimer);
    roomsTimer = setTimeout(loadRooms, 300);
  }
}

// ---- start ----

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('signin-error').textContent = '';
  const field = $('token');
  const token = field.value.trim();
  field.value = '';
  signIn(token);
});
$('signout').addEventListener('click', signOut);
$('task-filter').addEventListener('submit', (event) => { event.preventDefault(); loadTasks(true); });
$('more').addEventListener('click', () => loadTasks(false));
$('explain').addEventListener('submit', explain);
$('route-add').addEventListener('submit', addRoute);
window.addEventListener('hashchange', route);
setInterval(refreshTimes, 30000);

if (state.token) signIn(state.token);
else show('signin');
