// tradeguard dashboard: one ES module, no dependencies, no build step, no request to any other origin.
//
// Data flow: REST reads (/api/v1/...) paint every view; the live stream (/api/v1/stream, Server-Sent
// Events read through fetch so the bearer token can travel in a header) says when something changed.
// A `sync` or `log` event refreshes that account's views (debounced); `log` and `alert` items are
// appended directly. Without the stream (404, or while it reconnects) the page polls every 5 s.
// The chart reads the window it shows (a range, or a zoom), which the server cuts into buckets.

const API = '/api/v1';
const TOKEN_KEY = 'tradeguard.token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const POLL_MS = 5000;
const DEBOUNCE_MS = 250;
const STREAM_PROBE_MS = 60000; // while polling, look for the stream again this often
const STREAM_STALL_MS = 45000; // keepalives come every ~15 s; silence this long means a dead connection
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;
const ACCOUNTS_PAGE = 500;
const ACCOUNTS_MAX = 5000; // the accounts the page lists at most
const FEED_LIMIT = 100;
const ALERT_LIMIT = 50;
const SEVERITY = { normal: 0, warning: 1, critical: 2 };
const GUARD_EVENTS = new Set(['guard_level', 'halted', 'rearmed', 'feed_stale', 'feed_resumed']);
const COMMAND_EVENTS = new Set(['close_command', 'position_closed']);

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  generation: 0, // bumped on sign-in and sign-out: answers for an older session are dropped
  me: null,
  accounts: new Map(), // id -> {account, summary, unseenAlerts}
  order: [],
  selected: null,
  detail: null,
  lastEventId: null,
};

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') element.textContent = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// Only when it changed: screen readers re-announce live regions on every write.
function setText(id, text, title) {
  const element = $(id);
  if (element.textContent !== String(text)) element.textContent = text;
  if (title !== undefined && element.title !== (title || '')) element.title = title || '';
}

// ---------------------------------------------------------------- formatting

const numberFormats = new Map();

function formatNumber(value, min, max) {
  const key = `${min}:${max}`;
  if (!numberFormats.has(key)) {
    numberFormats.set(key, new Intl.NumberFormat(undefined, { minimumFractionDigits: min, maximumFractionDigits: max }));
  }
  return numberFormats.get(key).format(value);
}

function num(value) {
  return value === null || value === undefined || value === '' ? null : Number(value);
}

function money(value, currency = 'USD') {
  const amount = num(value);
  if (amount === null || Number.isNaN(amount)) return '–';
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(amount);
  } catch {
    return `${formatNumber(amount, 2, 2)} ${currency}`; // not an ISO currency (USDT and the like)
  }
}

function signedMoney(value, currency) {
  const amount = num(value);
  if (amount === null) return '–';
  return (amount > 0 ? '+' : '') + money(amount, currency);
}

function pct(value, digits = 2) {
  const amount = num(value);
  return amount === null ? '–' : `${formatNumber(amount, digits, digits)} %`;
}

function price(value, digits) {
  const amount = num(value);
  return amount === null ? '–' : formatNumber(amount, digits ?? 2, digits ?? 5);
}

function decimals(value) {
  const text = String(value ?? '');
  return text.includes('.') && !/e/i.test(text) ? text.length - text.indexOf('.') - 1 : 0;
}

// JSON numbers drop trailing zeros (1.085 for 1.08500): show a symbol's prices with one number of digits.
function priceDigits(positions) {
  const digits = new Map();
  for (const p of positions) {
    const most = Math.max(2, decimals(p.entry_price), decimals(p.current_price), digits.get(p.symbol) || 0);
    digits.set(p.symbol, Math.min(most, 6));
  }
  return digits;
}

function volume(value) {
  const amount = num(value);
  return amount === null ? '–' : formatNumber(amount, 2, 2);
}

function clock(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return sameDay ? time : `${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`;
}

function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return clock(iso);
}

function relativeTime(iso, prefix = '') {
  return h('time', { datetime: iso || '', title: iso ? new Date(iso).toLocaleString() : '', dataset: { since: iso || '', prefix } }, prefix + ago(iso));
}

function tickRelativeTimes() {
  for (const element of document.querySelectorAll('time[data-since]')) {
    if (element.dataset.since) element.textContent = (element.dataset.prefix || '') + ago(element.dataset.since);
  }
}

function label(text) {
  return String(text || '').replaceAll('_', ' ');
}

// ---------------------------------------------------------------- HTTP

class HttpError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, { method, json, form, anonymous = false } = {}) {
  const generation = state.generation;
  const headers = { Accept: 'application/json' };
  if (state.token && !anonymous) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (form) body = new URLSearchParams(form);
  else if (json !== undefined) {
    body = JSON.stringify(json);
    headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(API + path, { method: method || (body ? 'POST' : 'GET'), headers, body, cache: 'no-store' });
  if (generation !== state.generation) throw new HttpError(0, 'signed out');
  noteServerClock(response);
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail || detail;
    } catch {
      /* not JSON */
    }
    if (response.status === 401 && !anonymous) signOut('Your session has ended. Please sign in again.');
    throw new HttpError(response.status, detail);
  }
  return response.status === 204 ? null : response.json();
}

async function inBatches(items, size, work) {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map(work));
  }
}

function quietly(promise) {
  return promise.catch((error) => {
    if (error.status !== 0 && error.status !== 401) console.warn('tradeguard:', error.message);
  });
}

// ---------------------------------------------------------------- status

function worst(...levels) {
  return levels.reduce((a, b) => ((SEVERITY[b] ?? 0) > (SEVERITY[a] ?? 0) ? b : a), 'normal');
}

// One word for an account at a glance: critical > stale > warning > healthy > idle.
function overall(summary) {
  if (!summary) return 'unknown';
  if (summary.trading_allowed === false || summary.system_status === 'critical') return 'critical';
  if (summary.status === 'error') return 'stale';
  if (summary.status === 'warning' || summary.system_status === 'warning') return 'warning';
  if (summary.status === 'idle') return 'idle';
  return 'healthy';
}

function badge(text, kind, extra = {}) {
  return h('span', { class: `badge ${kind}`, ...extra }, label(text));
}

const EVENT_TONE = {
  matched: 'ok',
  resolved: 'ok',
  rearmed: 'ok',
  feed_resumed: 'ok',
  position_closed: 'ok',
  divergence: 'warning',
  guard_level: 'warning',
  feed_stale: 'stale',
  closed_on_broker: 'info',
  partial_close: 'info',
  close_realized: 'info',
  unmatched_deal: 'warning',
  close_command: 'info',
  halted: 'critical',
  shadow_decision: 'shadow',
  guard_rules_changed: 'info',
};

const LEVEL_TONE = { normal: 'ok', info: 'info', warning: 'warning', critical: 'critical' };

// Guard transitions and alerts say their level in the details: a return to normal is good news.
function eventTone(event) {
  const level = event.details?.level;
  if ((event.event_type === 'guard_level' || event.event_type === 'alert') && LEVEL_TONE[level]) return LEVEL_TONE[level];
  return EVENT_TONE[event.event_type] || 'muted';
}

const COMMAND_TONE = { pending: 'info', sent: 'info', executed: 'ok', closed: 'ok', failed: 'critical', expired: 'warning', cancelled: 'muted' };

// ---------------------------------------------------------------- sign-in and session

function showSignIn(message) {
  $('dashboard').hidden = true;
  $('session').hidden = true;
  $('signin').hidden = false;
  const error = $('signin-error');
  error.hidden = !message;
  error.textContent = message || '';
  $('signin-email').focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const email = $('signin-email').value.trim();
  const password = $('signin-password').value;
  const error = $('signin-error');
  if (!email || !password) {
    error.textContent = 'Enter your email and password.';
    error.hidden = false;
    return;
  }
  const button = $('signin-submit');
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const token = await api('/auth/token', { form: { username: email, password }, anonymous: true });
    state.token = token.access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('signin-password').value = '';
    error.hidden = true;
    await start();
  } catch (failure) {
    error.textContent = failure.status === 401 ? 'Wrong email or password.' : `Could not sign in: ${failure.message}`;
    error.hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

function signOut(message) {
  state.generation += 1;
  state.token = null;
  state.me = null;
  state.accounts.clear();
  state.order = [];
  state.selected = null;
  state.detail = null;
  state.lastEventId = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stream.stop();
  platformStream.stop();
  debounced.clear();
  platform.answer = null;
  platform.exposure = null;
  platform.drawdowns = new Map();
  platform.drawdownsUntil = 0;
  clearTimeout(platform.drawdownsTimer);
  renderPlatform();
  $('platform').hidden = true;
  $('platform-link').hidden = true;
  $('accounts').replaceChildren();
  $('account').hidden = true;
  showSignIn(message);
}

async function start() {
  state.generation += 1;
  $('signin').hidden = true;
  $('dashboard').hidden = false;
  $('session').hidden = false;
  try {
    state.me = await api('/me');
  } catch (error) {
    if (error.status !== 401 && error.status !== 0) showSignIn(`Could not load your profile: ${error.message}`);
    return;
  }
  setText('user-email', state.me.email, `${state.me.email} (${state.me.role})`);
  showView();
  await quietly(loadAccounts());
  stream.start();
}

// ---------------------------------------------------------------- accounts

async function loadAccounts() {
  const accounts = [];
  let cursor = null;
  do {
    const page = await api(`/accounts?limit=${ACCOUNTS_PAGE}${cursor !== null ? `&cursor=${cursor}` : ''}`);
    accounts.push(...page.accounts);
    cursor = page.next_cursor;
  } while (cursor !== null && accounts.length < ACCOUNTS_MAX);

  const seen = new Set();
  for (const account of accounts) {
    seen.add(account.id);
    const entry = state.accounts.get(account.id);
    if (entry) entry.account = account;
    else state.accounts.set(account.id, { account, summary: null, unseenAlerts: 0 });
  }
  for (const id of [...state.accounts.keys()]) if (!seen.has(id)) state.accounts.delete(id);
  state.order = accounts.map((account) => account.id);
  renderAccounts();

  const wanted = accountFromHash();
  const selected = [wanted, state.selected, state.order[0]].find((id) => id && state.accounts.has(id));
  if (selected && selected !== state.selected) selectAccount(selected);
  if (!selected) {
    state.selected = null;
    $('account').hidden = true;
  }
  await refreshSummaries();
}

// Every card's summary. A follower's accounts are read two requests each; an operator, who may see
// thousands, reads them from the platform's pages instead, and the selected account's own summary
// comes with its detail.
async function refreshSummaries(skipped = null) {
  if (!isOperator()) {
    await inBatches(state.order.filter((id) => id !== skipped), 6, (id) => quietly(refreshSummary(id)));
    return;
  }
  const missed = new Set(state.accounts.keys());
  let cursor = null;
  let pages = 0;
  do {
    const page = await api(`/platform/accounts${query({ limit: ACCOUNTS_PAGE, cursor })}`);
    for (const row of page.accounts) {
      missed.delete(row.account_id);
      applyPlatformRow(row);
    }
    cursor = page.next_cursor;
    pages += 1;
  } while (cursor !== null && pages * ACCOUNTS_PAGE < ACCOUNTS_MAX);
  // The ranking moves with the writes between two pages: an account it moved past is read on its own
  // (past the pages read, beyond ACCOUNTS_MAX, the stream's syncs fill the cards).
  if (cursor === null) await inBatches([...missed].filter((id) => id !== skipped), 6, (id) => quietly(refreshSummary(id)));
}

// An account's row of the platform view into its card's summary, unless the summary is newer; the
// fields only the full summary has (peak, matched positions, error) are kept.
function applyPlatformRow(row) {
  const entry = state.accounts.get(row.account_id);
  if (!entry || (entry.summary && entry.summary.total_syncs > row.total_syncs)) return;
  entry.marketLevel = row.market_level;
  entry.summary = Object.assign(entry.summary || {}, {
    status: row.sync_status,
    total_syncs: row.total_syncs,
    last_sync_at: row.last_sync_at,
    open_positions_count: row.open_positions,
    divergences_detected: row.open_divergences,
    equity: row.equity,
    balance: row.balance,
    drawdown_pct: row.drawdown_pct,
    drawdown_level: row.drawdown_level,
    trading_allowed: row.trading_allowed,
    system_status: worst(row.drawdown_level, row.market_level),
    halt_reason: row.halt_reason,
    halted_at: row.halted_at,
  });
  renderAccountCard(row.account_id);
  if (row.account_id === state.selected) renderHeadline();
}

let requestCounter = 0;

async function refreshSummary(id) {
  const ticket = ++requestCounter;
  const [status, guards] = await Promise.all([
    api(`/reconciliation/status?account_id=${id}`),
    api(`/guards/status?account_id=${id}`),
  ]);
  const entry = state.accounts.get(id);
  // An answer overtaken by a newer one, or by a newer sync from the stream, is dropped.
  if (!entry || ticket < (entry.summaryTicket || 0)) return;
  if (entry.summary && entry.summary.total_syncs > status.total_syncs) return;
  entry.summaryTicket = ticket;
  const drawdown = guards.drawdown_guard;
  const marketLevel = worst(...guards.market_guard_alerts.map((alert) => alert.alert_type));
  entry.marketLevel = marketLevel;
  entry.summary = {
    status: status.status,
    total_syncs: status.total_syncs,
    last_sync_at: status.last_sync_at,
    open_positions_count: status.open_positions_count,
    matched_positions: status.matched_positions,
    divergences_detected: status.divergences_detected,
    error_message: status.error_message,
    equity: drawdown.current_equity,
    balance: drawdown.current_balance,
    peak_equity: drawdown.peak_equity,
    drawdown_pct: drawdown.current_drawdown_pct,
    drawdown_level: drawdown.alert_type,
    trading_allowed: guards.trading_allowed,
    system_status: worst(drawdown.alert_type, marketLevel),
    halt_reason: drawdown.halt_reason,
    halted_at: drawdown.halted_at,
  };
  renderAccountCard(id);
  if (id === state.selected) renderHeadline();
}

function applySync(sync) {
  const entry = state.accounts.get(sync.account_id);
  if (!entry) return false;
  const summary = entry.summary || {};
  for (const field of [
    'status', 'total_syncs', 'open_positions_count', 'matched_positions', 'divergences_detected',
    'equity', 'balance', 'peak_equity', 'drawdown_pct', 'drawdown_level', 'trading_allowed', 'last_sync_at',
  ]) {
    if (field in sync) summary[field] = sync[field];
  }
  if ('error_message' in sync) summary.error_message = sync.error_message;
  else if (sync.status !== 'error') summary.error_message = null;
  summary.system_status = worst(summary.drawdown_level || 'normal', entry.marketLevel || 'normal');
  entry.summary = summary;
  renderAccountCard(sync.account_id);
  if (sync.account_id === state.selected) renderHeadline();
  return true;
}

function accountFromHash() {
  const match = /^#account-(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function selectAccount(id) {
  if (!state.accounts.has(id)) return;
  const changed = state.selected !== id;
  state.selected = id;
  state.accounts.get(id).unseenAlerts = 0;
  if (!onPlatformView() && location.hash !== `#account-${id}`) history.replaceState(null, '', `#account-${id}`);
  for (const card of $('accounts').children) {
    card.setAttribute('aria-current', card.dataset.accountId === String(id) ? 'true' : 'false');
  }
  renderAccountCard(id);
  // On a phone the cards are a sideways strip: bring the chosen one into it.
  $('accounts').querySelector(`[data-account-id="${id}"]`)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  if (changed) {
    chart.hover = null;
    chart.zoom = null;
    renderChartControls();
    state.detail = { accountId: id, positions: null, guards: null, rules: null, equity: null, config: null, events: [], alerts: [], commands: new Map() };
    $('account').hidden = false;
    renderHeadline();
    renderDetail();
    quietly(refreshDetail(id, { feeds: true, config: true }));
  }
}

// ---------------------------------------------------------------- account detail

async function refreshDetail(id, { feeds = false, config = false } = {}) {
  const ticket = ++requestCounter;
  quietly(refreshChart(id, { now: feeds }));
  const requests = [
    api(`/positions/open?account_id=${id}`),
    api(`/guards/status?account_id=${id}`),
    api(`/accounts/${id}/guard-rules`),
    config ? api(`/accounts/${id}/guard-config`) : null,
    feeds ? api(`/reconciliation/logs?account_id=${id}&limit=${FEED_LIMIT}`) : null,
    feeds ? api(`/alerts?account_id=${id}&limit=${ALERT_LIMIT}`) : null,
    feeds ? api(`/reconciliation/logs?account_id=${id}&event_type=close_command&limit=200`) : null,
    feeds ? api(`/reconciliation/logs?account_id=${id}&event_type=position_closed&limit=100`) : null,
    refreshSummary(id),
  ];
  const [positions, guards, rules, guardConfig, logs, alerts, commandLogs, closedLogs] = await Promise.all(requests);
  const detail = state.detail;
  if (!detail || detail.accountId !== id || state.selected !== id) return;
  if (feeds) {
    // Audit entries and alerts never change, so an answer only adds to the feeds: one that left the
    // server before an entry came on the stream must not take that entry away again.
    detail.events = addToFeed(EVENT_FEED, detail.events, logs.events);
    detail.alerts = addToFeed(ALERT_FEED, detail.alerts, alerts.alerts);
    const commandEvents = [...commandLogs.events, ...closedLogs.events].sort((a, b) => a.id - b.id);
    for (const event of commandEvents) foldCommand(detail.commands, event);
  }
  if (ticket > (detail.ticket || 0)) { // the views are replaced, but never by a slower, older answer
    detail.ticket = ticket;
    detail.positions = positions;
    detail.guards = guards;
    detail.rules = rules;
    if (guardConfig) detail.config = guardConfig;
  }
  renderDetail();
}

function renderDetail() {
  renderHeadline();
  renderChart();
  renderGuards();
  renderRules();
  renderPositions();
  renderEvents();
  renderAlerts();
  renderCommands();
}

function renderHeadline() {
  const entry = state.accounts.get(state.selected);
  if (!entry) return;
  const { account } = entry;
  const summary = entry.summary || {};
  const currency = account.currency;
  setText('account-name', account.name);
  setText('account-meta', [account.broker, account.login && `login ${account.login}`, currency, `#${account.id}`].filter(Boolean).join(' · '));
  const word = overall(entry.summary);
  const status = $('account-status');
  status.className = `badge big ${word}`;
  status.textContent = word;
  status.title = summary.error_message || '';

  const halted = summary.trading_allowed === false;
  $('halted').hidden = !halted;
  if (halted) {
    setText('halted-title', `Trading halted${summary.halted_at ? ` since ${clock(summary.halted_at)}` : ''}.`);
    setText('halted-reason', summary.halt_reason || 'A guard reached its critical level. The platform sends this account no new trades until it is re-armed.');
    $('rearm-controls').hidden = !mayRearm(account);
  }

  setText('stat-equity', money(summary.equity, currency));
  setText('stat-balance', money(summary.balance, currency));
  setText('stat-peak', money(summary.peak_equity, currency));
  const drawdown = $('stat-drawdown');
  drawdown.textContent = pct(summary.drawdown_pct);
  drawdown.className = `level-${summary.drawdown_level || 'normal'}`;
  setText('stat-positions', summary.open_positions_count === undefined ? '–' : `${summary.open_positions_count} / ${summary.matched_positions}`);
  const divergences = $('stat-divergences');
  divergences.textContent = summary.divergences_detected ?? '–';
  divergences.className = summary.divergences_detected ? 'level-warning' : '';
  setText('stat-syncs', summary.total_syncs ?? '–');
  $('stat-last-sync').replaceChildren(summary.last_sync_at ? relativeTime(summary.last_sync_at) : 'never');
}

function mayRearm(account) {
  return Boolean(state.me) && (account.owner_id === state.me.id || state.me.role === 'owner' || state.me.role === 'admin');
}

async function onRearm() {
  const id = state.selected;
  const entry = state.accounts.get(id);
  if (!entry) return;
  const resetPeak = $('rearm-reset-peak').checked;
  const question = resetPeak
    ? `Re-arm trading for ${entry.account.name}, with a new peak at its current equity? The platform will send it trades again.`
    : `Re-arm trading for ${entry.account.name}? The platform will send it trades again; a snapshot still beyond the critical level halts it anew.`;
  if (!window.confirm(question)) return;
  const button = $('rearm');
  button.disabled = true;
  try {
    await api(`/accounts/${id}/guard/rearm`, { method: 'POST', json: { reset_peak: resetPeak } });
    $('rearm-reset-peak').checked = false;
    await refreshDetail(id, { feeds: true });
  } catch (error) {
    if (error.status !== 401 && error.status !== 0) window.alert(`Could not re-arm: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- account list

function renderAccounts() {
  const nav = $('accounts');
  nav.replaceChildren(...state.order.map((id) => accountCard(id)));
  $('no-accounts').hidden = state.order.length > 0;
}

function renderAccountCard(id) {
  const old = $('accounts').querySelector(`[data-account-id="${id}"]`);
  if (old) old.replaceWith(accountCard(id));
}

function accountCard(id) {
  const { account, summary, unseenAlerts } = state.accounts.get(id);
  const word = overall(summary);
  const known = Boolean(summary);
  const halted = known && summary.trading_allowed === false;
  return h(
    'button',
    {
      type: 'button',
      class: `account-card ${word}`,
      dataset: { accountId: id, status: word },
      'aria-current': id === state.selected ? 'true' : 'false',
      onclick: () => selectAccount(id),
    },
    h('span', { class: 'card-top' },
      h('span', { class: 'card-name' }, account.name),
      badge(word, word)),
    h('span', { class: 'card-equity' }, known ? money(summary.equity, account.currency) : '…'),
    h('span', { class: 'card-line' },
      h('span', { class: `level-${known ? summary.drawdown_level || 'normal' : 'normal'}` }, `DD ${known ? pct(summary.drawdown_pct, 1) : '–'}`),
      h('span', { class: halted ? 'chip halted-chip' : 'chip trading-chip' }, halted ? 'halted' : 'trading'),
      unseenAlerts ? h('span', { class: 'chip alert-chip', title: 'new alerts' }, `${unseenAlerts} new`) : null),
    h('span', { class: 'card-line muted' },
      known ? relativeTime(summary.last_sync_at, 'synced ') : 'loading…',
      known ? h('span', { class: 'card-syncs' }, `${summary.total_syncs} syncs`) : null),
  );
}

// ---------------------------------------------------------------- positions

function renderPositions() {
  const detail = state.detail;
  const table = $('positions');
  const body = table.tBodies[0];
  const foot = table.tFoot;
  const positions = detail?.positions?.positions || [];
  const currency = state.accounts.get(state.selected)?.account.currency;
  setText('positions-count', detail?.positions ? String(positions.length) : '');
  $('positions-empty').hidden = !detail?.positions || positions.length > 0;
  table.hidden = positions.length === 0;
  const digits = priceDigits(positions);
  body.replaceChildren(
    ...positions.map((position) => {
      const pnl = num(position.unrealized_pnl);
      const places = digits.get(position.symbol);
      return h('tr', { dataset: { ticket: position.ticket, positionId: position.position_id } },
        h('td', { class: 'c-symbol', 'data-label': 'Symbol' }, h('strong', {}, position.symbol), h('span', { class: 'ticket' }, `#${position.ticket}`)),
        h('td', { class: 'c-side', 'data-label': 'Side' }, h('span', { class: `side ${position.direction}` }, position.direction)),
        h('td', { class: 'num c-volume', 'data-label': 'Volume' }, volume(position.volume)),
        h('td', { class: 'num c-entry', 'data-label': 'Entry' }, price(position.entry_price, places)),
        h('td', { class: 'num c-current', 'data-label': 'Current' }, price(position.current_price, places)),
        h('td', { class: `num c-pnl pnl ${pnl > 0 ? 'up' : pnl < 0 ? 'down' : ''}`, 'data-label': 'P&L' },
          signedMoney(position.unrealized_pnl, currency),
          h('span', { class: 'pnl-pct' }, pct(position.unrealized_pnl_pct))),
        h('td', { class: 'c-rec', 'data-label': 'Reconciliation' }, reconciliationBadge(position)),
      );
    }),
  );
  if (positions.length) {
    const total = num(detail.positions.total_unrealized_pnl);
    foot.replaceChildren(h('tr', {},
      h('th', { scope: 'row', colspan: 5 }, 'Total'),
      h('td', { class: `num pnl ${total > 0 ? 'up' : total < 0 ? 'down' : ''}`, 'data-label': 'Total P&L' },
        signedMoney(total, currency), h('span', { class: 'pnl-pct' }, pct(detail.positions.total_unrealized_pnl_pct))),
      h('td', {})));
  } else {
    foot.replaceChildren();
  }
}

function reconciliationBadge(position) {
  if (position.divergence) {
    return h('span', { class: 'badges' }, ...position.divergence.split(/[,;]\s*/).map((reason) => badge(reason, 'warning')));
  }
  if (position.matched_with_bot) return badge('matched', 'ok');
  return badge('not matched', 'muted');
}

// ---------------------------------------------------------------- guards

function renderGuards() {
  const detail = state.detail;
  const guards = detail?.guards;
  const gauge = $('drawdown-gauge');
  const market = $('market-guards');
  if (!guards) {
    gauge.replaceChildren();
    market.replaceChildren();
    setText('guard-notes', '');
    return;
  }
  const drawdown = guards.drawdown_guard;
  const currency = state.accounts.get(state.selected)?.account.currency;
  gauge.replaceChildren(drawdownGauge(num(drawdown.current_drawdown_pct) || 0, num(drawdown.warning_threshold_pct), num(drawdown.critical_threshold_pct), drawdown.alert_type));
  const notes = [
    `Critical also below ${money(drawdown.min_equity, currency)} equity.`,
    drawdown.auto_close ? 'Auto-close on critical: on.' : 'Auto-close on critical: off.',
  ];
  if (detail.config?.daily_loss_limit_pct) notes.push(`Daily loss limit ${pct(detail.config.daily_loss_limit_pct, 1)}.`);
  setText('guard-notes', notes.join(' '));

  const alerts = guards.market_guard_alerts;
  if (!alerts.length) {
    market.replaceChildren(h('p', { class: 'muted small' }, 'Every symbol within its gap and spread limits.'));
    return;
  }
  const config = detail.config || { gap_warning_pct: 5, gap_critical_pct: 10, spread_warning_pct: 0.5, spread_critical_pct: 1 };
  market.replaceChildren(
    ...alerts.map((alert) => h('div', { class: 'market-row', dataset: { symbol: alert.symbol } },
      h('div', { class: 'market-head' }, h('strong', {}, alert.symbol), badge(alert.alert_type, alert.alert_type),
        alert.should_close_positions ? h('span', { class: 'muted small' }, 'closing positions') : null),
      meter('Gap', num(alert.gap_pct), num(config.gap_warning_pct), num(config.gap_critical_pct)),
      meter('Spread', num(alert.spread_pct), num(config.spread_warning_pct), num(config.spread_critical_pct)),
    )),
  );
}

function levelOf(value, warning, critical) {
  if (value >= critical) return 'critical';
  if (value >= warning) return 'warning';
  return 'normal';
}

// A half-circle gauge: green up to the warning threshold, amber up to critical, red beyond.
function drawdownGauge(value, warning, critical, level) {
  const max = Math.max(critical * 1.25, value * 1.05, 1);
  const cx = 110, cy = 104, r = 84, width = 14;
  const angle = (v) => Math.PI * (1 - Math.min(Math.max(v, 0), max) / max);
  const point = (v, radius = r) => [cx + radius * Math.cos(angle(v)), cy - radius * Math.sin(angle(v))];
  const arc = (from, to) => {
    const [x0, y0] = point(from);
    const [x1, y1] = point(to);
    return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 0 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
  };
  const tick = (v, text) => {
    const [x0, y0] = point(v, r - width / 2 - 3);
    const [x1, y1] = point(v, r + width / 2 + 3);
    const [tx, ty] = point(v, r + width / 2 + 14);
    return [
      s('line', { x1: x0, y1: y0, x2: x1, y2: y1, class: 'gauge-tick' }),
      s('text', { x: tx, y: ty, class: 'gauge-label', 'text-anchor': 'middle', 'dominant-baseline': 'middle' }, text),
    ];
  };
  const shown = levelOf(value, warning, critical);
  return s('svg', { viewBox: '0 -8 220 130', class: 'gauge-svg', role: 'img', 'aria-label': `Drawdown ${value.toFixed(2)} percent; warning at ${warning} percent, critical at ${critical} percent` },
    s('path', { d: arc(0, warning), class: 'band normal', 'stroke-width': width }),
    s('path', { d: arc(warning, critical), class: 'band warning', 'stroke-width': width }),
    s('path', { d: arc(critical, max), class: 'band critical', 'stroke-width': width }),
    value > 0 ? s('path', { d: arc(0, Math.max(value, max * 0.005)), class: `value ${shown}`, 'stroke-width': width - 6 }) : null,
    tick(warning, `${formatNumber(warning, 0, 1)}%`),
    tick(critical, `${formatNumber(critical, 0, 1)}%`),
    s('text', { x: cx, y: cy - 22, class: `gauge-value level-${level}`, 'text-anchor': 'middle' }, `${formatNumber(value, 2, 2)}%`),
    s('text', { x: cx, y: cy - 2, class: 'gauge-caption', 'text-anchor': 'middle' }, `drawdown · ${level}`),
  );
}

// A horizontal bar with marks at the warning and critical thresholds.
function meter(name, value, warning, critical) {
  const max = Math.max(critical * 1.5, value || 0);
  const position = (v) => `${Math.min(100, (v / max) * 100).toFixed(2)}%`;
  const fill = h('span', { class: `meter-fill ${value === null ? 'normal' : levelOf(value, warning, critical)}` });
  fill.style.width = value === null ? '0' : position(value);
  const warn = h('span', { class: 'meter-mark warning', title: `warning ${warning} %` });
  warn.style.left = position(warning);
  const crit = h('span', { class: 'meter-mark critical', title: `critical ${critical} %` });
  crit.style.left = position(critical);
  return h('div', { class: 'meter' },
    h('span', { class: 'meter-name' }, name),
    h('span', { class: 'meter-track', role: 'meter', 'aria-label': `${name} percent`, 'aria-valuemin': 0, 'aria-valuemax': max, 'aria-valuenow': value ?? 0 }, fill, warn, crit),
    h('span', { class: 'meter-value' }, value === null ? '–' : pct(value)));
}

// ---------------------------------------------------------------- risk rules

const REFERENCE_TEXT = {
  initial_balance: 'the initial balance',
  period_start_balance: "the balance at the period's start",
  period_start_equity: "the equity at the period's start",
  period_start_higher: "the higher of balance and equity at the period's start",
  high_water_mark: 'the highest equity',
  trailing_high_balance: 'the highest balance at an earlier period end',
};

const TIER_TONE = { alert: 'warning', halt: 'critical', close_all: 'critical', close_scope: 'critical' };

function renderRules() {
  const answer = state.detail?.rules;
  const box = $('rules');
  const source = $('rules-source');
  if (!answer) {
    box.replaceChildren();
    source.replaceChildren();
    $('rules-no-snapshot').hidden = true;
    return;
  }
  const currency = state.accounts.get(state.selected)?.account.currency;
  const standings = new Map(answer.standings.map((standing) => [standing.rule, standing]));
  source.dataset.source = answer.source;
  source.replaceChildren(...rulesSource(answer, currency));
  $('rules-no-snapshot').hidden = answer.standings.length > 0;
  box.replaceChildren(...answer.rules.map((rule) => ruleCard(rule, standings.get(rule.id), currency)));
}

function rulesSource({ source, rule_set: ruleSet }, currency) {
  if (source === 'settings') return ["Judged by the account's ", h('strong', {}, 'drawdown settings'), '.'];
  const own = ruleSet.rules.length;
  const what = ruleSet.preset
    ? [h('strong', {}, ruleSet.preset), own ? ` preset and ${own} rule${own > 1 ? 's' : ''} of its own` : ' preset']
    : [h('strong', {}, 'rules'), ' set for it'];
  const balance = ruleSet.initial_balance ? ` · initial balance ${money(ruleSet.initial_balance, currency)}` : '';
  return ['Judged by ', ...what, balance, '.'];
}

// What a rule measures, in words: its metric against its reference, and the period it resets with.
function ruleMeasure(rule) {
  const measured = rule.metric === 'floating'
    ? 'floating loss (balance minus equity)'
    : `${rule.metric} against ${REFERENCE_TEXT[rule.reference] || label(rule.reference)}`;
  const period = rule.period && `per ${rule.period.kind} from ${rule.period.reset} ${rule.period.time_zone}`;
  const scope = rule.scope && rule.scope.kind !== 'all' && `${label(rule.scope.kind)} positions only`;
  const buffer = rule.buffer !== null && rule.buffer !== undefined && `acts at ${pct(rule.buffer * 100, 0)} of each limit`;
  return [measured, period, scope, buffer].filter(Boolean).join(' · ');
}

function thresholdText({ amount, percent, percent_of: of, floor }, metric, currency) {
  const parts = [];
  if (num(amount) !== null) parts.push(`${money(amount, currency)} loss`);
  if (num(percent) !== null) parts.push(`${pct(percent)} of ${of === 'initial_balance' ? 'the initial balance' : 'the reference'}`);
  if (num(floor) !== null) parts.push(`${metric} below ${money(floor, currency)}`);
  return parts.join(' or ');
}

function ruleCard(rule, standing, currency) {
  const name = rule.label || rule.id;
  const current = standing?.step ?? null;
  return h('div', { class: 'rule', dataset: { ruleId: rule.id, shadow: String(rule.shadow) } },
    h('div', { class: 'rule-head' },
      h('strong', {}, name),
      name !== rule.id ? h('code', { class: 'rule-id' }, rule.id) : null,
      rule.shadow ? badge('shadow', 'shadow', { title: 'records what it would do and does nothing' }) : null,
      current !== null ? badge(`at ${standing.steps[current].label}`, TIER_TONE[rule.steps[current].tier]) : null),
    h('p', { class: 'muted small rule-measure' }, ruleMeasure(rule)),
    standing ? ruleLoss(standing, rule.metric, currency) : null,
    standing ? ruleUsage(rule, standing) : null,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'rule-steps' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Step'),
          h('th', { scope: 'col', class: 'num' }, 'Limit'),
          h('th', { scope: 'col', class: 'num' }, 'Headroom'),
          h('th', { scope: 'col' }, 'State'))),
        h('tbody', {}, rule.steps.map((step, index) => stepRow(rule, step, index, standing?.steps[index], current, currency))))));
}

// A floating rule's value is the balance with its scope's floating P&L.
const METRIC_VALUE = { equity: 'equity', balance: 'balance', floating: 'balance with floating' };

function ruleLoss(standing, metric, currency) {
  const loss = num(standing.loss);
  return h('p', { class: 'small rule-loss' },
    h('span', { class: `pnl ${loss > 0 ? 'down' : 'up'}` }, `Loss ${money(loss, currency)} (${pct(standing.loss_pct)})`),
    h('span', { class: 'muted' }, ` · ${METRIC_VALUE[metric] || metric} ${money(standing.value, currency)} · reference ${money(standing.reference, currency)}`));
}

// How much of the first acting step's limit the loss uses (a rule that only alerts: its last step's).
// A floor sets no limit on the loss: there the loss plus its headroom is how far the floor lies.
function ruleUsage(rule, standing) {
  const acting = rule.steps.findIndex((step) => step.tier !== 'alert');
  const index = acting < 0 ? rule.steps.length - 1 : acting;
  const loss = num(standing.loss);
  const reach = (step) => num(step.limit) ?? loss + num(step.headroom);
  const limit = reach(standing.steps[index]);
  const share = (amount) => (limit > 0 ? Math.max(0, (amount / limit) * 100) : 100);
  const alert = acting > 0 ? share(reach(standing.steps[0])) : 100;
  return h('div', { class: 'rule-usage', dataset: { step: index } }, meter('Used', share(loss), alert, 100));
}

function stepRow(rule, step, index, standing, current, currency) {
  const tone = TIER_TONE[step.tier] || 'muted';
  const headroom = num(standing?.headroom);
  return h('tr', { dataset: { step: index, tier: step.tier, breached: standing ? String(standing.breached) : null }, class: index === current ? 'current' : null },
    h('td', { class: 'c-step' },
      badge(step.tier, tone),
      step.label ? h('span', { class: 'step-label' }, ` ${step.label}`) : null,
      h('span', { class: 'step-threshold muted' }, thresholdText(step.threshold, rule.metric, currency))),
    h('td', { class: 'num c-limit' }, standing ? money(standing.limit, currency) : '–'),
    h('td', { class: `num c-headroom ${headroom < 0 ? 'level-critical' : ''}` },
      h('span', { class: 'headroom-money' }, standing ? money(standing.headroom, currency) : '–'),
      h('span', { class: 'pnl-pct headroom-pct' }, standing ? pct(standing.headroom_pct) : '')),
    h('td', { class: 'c-breached' },
      standing ? badge(standing.breached ? 'breached' : 'clear', standing.breached ? tone : 'ok') : h('span', { class: 'muted' }, 'no snapshot yet')));
}

// ---------------------------------------------------------------- equity and drawdown chart

function niceTicks(min, max, count) {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((candidate) => candidate >= raw);
  const ticks = [];
  for (let value = Math.ceil(min / step) * step; value <= max + step * 1e-9; value += step) ticks.push(Number(value.toFixed(10)));
  return ticks;
}

// One unit and one number of digits for every label of an axis.
function axisFormat(ticks) {
  const largest = Math.max(...ticks.map(Math.abs), 0);
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : largest || 1;
  const [scale, suffix] = largest >= 1e6 ? [1e6, 'M'] : largest >= 1e5 ? [1e3, 'k'] : [1, ''];
  const digits = Math.min(4, Math.max(0, -Math.floor(Math.log10(step / scale) + 1e-9)));
  return (value) => `${formatNumber(value / scale, digits, digits)}${suffix}`;
}

const CHART_RANGES = { '15m': 15 * 60000, '1h': 3600000, '1d': 86400000, all: null };
const CHART_LEAD_MS = 5000; // a window ends this far after now: a bridge's clock may run a little fast
const CHART_MAX_POINTS = 2000;
const CHART_MIN_ZOOM_MS = 1000;
const CHART_MARGIN = { left: 56, right: 12, top: 10, bottom: 24 };
const LABEL_GAP = 8; // px at least between two time labels
const LEVEL_LABEL_GAP = 14; // px at least between two level labels: a line of their text and a little

// The window shown (`range`, or `zoom` once a part of it was selected) and the pointer's reading.
const chart = { range: 'all', zoom: null, hover: null, fetchedAt: 0, counter: 0 };

// The server's clock, from the Date header of its answers: a window ending "now" must end at its now.
let clockOffsetMs = 0;

function noteServerClock(response) {
  const date = Date.parse(response.headers.get('date') || '');
  // The header has whole seconds: its moment is somewhere in the second it names.
  if (!Number.isNaN(date)) clockOffsetMs = date + 500 - Date.now();
}

function chartWindow() {
  if (chart.zoom) return chart.zoom;
  const now = Date.now() + clockOffsetMs;
  const span = CHART_RANGES[chart.range];
  // Whole seconds, so that pages open at the same time ask the same question (one cache entry).
  return {
    since: span ? Math.floor((now - span) / 1000) * 1000 : null,
    until: Math.ceil((now + CHART_LEAD_MS) / 1000) * 1000,
  };
}

function chartSize(box) {
  const width = Math.max(280, Math.floor(box.clientWidth || 600));
  return { width, height: width < 520 ? 250 : 300, plotWidth: width - CHART_MARGIN.left - CHART_MARGIN.right };
}

// A long window's buckets are wide: a new snapshot barely moves them, so it is read again less often.
function chartRefreshEvery(series) {
  return series?.bucket_seconds ? Math.min(60000, series.bucket_seconds * 100) : 0;
}

async function refreshChart(id, { now = false } = {}) {
  const detail = state.detail;
  if (!detail || detail.accountId !== id) return;
  const wait = chart.fetchedAt + chartRefreshEvery(detail.equity) - Date.now();
  if (!now && wait > 0) {
    debounced.run(`chart:${id}`, () => {
      if (state.detail === detail) quietly(refreshChart(id));
    }, wait);
    return;
  }
  const ticket = ++chart.counter;
  const { since, until } = chartWindow();
  const maxPoints = Math.min(CHART_MAX_POINTS, chartSize($('chart')).plotWidth);
  const query = new URLSearchParams({ max_points: String(maxPoints), until: new Date(until).toISOString() });
  if (since !== null) query.set('since', new Date(since).toISOString());
  chart.fetchedAt = Date.now();
  const series = await api(`/accounts/${id}/equity?${query}`);
  if (state.detail !== detail || ticket < (detail.chartTicket || 0)) return; // another account, or overtaken
  detail.chartTicket = ticket;
  detail.equity = series;
  renderChart();
}

function showRange(range) {
  chart.range = range;
  chart.zoom = null;
  renderChartControls();
  if (state.selected) quietly(refreshChart(state.selected, { now: true }));
}

function zoomTo(since, until) {
  const from = Math.floor(since);
  chart.zoom = { since: from, until: Math.max(Math.ceil(until), from + CHART_MIN_ZOOM_MS) };
  renderChartControls();
  if (state.selected) quietly(refreshChart(state.selected, { now: true }));
}

function resetZoom() {
  if (chart.zoom) showRange(chart.range);
}

function renderChartControls() {
  for (const button of $('chart-ranges').querySelectorAll('[data-range]')) {
    button.setAttribute('aria-pressed', String(!chart.zoom && button.dataset.range === chart.range));
  }
  $('chart-reset').hidden = !chart.zoom;
}

const TIME_UNIT_MS = { second: 1000, minute: 60000, hour: 3600000, day: 86400000, month: 2629800000, year: 31557600000 };

// Round steps for time ticks, finest first; years go on in 1-2-5 steps for as long as it takes.
function* timeSteps() {
  yield* [
    ['second', 1], ['second', 2], ['second', 5], ['second', 10], ['second', 15], ['second', 30],
    ['minute', 1], ['minute', 2], ['minute', 5], ['minute', 10], ['minute', 15], ['minute', 30],
    ['hour', 1], ['hour', 2], ['hour', 3], ['hour', 6], ['hour', 12],
    ['day', 1], ['day', 2], ['day', 7], ['month', 1], ['month', 2], ['month', 3], ['month', 6], ['year', 1],
  ];
  for (let years = 2; ; years *= 10) yield* [['year', years], ['year', years * 2.5], ['year', years * 5]];
}

// The local times of one step from t0 to t1: calendar units by the calendar, the rest from local midnight.
function tickTimes(t0, t1, unit, count) {
  const date = new Date(t0);
  date.setHours(0, 0, 0, 0);
  if (unit === 'month') date.setMonth(Math.floor(date.getMonth() / count) * count, 1);
  if (unit === 'year') date.setFullYear(Math.floor(date.getFullYear() / count) * count, 0, 1);
  const times = [];
  if (unit === 'second' || unit === 'minute' || unit === 'hour') {
    const step = TIME_UNIT_MS[unit] * count;
    const midnight = date.getTime();
    for (let t = midnight + Math.ceil((t0 - midnight) / step) * step; t <= t1; t += step) times.push(t);
    return times;
  }
  while (date.getTime() <= t1) {
    if (date.getTime() >= t0) times.push(date.getTime());
    if (unit === 'day') date.setDate(date.getDate() + count);
    else if (unit === 'month') date.setMonth(date.getMonth() + count);
    else date.setFullYear(date.getFullYear() + count);
  }
  return times;
}

function tickLabel(t, unit) {
  const date = new Date(t);
  const midnight = date.getHours() === 0 && date.getMinutes() === 0 && date.getSeconds() === 0;
  const day = () => date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  switch (unit) {
    case 'year':
      return String(date.getFullYear());
    case 'month':
      return date.getMonth() === 0 ? String(date.getFullYear()) : date.toLocaleDateString(undefined, { month: 'short' });
    case 'day':
      return date.getMonth() === 0 && date.getDate() === 1 ? String(date.getFullYear()) : day();
    case 'second':
      return midnight ? day() : date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    default:
      return midnight ? day() : date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }
}

// The finest round step whose labels, each measured, fit side by side without touching: [{t, text, left}].
function timeTicks(t0, t1, x, width, measure) {
  const plotWidth = x(t1) - x(t0);
  for (const [unit, count] of timeSteps()) {
    if ((t1 - t0) / (TIME_UNIT_MS[unit] * count) > plotWidth / 30) continue; // far too many to try
    const times = tickTimes(t0, t1, unit, count);
    const placed = [];
    let right = -Infinity;
    for (const t of times) {
      const text = tickLabel(t, unit);
      const textWidth = measure(text);
      const left = Math.min(Math.max(x(t) - textWidth / 2, 2), width - 2 - textWidth); // inside the chart
      if (left < right + LABEL_GAP) break;
      placed.push({ t, text, left });
      right = left + textWidth;
    }
    if (placed.length === times.length) return placed;
  }
  return [];
}

let measureContext = null;

function textMeasure(font) {
  measureContext ||= document.createElement('canvas').getContext('2d');
  return (text) => {
    measureContext.font = font;
    return Math.ceil(measureContext.measureText(text).width) + 2; // tabular digits run a little wider
  };
}

// Labels at their values' heights, moved apart just as much as they must not to overlap, kept inside
// [top, bottom] while there is room: [{...label, y}] from the top down.
function spreadLabels(labels, gap, top, bottom) {
  const placed = labels.map((label) => ({ ...label, y: Math.min(Math.max(label.y, top), bottom) })).sort((a, b) => a.y - b.y);
  for (let i = 1; i < placed.length; i++) placed[i].y = Math.max(placed[i].y, placed[i - 1].y + gap);
  for (let i = placed.length - 1; i >= 0 && placed[i].y > bottom; i--) {
    placed[i].y = i === placed.length - 1 ? bottom : Math.min(placed[i].y, placed[i + 1].y - gap);
  }
  return placed;
}

// The values whose labels are far enough from the ones kept before them (the first always is).
function keepApart(values, y, gap) {
  const kept = [];
  for (const value of values) if (kept.every((other) => Math.abs(y(value) - y(other)) >= gap)) kept.push(value);
  return kept;
}

function renderChart() {
  const box = $('chart');
  const series = state.detail?.equity;
  const points = series?.points || [];
  renderChartNote(series);
  if (!points.length) {
    const text = !series ? 'Loading…' : series.first_taken_at ? 'No snapshots in this time range.' : 'No snapshots yet.';
    box.replaceChildren(h('p', { class: 'empty chart-empty' }, text));
    box.dataset.points = '0';
    box.dataset.snapshots = '0';
    return;
  }
  const { width, height, plotWidth } = chartSize(box);
  const margin = CHART_MARGIN;
  const gap = 20;
  const plotHeight = height - margin.top - margin.bottom - gap;
  const equityHeight = Math.round(plotHeight * 0.6);
  const drawdownTop = margin.top + equityHeight + gap;
  const drawdownHeight = plotHeight - equityHeight;
  const drawdownBottom = drawdownTop + drawdownHeight;

  const warning = num(series.warning_threshold_pct);
  const critical = num(series.critical_threshold_pct);
  const rows = points.map((p) => ({
    t: Date.parse(p.taken_at),
    equity: num(p.equity),
    lowest: num(p.equity_min),
    highest: num(p.equity_max),
    balance: num(p.balance),
    peak: num(p.peak_equity),
    drawdown: num(p.drawdown_pct),
    deepest: num(p.drawdown_max_pct),
    snapshots: p.snapshots,
  }));
  // The axis spans the window asked for, not the points in it: one point far away cannot stretch it.
  const t0 = Date.parse(series.since);
  const t1 = Date.parse(series.until);
  const span = Math.max(t1 - t0, 1);
  const x = (t) => margin.left + ((t - t0) / span) * plotWidth;
  const timeAt = (px) => t0 + ((Math.min(Math.max(px, margin.left), width - margin.right) - margin.left) / plotWidth) * span;

  let low = Infinity;
  let high = -Infinity;
  for (const r of rows) {
    low = Math.min(low, r.lowest, r.balance, r.peak);
    high = Math.max(high, r.highest, r.balance, r.peak);
  }
  const pad = (high - low) * 0.08 || Math.abs(high) * 0.01 || 1;
  low -= pad;
  high += pad;
  const yEquity = (v) => margin.top + (1 - (v - low) / (high - low)) * equityHeight;
  const ddMax = Math.max(critical * 1.2, ...rows.map((r) => r.deepest * 1.1));
  const yDrawdown = (v) => drawdownTop + (Math.min(v, ddMax) / ddMax) * drawdownHeight;

  // A bucket is drawn as a stroke down its extremes, then to its latest value: a crash inside one shows.
  const trace = (y, value, ...extremes) => rows.map((r, i) => {
    const px = x(r.t).toFixed(1);
    const values = [...extremes.map((name) => r[name]).filter((v) => v !== r[value]), r[value]];
    return values.map((v, j) => `${i || j ? 'L' : 'M'}${px},${y(v).toFixed(1)}`).join('');
  }).join('');
  const floor = (level) => rows.map((r, i) => `${i ? 'L' : 'M'}${x(r.t).toFixed(1)},${yEquity(r.peak * (1 - level / 100)).toFixed(1)}`).join('');
  const first = rows[0];
  const last = rows[rows.length - 1];
  const area = `${trace(yDrawdown, 'drawdown', 'deepest')}L${x(last.t).toFixed(1)},${drawdownTop}L${x(first.t).toFixed(1)},${drawdownTop}Z`;
  const clipId = `clip-equity-${state.selected}`;

  const equityTicks = niceTicks(low, high, 4).filter((v) => v >= low && v <= high);
  const equityLabel = axisFormat(equityTicks);
  const drawdownTicks = keepApart([0, critical, warning], yDrawdown, LEVEL_LABEL_GAP);
  const measure = textMeasure(`11px ${getComputedStyle(box).fontFamily}`);
  const timeAxis = timeTicks(t0, t1, x, width, measure);
  const levels = spreadLabels(
    [
      { level: 'warning', text: `warning ${formatNumber(warning, 0, 1)}%`, y: yDrawdown(warning) - 3 },
      { level: 'critical', text: `critical ${formatNumber(critical, 0, 1)}%`, y: yDrawdown(critical) - 3 },
    ],
    LEVEL_LABEL_GAP, drawdownTop + 11, drawdownBottom - 2);

  const crosshair = s('line', { class: 'crosshair', x1: 0, x2: 0, y1: margin.top, y2: drawdownBottom, visibility: 'hidden' });
  const band = s('rect', { class: 'zoom-band', x: 0, width: 0, y: margin.top, height: drawdownBottom - margin.top, visibility: 'hidden' });
  const tip = h('div', { class: 'chart-tip', hidden: true });

  const svgElement = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'chart-svg', 'aria-hidden': 'true' },
    s('defs', {}, s('clipPath', { id: clipId }, s('rect', { x: margin.left, y: margin.top, width: plotWidth, height: equityHeight }))),
    // grid and axes
    equityTicks.map((v) => [
      s('line', { class: 'grid', x1: margin.left, x2: width - margin.right, y1: yEquity(v), y2: yEquity(v) }),
      s('text', { class: 'axis', x: margin.left - 6, y: yEquity(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, equityLabel(v)),
    ]),
    drawdownTicks.map((v) => s('text', { class: 'axis', x: margin.left - 6, y: yDrawdown(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, `${formatNumber(v, 0, 1)}%`)),
    timeAxis.map((tick) => [
      s('line', { class: 'tick', x1: x(tick.t), x2: x(tick.t), y1: drawdownBottom, y2: drawdownBottom + 4 }),
      s('text', { class: 'axis time-label', x: tick.left, y: height - 6, 'text-anchor': 'start' }, tick.text),
    ]),
    s('line', { class: 'axis-line', x1: margin.left, x2: width - margin.right, y1: drawdownTop, y2: drawdownTop }),
    s('line', { class: 'axis-line', x1: margin.left, x2: width - margin.right, y1: drawdownBottom, y2: drawdownBottom }),
    s('text', { class: 'pane-label', x: width - margin.right - 6, y: drawdownTop + 12, 'text-anchor': 'end' }, 'drawdown'),
    // equity pane
    s('g', { 'clip-path': `url(#${clipId})` },
      s('path', { class: 'threshold warning', d: floor(warning) }),
      s('path', { class: 'threshold critical', d: floor(critical) }),
      s('path', { class: 'series peak', d: trace(yEquity, 'peak') }),
      s('path', { class: 'series balance', d: trace(yEquity, 'balance') }),
      s('path', { class: 'series equity', d: trace(yEquity, 'equity', 'highest', 'lowest') }),
      s('circle', { class: 'latest', cx: x(last.t), cy: yEquity(last.equity), r: 3 })),
    // drawdown pane, growing downwards, with the thresholds
    s('path', { class: 'drawdown-area', d: area }),
    s('path', { class: 'series drawdown', d: trace(yDrawdown, 'drawdown', 'deepest') }),
    s('line', { class: 'threshold warning', x1: margin.left, x2: width - margin.right, y1: yDrawdown(warning), y2: yDrawdown(warning) }),
    s('line', { class: 'threshold critical', x1: margin.left, x2: width - margin.right, y1: yDrawdown(critical), y2: yDrawdown(critical) }),
    levels.map((label) => s('text', { class: `threshold-label ${label.level}`, x: margin.left + 6, y: label.y }, label.text)),
    band,
    crosshair,
  );

  const currency = state.accounts.get(state.selected)?.account.currency;
  const nearest = (px) => {
    const t = timeAt(px);
    let lo = 0;
    let hi = rows.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (rows[mid].t < t) lo = mid;
      else hi = mid;
    }
    return Math.abs(rows[lo].t - t) <= Math.abs(rows[hi].t - t) ? rows[lo] : rows[hi];
  };
  const showAt = (px) => {
    if (px < margin.left || px > width - margin.right) return;
    chart.hover = px;
    const row = nearest(px);
    const cx = x(row.t);
    crosshair.setAttribute('x1', cx);
    crosshair.setAttribute('x2', cx);
    crosshair.setAttribute('visibility', 'visible');
    const many = row.snapshots > 1;
    tip.replaceChildren(
      h('strong', {}, clock(new Date(row.t).toISOString())),
      h('span', {}, `Equity ${money(row.equity, currency)}`),
      many ? h('span', { class: 'muted' }, `${row.snapshots} snapshots: ${money(row.lowest, currency)} to ${money(row.highest, currency)}`) : null,
      h('span', {}, `Balance ${money(row.balance, currency)}`),
      h('span', { class: `level-${levelOf(row.drawdown, warning, critical)}` }, `Drawdown ${pct(row.drawdown)}`),
      many && row.deepest !== row.drawdown ? h('span', { class: `level-${levelOf(row.deepest, warning, critical)}` }, `Deepest ${pct(row.deepest)}`) : null,
    );
    tip.hidden = false;
    const left = cx + 12 + 170 > width ? cx - 12 - 170 : cx + 12;
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${margin.top}px`;
  };
  // Dragging across the chart zooms into what was crossed; a double click goes back to the range.
  let dragFrom = null;
  const localX = (event) => event.clientX - svgElement.getBoundingClientRect().left;
  svgElement.addEventListener('pointerdown', (event) => {
    const px = localX(event);
    if (event.button !== 0 || event.pointerType === 'touch' || px < margin.left || px > width - margin.right) return;
    dragFrom = px;
    svgElement.setPointerCapture(event.pointerId);
  });
  svgElement.addEventListener('pointermove', (event) => {
    const px = localX(event);
    showAt(px);
    if (dragFrom === null) return;
    const from = Math.max(Math.min(dragFrom, px), margin.left);
    band.setAttribute('x', from);
    band.setAttribute('width', Math.max(Math.min(Math.max(dragFrom, px), width - margin.right) - from, 0));
    band.setAttribute('visibility', 'visible');
  });
  svgElement.addEventListener('pointerup', (event) => {
    if (dragFrom === null) return;
    const [a, b] = [dragFrom, localX(event)].sort((p, q) => p - q);
    dragFrom = null;
    band.setAttribute('visibility', 'hidden');
    if (b - a >= 6) zoomTo(timeAt(a), timeAt(b));
  });
  svgElement.addEventListener('dblclick', resetZoom);
  svgElement.addEventListener('pointerleave', () => {
    chart.hover = null;
    crosshair.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  });
  box.replaceChildren(svgElement, tip);
  if (chart.hover !== null) showAt(chart.hover); // a live update keeps the reading under the pointer
  box.dataset.width = String(width);
  box.dataset.points = String(rows.length);
  box.dataset.snapshots = String(rows.reduce((sum, r) => sum + r.snapshots, 0));
}

// A snapshot dated after the window and after now (a bridge whose clock is wrong) is named, not drawn;
// a window reaching back past the snapshots kept one by one says that it is drawn from minutes.
function renderChartNote(series) {
  const latest = Date.parse(series?.last_taken_at || '');
  const beyond = latest > Date.parse(series?.until || '') && latest > Date.now() + clockOffsetMs + CHART_LEAD_MS;
  const minutes = series?.resolution === 'minute';
  const note = $('chart-note');
  note.hidden = !beyond && !minutes;
  if (beyond) setText('chart-note', `The latest snapshot is dated ${new Date(latest).toLocaleString()}, in the future: it is not drawn.`);
  else if (minutes) setText('chart-note', 'Older snapshots are kept per minute: each point stands for at least a minute of them.');
}

// ---------------------------------------------------------------- feeds: events, alerts, commands

// What a close made, and whether the broker's deals said so or it is the last floating P&L seen.
const PNL_SOURCE_LABEL = { realized: 'realized', acknowledged: 'as acknowledged', last_floating: 'last floating' };

function closePnl(details, currency) {
  const source = PNL_SOURCE_LABEL[details?.pnl_source];
  if (!source || num(details.net_profit) === null) return null;
  return h('span', { class: 'close-pnl', dataset: { pnlSource: details.pnl_source } },
    h('span', { class: `pnl ${num(details.net_profit) >= 0 ? 'up' : 'down'}` }, ` ${signedMoney(details.net_profit, currency)}`),
    h('span', { class: 'muted' }, ` ${source}`));
}

function eventItem(event) {
  const where = [event.symbol, event.ticket && `#${event.ticket}`, event.trade_id && `trade ${event.trade_id}`].filter(Boolean).join(' ');
  const currency = state.accounts.get(event.account_id)?.account.currency;
  return h('li', { class: 'feed-item', dataset: { eventId: event.id, eventType: event.event_type } },
    h('div', { class: 'feed-head' },
      badge(event.event_type, eventTone(event)),
      event.details?.automatic ? badge('automatic', 'outline', { title: 'resumed by the rule itself, not by a person' }) : null,
      event.reason ? badge(event.reason, 'outline') : null,
      where ? h('span', { class: 'where' }, where) : null,
      h('time', { datetime: event.created_at, title: new Date(event.created_at).toLocaleString() }, clock(event.created_at))),
    h('p', { class: 'feed-message' }, event.message, closePnl(event.details, currency)));
}

function alertItem(alert) {
  return h('li', { class: `feed-item alert-${alert.level}`, dataset: { alertId: alert.id } },
    h('div', { class: 'feed-head' },
      badge(alert.level, alert.level === 'info' ? 'info' : alert.level),
      h('span', { class: 'where' }, [label(alert.kind), alert.symbol].filter(Boolean).join(' · ')),
      h('time', { datetime: alert.created_at, title: new Date(alert.created_at).toLocaleString() }, clock(alert.created_at))),
    h('p', { class: 'feed-message' }, alert.message));
}

function renderEvents() {
  const events = state.detail?.events || [];
  $('events').replaceChildren(...events.map(eventItem));
  $('events-empty').hidden = !state.detail || events.length > 0;
}

function renderAlerts() {
  const alerts = state.detail?.alerts || [];
  $('alerts').replaceChildren(...alerts.map(alertItem));
  $('alerts-empty').hidden = !state.detail || alerts.length > 0;
}

// An alert is known by its id in /alerts; one from the stream travels as its audit entry (`id`)
// and names that id as `alert_id`. Alerts are ordered by time.
function alertAsListed(alert) {
  return { ...alert, id: alert.alert_id };
}

const EVENT_FEED = { limit: FEED_LIMIT, key: (event) => event.id, newerFirst: (a, b) => b.id - a.id };
const ALERT_FEED = { limit: ALERT_LIMIT, key: (alert) => alert.id, newerFirst: (a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) };

// The feed with the items it lacks added, newest first, at most its limit.
function addToFeed(feed, list, items) {
  const known = new Set(list.map(feed.key));
  const added = items.filter((item) => !known.has(feed.key(item)));
  if (!added.length) return list;
  return [...list, ...added].sort(feed.newerFirst).slice(0, feed.limit);
}

// The audit entry an alert also is; its id is the stream's event id, the audit entry's own.
function alertAsAuditEntry(alert, auditId) {
  return {
    id: Number(auditId),
    account_id: alert.account_id,
    created_at: alert.created_at,
    event_type: 'alert',
    reason: alert.kind,
    symbol: alert.symbol,
    ticket: null,
    trade_id: null,
    message: alert.message,
    details: { kind: alert.kind, level: alert.level, ...alert.details },
  };
}

// Close commands as the audit trail tells them: one entry per command id, its latest state.
function foldCommand(commands, event) {
  const id = event.details?.command_id;
  if (!id) return;
  const known = commands.get(id) || {
    id,
    symbol: event.symbol,
    ticket: event.ticket,
    cause: event.reason,
    attempt: null,
    state: 'pending',
    created_at: event.created_at,
    lastEventId: 0,
  };
  if (event.id < known.lastEventId) return;
  known.lastEventId = event.id;
  known.updated_at = event.created_at;
  known.message = event.message;
  const attempt = /attempt (\d+)/.exec(event.message);
  if (attempt) known.attempt = Number(attempt[1]);
  if (event.event_type === 'position_closed') {
    known.state = 'closed';
    known.closeDetails = event.details;
  } else if (event.details.state) {
    known.state = event.details.state;
  }
  commands.set(id, known);
}

function renderCommands() {
  const commands = [...(state.detail?.commands?.values() || [])].sort((a, b) => b.lastEventId - a.lastEventId);
  const currency = state.accounts.get(state.selected)?.account.currency;
  $('commands').replaceChildren(
    ...commands.slice(0, 50).map((command) => h('li', { class: 'feed-item', dataset: { commandId: command.id, state: command.state } },
      h('div', { class: 'feed-head' },
        badge(command.state, COMMAND_TONE[command.state] || 'muted'),
        h('span', { class: 'where' }, `${command.symbol || ''} #${command.ticket}`),
        command.cause ? badge(command.cause, 'outline') : null,
        h('time', { datetime: command.updated_at, title: new Date(command.updated_at).toLocaleString() }, clock(command.updated_at))),
      h('p', { class: 'feed-message' },
        command.message,
        command.attempt > 1 ? h('span', { class: 'muted' }, ` (attempt ${command.attempt})`) : null,
        closePnl(command.closeDetails, currency)))),
  );
  $('commands-empty').hidden = !state.detail || commands.length > 0;
}

// ---------------------------------------------------------------- platform (the operator's view)

const PLATFORM_PAGE_SIZE = 50;
const PLATFORM_REFRESH_MS = 1000; // stream events refresh the platform page at most this often
// The exposure sums every open position of the platform: it is read again at most this often.
const EXPOSURE_REFRESH_MS = 5000;
const PLATFORM_RECONNECT_MS = 5000;
const SPARKLINE = { width: 96, height: 24, pad: 2 };
const PLATFORM_STATUSES = ['halted', 'critical', 'stale_feed', 'divergent', 'commands_outstanding', 'commands_failed', 'warning', 'ok'];
const PLATFORM_TONE = {
  halted: 'critical',
  critical: 'critical',
  stale_feed: 'stale',
  divergent: 'warning',
  commands_outstanding: 'info',
  commands_failed: 'critical',
  warning: 'warning',
  ok: 'ok',
};

const platform = {
  filters: { status: '', broker: '', signal: '' },
  cursors: [null], // the cursor of each page seen so far, for Previous
  page: 0,
  answer: null,
  exposure: null,
  exposureReadAt: 0,
  ticket: 0,
  drawdowns: new Map(), // account id -> its drawdown series of the last hour
  drawdownsUntil: 0, // the end of their last bucket: until then they are not read again
  drawdownsTimer: null,
  drawdownsTicket: 0,
};

function isOperator() {
  return Boolean(state.me) && (state.me.role === 'owner' || state.me.role === 'admin');
}

function onPlatformView() {
  return location.hash === '#platform';
}

function query(params) {
  const pairs = Object.entries(params).filter(([, value]) => value !== null && value !== undefined && value !== '');
  return pairs.length ? `?${new URLSearchParams(pairs)}` : '';
}

// Which page the hash asks for: the platform's, or the accounts' (with the account it names).
function showView() {
  if (!state.me) return;
  const onPlatform = onPlatformView();
  $('platform').hidden = !onPlatform;
  $('dashboard').hidden = onPlatform;
  $('platform-link').hidden = !isOperator();
  $('accounts-link').setAttribute('aria-current', onPlatform ? 'false' : 'page');
  $('platform-link').setAttribute('aria-current', onPlatform ? 'page' : 'false');
  if (onPlatform) {
    quietly(loadPlatform({ exposureNow: true }));
    platformStream.start();
    return;
  }
  platformStream.stop();
  const id = accountFromHash();
  if (id && id !== state.selected) selectAccount(id);
  else if (state.selected && location.hash !== `#account-${state.selected}`) history.replaceState(null, '', `#account-${state.selected}`);
}

async function loadPlatform({ exposureNow = false } = {}) {
  const ticket = ++platform.ticket;
  const cursor = platform.cursors[platform.page];
  const sinceExposure = Date.now() - platform.exposureReadAt;
  const readExposure = exposureNow || !platform.exposure || sinceExposure >= EXPOSURE_REFRESH_MS;
  if (!readExposure) {
    // The events that asked for this refresh are in the exposure at the latest this much later.
    debounced.run('exposure', () => {
      if (onPlatformView()) quietly(loadPlatform());
    }, EXPOSURE_REFRESH_MS - sinceExposure);
  }
  let answer;
  let exposure;
  try {
    [answer, exposure] = await Promise.all([
      api(`/platform/accounts${query({ ...platform.filters, limit: PLATFORM_PAGE_SIZE, cursor })}`),
      readExposure ? api('/platform/exposure') : platform.exposure,
    ]);
  } catch (error) {
    if (ticket !== platform.ticket) return;
    if (error.status === 404) {
      platform.answer = null;
      platform.exposure = null;
      renderPlatform();
      return;
    }
    throw error;
  }
  if (ticket !== platform.ticket) return; // a newer read (another page, other filters) was asked for
  platform.answer = answer;
  if (readExposure) platform.exposureReadAt = Date.now();
  platform.exposure = exposure;
  renderPlatform();
  await loadDrawdowns(answer.accounts.map((row) => row.account_id));
}

// The sparklines change only when a bucket ends, or when the page shows other accounts: a list read
// again on a stream event reads them no more often.
async function loadDrawdowns(ids, { force = false } = {}) {
  const known = ids.every((id) => platform.drawdowns.has(id));
  if (!ids.length || (!force && known && Date.now() + clockOffsetMs < platform.drawdownsUntil)) return;
  const ticket = ++platform.drawdownsTicket;
  const answer = await api(`/platform/drawdowns?${ids.map((id) => `account_id=${id}`).join('&')}`);
  if (ticket !== platform.drawdownsTicket) return; // the sparklines of another page were asked for since
  // An account without a snapshot in the window is absent from the answer: it has nothing to draw.
  platform.drawdowns = new Map(ids.map((id) => [id, null]));
  for (const series of answer.accounts) platform.drawdowns.set(series.account_id, series);
  platform.drawdownsUntil = Date.parse(answer.until);
  clearTimeout(platform.drawdownsTimer);
  platform.drawdownsTimer = setTimeout(() => {
    if (onPlatformView() && platform.answer) quietly(loadDrawdowns(platform.answer.accounts.map((row) => row.account_id), { force: true }));
  }, Math.max(1000, platform.drawdownsUntil - Date.now() - clockOffsetMs));
  if (platform.answer) renderPlatformAccounts(platform.answer);
}

// The deepest drawdown of each bucket of the last hour, deeper further down, in its worst level's tone.
function drawdownSparkline(series) {
  if (!series) return h('span', { class: 'muted small' }, 'no snapshots');
  const values = series.points.map(num);
  const deepest = Math.max(...values.filter((value) => value !== null));
  const warning = num(series.warning_threshold_pct);
  const level = levelOf(deepest, warning, num(series.critical_threshold_pct));
  const { width, height, pad } = SPARKLINE;
  const scale = Math.max(deepest, warning, 1);
  const step = (width - 2 * pad) / Math.max(values.length - 1, 1);
  const drawn = values.flatMap((value, index) => (value === null ? [] : [[pad + index * step, pad + (value / scale) * (height - 2 * pad)]]));
  const [lastX, lastY] = drawn[drawn.length - 1];
  const text = `Deepest drawdown in the last hour: ${pct(deepest)}`;
  return s('svg', { class: `sparkline level-${level}`, viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': text },
    s('title', {}, text),
    s('polyline', { points: drawn.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ') }),
    s('circle', { cx: lastX.toFixed(1), cy: lastY.toFixed(1), r: 1.8 }));
}

function schedulePlatform() {
  debounced.run('platform', () => {
    if (onPlatformView()) quietly(loadPlatform());
  }, PLATFORM_REFRESH_MS);
}

function renderPlatform() {
  const { answer, exposure } = platform;
  $('platform-unavailable').hidden = Boolean(answer);
  $('platform-body').hidden = !answer;
  if (!answer) {
    $('platform-counts').replaceChildren();
    $('platform-accounts').tBodies[0].replaceChildren();
    $('exposure').tBodies[0].replaceChildren();
    setText('platform-summary', '');
    setText('platform-total', '');
    return;
  }
  const needing = PLATFORM_STATUSES.filter((status) => status !== 'ok').reduce((sum, status) => sum + (answer.counts[status] || 0), 0);
  const counted = PLATFORM_STATUSES.reduce((sum, status) => sum + (answer.counts[status] || 0), 0);
  setText('platform-summary', `${counted} accounts, ${needing} needing attention.`);
  renderPlatformCounts(answer.counts);
  renderPlatformAccounts(answer);
  renderExposure(exposure?.symbols || []);
}

function renderPlatformCounts(counts) {
  $('platform-counts').replaceChildren(
    ...PLATFORM_STATUSES.map((status) => h('button', {
      type: 'button',
      class: 'button subtle status-count',
      dataset: { status, count: counts[status] || 0 },
      'aria-pressed': platform.filters.status === status ? 'true' : 'false',
      title: `Show only the accounts of status ${label(status)}`,
      onclick: () => filterPlatform({ ...platform.filters, status: platform.filters.status === status ? '' : status }),
    }, badge(status, PLATFORM_TONE[status]), h('strong', {}, String(counts[status] || 0)))),
  );
}

function renderPlatformAccounts(answer) {
  const rows = answer.accounts;
  const first = platform.page * PLATFORM_PAGE_SIZE;
  setText('platform-total', String(answer.total));
  $('platform-accounts-empty').hidden = rows.length > 0;
  $('platform-accounts').tBodies[0].replaceChildren(...rows.map((row) => {
    const open = () => { location.hash = `#account-${row.account_id}`; };
    return h('tr', { dataset: { accountId: row.account_id, status: row.status }, onclick: open },
      h('td', { 'data-label': 'Account' },
        h('a', { href: `#account-${row.account_id}` }, h('strong', {}, row.name)),
        h('span', { class: 'ticket' }, `#${row.account_id}`),
        h('div', { class: 'muted small' }, [row.broker, row.login && `login ${row.login}`, `owner ${row.owner_id}`].filter(Boolean).join(' · '))),
      h('td', { 'data-label': 'Status' }, badge(row.status, PLATFORM_TONE[row.status] || 'muted', { title: row.halt_reason || '' })),
      h('td', { 'data-label': 'Needs attention for' },
        h('span', { class: 'badges' }, ...row.attention.map((reason) => badge(reason, 'outline')))),
      h('td', { class: 'num', 'data-label': 'Equity' }, money(row.equity, row.currency)),
      h('td', { class: `num level-${row.drawdown_level || 'normal'}`, 'data-label': 'Drawdown' }, pct(row.drawdown_pct)),
      h('td', { 'data-label': 'Drawdown, last hour' }, platform.drawdowns.has(row.account_id) ? drawdownSparkline(platform.drawdowns.get(row.account_id)) : null),
      h('td', { 'data-label': 'Last sync' }, row.last_sync_at ? relativeTime(row.last_sync_at) : 'never'));
  }));
  setText('platform-range', rows.length ? `${first + 1}–${first + rows.length} of ${answer.total}` : '');
  $('platform-prev').disabled = platform.page === 0;
  $('platform-next').disabled = answer.next_cursor === null;
}

function renderExposure(symbols) {
  $('exposure-empty').hidden = symbols.length > 0;
  $('exposure').tBodies[0].replaceChildren(...symbols.map((row) => h('tr', { dataset: { symbol: row.symbol } },
    h('td', { 'data-label': 'Instrument' },
      h('strong', {}, row.symbol),
      row.broker_symbols.some((name) => name !== row.symbol) ? h('div', { class: 'muted small' }, row.broker_symbols.join(', ')) : null),
    h('td', { class: 'num', 'data-label': 'Net lots' }, volume(row.net_volume)),
    h('td', { class: 'num', 'data-label': 'Gross lots' }, volume(row.gross_volume)),
    h('td', { class: 'num', 'data-label': 'Floating P&L' },
      ...Object.entries(row.floating_pnl).map(([currency, amount]) => {
        const value = num(amount);
        return h('div', { class: `pnl ${value > 0 ? 'up' : value < 0 ? 'down' : ''}` }, signedMoney(amount, currency));
      })),
    h('td', { class: 'num', 'data-label': '1 % move costs' },
      row.cost_currency ? money(row.one_percent_move_cost, row.cost_currency) : `${formatNumber(num(row.one_percent_move_cost), 2, 2)} (in the quote currency)`,
      row.cost_currency_differs ? h('div', { class: 'muted small', title: 'tradeguard has no exchange rates and does not convert' }, 'some accounts keep other currencies') : null),
    h('td', { class: 'num', 'data-label': 'Positions / accounts' }, `${row.positions} / ${row.accounts}`),
  )));
}

function filterPlatform(filters) {
  platform.filters = filters;
  platform.cursors = [null];
  platform.page = 0;
  $('filter-status').value = filters.status;
  $('filter-broker').value = filters.broker;
  $('filter-signal').value = filters.signal;
  quietly(loadPlatform());
}

function turnPlatformPage(step) {
  if (step > 0) {
    const next = platform.answer?.next_cursor;
    if (next === null || next === undefined) return;
    platform.cursors[platform.page + 1] = next;
  }
  platform.page = Math.max(0, platform.page + step);
  quietly(loadPlatform());
}

function showBulkAnswer(title, lines) {
  $('bulk-result').replaceChildren(h('p', {}, h('strong', {}, title)), h('ul', { class: 'feed' }, ...lines.map((line) => h('li', { class: 'feed-item' }, line))));
}

function accountName(id) {
  return state.accounts.get(id)?.account.name ?? platform.answer?.accounts.find((row) => row.account_id === id)?.name ?? `#${id}`;
}

// Halt or re-arm every account of a signal or a broker, once the operator saw which accounts those are.
async function onBulkTrading(event) {
  event.preventDefault();
  const action = $('bulk-action').value;
  const by = $('bulk-by').value;
  const target = $('bulk-target').value.trim();
  if (!target) return;
  const reason = $('bulk-reason').value.trim();
  const selected = await api(`/platform/accounts${query({ [by]: target, limit: 10 })}`);
  const names = selected.accounts.map((row) => `${row.name} (#${row.account_id}, ${label(row.status)})`);
  const more = selected.total > names.length ? ` and ${selected.total - names.length} more` : '';
  const verb = action === 'halt' ? 'Halt' : 'Re-arm';
  const question = selected.total
    ? `${verb} trading for the ${selected.total} account(s) of ${by} ${target}: ${names.join(', ')}${more}?${action === 'halt' && reason ? ` Reason: ${reason}.` : ''}`
    : `No account is of ${by} ${target} now. ${verb} anyway?`;
  if (!window.confirm(question)) return;
  const body = { [by]: target };
  if (action === 'halt' && reason) body.reason = reason;
  const button = $('bulk-trading-submit');
  button.disabled = true;
  try {
    const answer = await api(`/platform/${action}`, { method: 'POST', json: body });
    showBulkAnswer(`${verb} by ${by} ${target}: ${answer.accounts.length} account(s)`,
      answer.accounts.map((entry) => [h('span', {}, `${accountName(entry.account_id)} (#${entry.account_id}) `), badge(entry.outcome, entry.outcome === 'halted' ? 'critical' : entry.outcome === 'rearmed' ? 'ok' : 'muted')]));
    quietly(loadPlatform());
  } catch (error) {
    if (error.status !== 401 && error.status !== 0) showBulkAnswer(`Could not ${verb.toLowerCase()}: ${error.message}`, []);
  } finally {
    button.disabled = false;
  }
}

async function onBulkClose(event) {
  event.preventDefault();
  const symbol = $('bulk-symbol').value.trim();
  if (!symbol) return;
  const signal = $('bulk-close-signal').value.trim();
  // With a signal, only the positions matched to its trades: the exposure says how many per signal too.
  const symbols = signal ? platform.exposure?.signals.find((row) => row.signal_id === signal)?.symbols : platform.exposure?.symbols;
  const held = symbols?.find((row) => row.symbol === symbol || row.broker_symbols.includes(symbol));
  const what = signal ? `${symbol} position of signal ${signal}` : `${symbol} position`;
  const question = held
    ? `Send a close command for every open ${what} on the platform: ${held.positions} position(s) on ${held.accounts} account(s)?`
    : `No account is known to hold a ${what} now. Send the close commands anyway?`;
  if (!window.confirm(question)) return;
  const button = $('bulk-close-submit');
  button.disabled = true;
  try {
    const answer = await api('/platform/close-symbol', { method: 'POST', json: signal ? { symbol, signal } : { symbol } });
    const issued = answer.accounts.reduce((sum, entry) => sum + entry.commands.length, 0);
    showBulkAnswer(`Close ${symbol}${signal ? ` of signal ${signal}` : ''}: ${issued} command(s) issued on ${answer.accounts.length} account(s)`,
      answer.accounts.map((entry) => `${accountName(entry.account_id)} (#${entry.account_id}): ${entry.commands.length} issued` +
        (entry.not_issued.length ? `, not issued for ${entry.not_issued.map((ticket) => `#${ticket}`).join(' ')}` : '')));
    quietly(loadPlatform());
  } catch (error) {
    if (error.status !== 401 && error.status !== 0) showBulkAnswer(`Could not close ${symbol}: ${error.message}`, []);
  } finally {
    button.disabled = false;
  }
}

// Every account's events, while the platform page is shown: each one refreshes the page (throttled).
const platformStream = {
  controller: null,
  reconnectTimer: null,
  lastEventId: null,

  start() {
    if (this.controller || !isOperator()) return;
    this.connect();
  },

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    clearTimeout(this.reconnectTimer);
  },

  async connect() {
    const generation = state.generation;
    const controller = new AbortController();
    this.controller = controller;
    try {
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${state.token}` };
      if (this.lastEventId !== null) headers['Last-Event-ID'] = this.lastEventId;
      const response = await fetch(`${API}/platform/stream`, { headers, signal: controller.signal, cache: 'no-store' });
      if (!response.ok || !(response.headers.get('content-type') || '').startsWith('text/event-stream')) {
        quietly(response.body ? response.body.cancel() : Promise.resolve());
        if (response.status === 404 || response.status === 401) {
          this.controller = null;
          return; // not the operator (any more): the page reads once, and shows what the API says
        }
      } else {
        await readEvents(response.body, controller.signal, {
          onEvent: (type, data, id) => {
            if (id !== null) this.lastEventId = id;
            if (data !== null) schedulePlatform();
          },
        });
      }
    } catch {
      /* the connection broke: reconnect below */
    }
    if (controller.signal.aborted || generation !== state.generation) return;
    this.controller = null;
    this.reconnectTimer = setTimeout(() => this.start(), PLATFORM_RECONNECT_MS);
  },
};

// ---------------------------------------------------------------- live updates

const debounced = {
  timers: new Map(),
  run(key, work, delay = DEBOUNCE_MS) {
    if (this.timers.has(key)) return;
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      work();
    }, delay));
  },
  clear() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  },
};

function scheduleDetail(id) {
  debounced.run(`detail:${id}`, () => {
    if (state.selected === id) quietly(refreshDetail(id));
  });
}

// An operator reads another account's summary with all the others, once however many change.
function scheduleSummary(id) {
  if (isOperator() && id !== state.selected) debounced.run('summaries', () => quietly(refreshSummaries()), PLATFORM_REFRESH_MS);
  else debounced.run(`summary:${id}`, () => quietly(refreshSummary(id)));
}

function scheduleAccounts() {
  debounced.run('accounts', () => quietly(loadAccounts()), 500);
}

function scheduleEverything() {
  debounced.run('everything', () => {
    quietly(loadAccounts());
    if (state.selected) quietly(refreshDetail(state.selected, { feeds: true, config: true }));
  });
}

function onStreamEvent(type, data, eventId) {
  let payload;
  try {
    payload = JSON.parse(data);
  } catch {
    return;
  }
  switch (type) {
    case 'hello':
      stream.live();
      // Resuming from here if the connection drops before any numbered event arrives.
      if (state.lastEventId === null && payload.last_event_id !== null && payload.last_event_id !== undefined) {
        state.lastEventId = String(payload.last_event_id);
      }
      // Whatever happened while the stream was not there: read it all once.
      if ((payload.accounts || []).some((id) => !state.accounts.has(id))) scheduleAccounts();
      scheduleEverything();
      break;
    case 'sync':
      if (!applySync(payload)) scheduleAccounts();
      else if (payload.account_id === state.selected) scheduleDetail(payload.account_id);
      break;
    case 'log': {
      const id = payload.account_id;
      if (!state.accounts.has(id)) {
        scheduleAccounts();
        break;
      }
      if (GUARD_EVENTS.has(payload.event_type)) {
        scheduleSummary(id);
        // A guard changing level is what the chart is for: shown now, however wide its buckets.
        if (id === state.selected) quietly(refreshChart(id, { now: true }));
      }
      if (id === state.selected && state.detail) {
        state.detail.events = addToFeed(EVENT_FEED, state.detail.events, [payload]);
        renderEvents();
        if (COMMAND_EVENTS.has(payload.event_type)) {
          foldCommand(state.detail.commands, payload);
          renderCommands();
        }
        scheduleDetail(id);
      }
      break;
    }
    case 'alert': {
      const entry = state.accounts.get(payload.account_id);
      if (!entry) break;
      if (payload.account_id === state.selected && state.detail) {
        state.detail.alerts = addToFeed(ALERT_FEED, state.detail.alerts, [alertAsListed(payload)]);
        state.detail.events = addToFeed(EVENT_FEED, state.detail.events, [alertAsAuditEntry(payload, eventId)]);
        renderAlerts();
        renderEvents();
      } else {
        entry.unseenAlerts += 1;
        renderAccountCard(payload.account_id);
      }
      break;
    }
    default:
      break;
  }
}

// The stream, read with fetch (EventSource cannot send an Authorization header), parsed as SSE.
const stream = {
  controller: null,
  retryMs: RETRY_MIN_MS,
  reconnectTimer: null,
  probeTimer: null,
  pollTimer: null,
  stallTimer: null,

  start() {
    this.stop();
    this.connect();
  },

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.stallTimer);
    this.stopPolling();
    this.retryMs = RETRY_MIN_MS;
  },

  async connect() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.probeTimer);
    const generation = state.generation;
    const controller = new AbortController();
    this.controller = controller;
    if (!this.pollTimer) setMode('connecting');
    let response;
    try {
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${state.token}` };
      if (state.lastEventId !== null) headers['Last-Event-ID'] = state.lastEventId;
      response = await fetch(`${API}/stream`, { headers, signal: controller.signal, cache: 'no-store' });
    } catch {
      if (!controller.signal.aborted) this.retry(controller);
      return;
    }
    if (controller.signal.aborted || generation !== state.generation) return;
    if (response.status === 401) {
      signOut('Your session has ended. Please sign in again.');
      return;
    }
    const type = response.headers.get('content-type') || '';
    if (!response.ok || !type.startsWith('text/event-stream')) {
      // No stream on this server (404), or not one we can read: poll, and look for it again later.
      quietly(response.body ? response.body.cancel() : Promise.resolve());
      this.controller = null;
      this.startPolling('polling');
      if (response.status >= 500) this.retry(controller);
      else this.probeTimer = setTimeout(() => this.connect(), STREAM_PROBE_MS);
      return;
    }
    this.live();
    try {
      await this.read(response.body, controller);
    } catch {
      /* the connection broke: reconnect below */
    }
    if (!controller.signal.aborted && generation === state.generation) this.retry(controller);
  },

  live() {
    this.retryMs = RETRY_MIN_MS;
    this.stopPolling();
    setMode('live');
  },

  retry(controller) {
    if (this.controller === controller) this.controller = null;
    clearTimeout(this.stallTimer);
    // Keep the page current while the stream is away.
    this.startPolling('reconnecting');
    const delay = this.retryMs * (0.8 + Math.random() * 0.4);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  },

  armStall(controller) {
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => controller.abort(new Error('stalled')), STREAM_STALL_MS);
  },

  async read(body, controller) {
    this.armStall(controller);
    await readEvents(body, controller.signal, {
      onChunk: () => this.armStall(controller),
      onEvent: (type, data, id) => {
        if (id !== null) state.lastEventId = id;
        if (data !== null) onStreamEvent(type, data, id);
      },
      onRetry: (ms) => {
        this.retryMs = Math.max(RETRY_MIN_MS, ms);
      },
    });
  },

  startPolling(mode) {
    setMode(mode);
    if (this.pollTimer) return;
    this.pollTimer = setInterval(poll, POLL_MS);
  },

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  },
};

// A Server-Sent Events body, parsed: onEvent(type, data or null, id or null) at the end of each event,
// onChunk() as bytes arrive, onRetry(ms) when the server asks for another reconnection delay.
async function readEvents(body, signal, { onEvent, onChunk = () => {}, onRetry = () => {} }) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
  let buffer = '';
  let type = '';
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onChunk();
    buffer += value;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (!match) break;
      // A lone CR at the very end may be the first half of a CRLF: wait for more.
      if (match[0] === '\r' && match.index === buffer.length - 1) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (id !== null || data.length) onEvent(type || 'message', data.length ? data.join('\n') : null, id);
        type = '';
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue; // a comment: keepalive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'event') type = text;
      else if (field === 'data') data.push(text);
      else if (field === 'id' && !text.includes('\0')) id = text;
      else if (field === 'retry' && /^\d+$/.test(text)) onRetry(Number(text));
    }
  }
}

async function poll() {
  if (document.hidden || !state.token) return;
  const selected = state.selected;
  await Promise.all([
    quietly(refreshSummaries(selected)),
    selected ? quietly(refreshDetail(selected, { feeds: true })) : null,
  ]);
}

function setMode(mode) {
  const element = $('connection');
  const text = {
    connecting: 'connecting',
    live: 'live',
    polling: 'updating every 5 s',
    reconnecting: 'reconnecting',
  }[mode] || mode;
  element.dataset.mode = mode;
  element.querySelector('.connection-text').textContent = text;
  element.title = mode === 'polling' ? 'The live stream is not available; the page reads the API every 5 seconds.' : '';
}

// ---------------------------------------------------------------- wiring

function main() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('sign-out').addEventListener('click', () => signOut());
  $('rearm').addEventListener('click', onRearm);
  $('chart-ranges').addEventListener('click', (event) => {
    const button = event.target.closest('[data-range]');
    if (button) showRange(button.dataset.range);
  });
  $('chart-reset').addEventListener('click', resetZoom);
  window.addEventListener('hashchange', showView);
  $('filter-status').append(...PLATFORM_STATUSES.map((status) => h('option', { value: status }, label(status))));
  $('platform-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    filterPlatform({ status: $('filter-status').value, broker: $('filter-broker').value.trim(), signal: $('filter-signal').value.trim() });
  });
  $('filter-clear').addEventListener('click', () => filterPlatform({ status: '', broker: '', signal: '' }));
  $('platform-prev').addEventListener('click', () => turnPlatformPage(-1));
  $('platform-next').addEventListener('click', () => turnPlatformPage(1));
  $('bulk-trading').addEventListener('submit', (event) => quietly(onBulkTrading(event)));
  $('bulk-close').addEventListener('submit', (event) => quietly(onBulkClose(event)));
  let chartWidth = 0;
  new ResizeObserver((entries) => {
    const width = Math.floor(entries[0].contentRect.width);
    if (width !== chartWidth) {
      chartWidth = width;
      requestAnimationFrame(renderChart);
    }
  }).observe($('chart'));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.token && stream.pollTimer) poll();
  });
  setInterval(tickRelativeTimes, 1000);
  if (state.token) start();
  else showSignIn();
}

main();
