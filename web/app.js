// Reel — browser UI.
//
// One ES module, no framework and no build step: the Rust server embeds this
// file as-is. Layout of this file:
//   1. DOM + formatting helpers      5. header (search, account menu)
//   2. API client + error handling   6. views: auth, profiles, home, title, search,
//                                       fleet + ops (operators)
//   3. app state                     7. player
//   4. router                        8. boot
//
// Authentication is an HttpOnly cookie set by the server, so this code never
// sees a token: every request just goes out with credentials 'same-origin'.

// ---------------------------------------------------------------------------
// 1. DOM + formatting helpers
// ---------------------------------------------------------------------------

/** Create an element. Strings in `children` become text nodes (never HTML), so
 *  server data can't inject markup. `html` is only used for our own SVG icons. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'html') el.innerHTML = value;
    else if (key === 'style') el.style.cssText = value; // CSSOM, so a strict CSP (no inline styles) still allows it
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

/** replaceChildren that skips null/false, so optional parts can be inlined. */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const app = $('#app');

const ICONS = {
  play: '<path d="M8 5.5v13a1 1 0 0 0 1.5.86l10.6-6.5a1 1 0 0 0 0-1.72L9.5 4.64A1 1 0 0 0 8 5.5z" fill="currentColor"/>',
  pause: '<rect x="6" y="5" width="4" height="14" rx="1" fill="currentColor"/><rect x="14" y="5" width="4" height="14" rx="1" fill="currentColor"/>',
  back: '<path d="M15 5 8 12l7 7" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/>',
  info: '<circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12 11v6M12 7.5v.5" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
  plus: '<path d="M12 5v14M5 12h14" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
  trash: '<path d="M5 7h14M10 7V5h4v2M7 7l1 12h8l1-12" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>',
  chevL: '<path d="M15 4 7 12l8 8" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round"/>',
  chevR: '<path d="M9 4l8 8-8 8" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round"/>',
  rewind: '<path d="M12 5a7 7 0 1 1-7 7" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><path d="M12 2v6L8 5z" fill="currentColor"/><text x="12" y="15.5" font-size="7" text-anchor="middle" fill="currentColor" font-family="sans-serif" font-weight="700">10</text>',
  forward: '<path d="M12 5a7 7 0 1 0 7 7" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><path d="M12 2v6l4-3z" fill="currentColor"/><text x="12" y="15.5" font-size="7" text-anchor="middle" fill="currentColor" font-family="sans-serif" font-weight="700">10</text>',
  volume: '<path d="M4 9h4l5-4v14l-5-4H4z" fill="currentColor"/><path d="M16 8.5a5 5 0 0 1 0 7M18.5 6a8.5 8.5 0 0 1 0 12" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  muted: '<path d="M4 9h4l5-4v14l-5-4H4z" fill="currentColor"/><path d="M16 9l5 6M21 9l-5 6" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  gear: '<path d="M4 7h10M18 7h2M4 17h2M10 17h10" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><circle cx="16" cy="7" r="2.2" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="8" cy="17" r="2.2" fill="none" stroke="currentColor" stroke-width="2"/>',
  fullscreen: '<path d="M4 9V4h5M15 4h5v5M20 15v5h-5M9 20H4v-5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>',
  exitFullscreen: '<path d="M9 4v5H4M20 9h-5V4M15 20v-5h5M4 15h5v5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>',
  check: '<path d="M5 12.5l4.5 4.5L19 7.5" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>',
  close: '<path d="M6 6l12 12M18 6 6 18" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
};

function icon(name) {
  return h('span', { class: 'icon', 'aria-hidden': 'true', html: `<svg viewBox="0 0 24 24">${ICONS[name]}</svg>` });
}

/** 5025 → "1:23:45", 754 → "12:34". Used for the player clock and "Resume at". */
function formatClock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** 6120 → "1h 42m", 1500 → "25m"; empty when unknown. */
function formatDuration(seconds) {
  const m = Math.round((Number(seconds) || 0) / 60);
  if (!m) return '';
  return m >= 60 ? `${Math.floor(m / 60)}h${m % 60 ? ` ${m % 60}m` : ''}` : `${m}m`;
}

/** "2021 · [PG-13] · 1h 42m · Drama, Comedy" as DOM, skipping missing parts. */
function metaLine(item, extra = []) {
  const parts = [
    item.year ? h('span', {}, String(item.year)) : null,
    item.maturity ? h('span', { class: 'badge', title: 'Maturity rating' }, item.maturity) : null,
    item.kind === 'series' && item.seasons?.length
      ? h('span', {}, `${item.seasons.length} season${item.seasons.length > 1 ? 's' : ''}`)
      : item.duration_s ? h('span', {}, formatDuration(item.duration_s)) : null,
    item.genres?.length ? h('span', {}, item.genres.map(genreName).join(', ')) : null,
    ...extra,
  ].filter(Boolean);
  const line = h('p', { class: 'meta', 'data-testid': 'meta' });
  parts.forEach((p, i) => line.append(...(i ? [h('span', { class: 'dot', 'aria-hidden': 'true' }, '·'), p] : [p])));
  return line;
}

/** Genres may arrive as slugs or names; show a readable name either way. */
function genreName(g) {
  const s = typeof g === 'string' ? g : g?.name || g?.slug || '';
  const known = state.genres?.find((x) => x.slug === s);
  if (known) return known.name;
  return s.replace(/[-_]+/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
}

/** Stable hue from an id so cards without artwork still look intentional. */
function hueOf(text) {
  let n = 0;
  for (const ch of String(text)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return n % 360;
}

function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function setTitle(text) {
  document.title = text ? `${text} · Reel` : 'Reel';
}

// ---------------------------------------------------------------------------
// 2. API client + error handling
// ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const STATUS_MESSAGES = {
  401: 'Please sign in to continue.',
  403: 'You don’t have access to that.',
  404: 'We couldn’t find that.',
  429: 'Too many attempts. Please wait a moment and try again.',
};

/** JSON request. Throws ApiError with the server's human message, or a friendly
 *  fallback when the body isn't our error shape (proxy pages, network down). */
async function api(method, path, body, { signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'Can’t reach Reel right now. Check your connection and try again.');
  }
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: handled below */ }
  if (!res.ok) {
    const e = data && data.error;
    const fallback = STATUS_MESSAGES[res.status] || (res.status >= 500
      ? 'Something went wrong on our side. Please try again.'
      : 'That didn’t work. Please try again.');
    throw new ApiError(res.status, e?.code || `http_${res.status}`, e?.message || fallback);
  }
  return data;
}

const isAbort = (err) => err?.name === 'AbortError';

/** Central place for "what do we do with this error": a lapsed session sends the
 *  user to sign in; everything else becomes a toast. Returns true if handled. */
function handleError(err) {
  if (isAbort(err)) return true;
  if (err instanceof ApiError && err.status === 401 && err.code !== 'invalid_credentials') {
    state.me = null;
    state.profiles = null;
    toast('Your session has ended. Please sign in again.');
    navigate('/signin', { replace: true });
    return true;
  }
  toast(err?.message || 'Something went wrong.');
  console.warn('[reel]', err);
  return false;
}

function toast(message, kind = 'error') {
  const el = h('div', { class: `toast toast-${kind}`, 'data-testid': 'toast', role: kind === 'error' ? 'alert' : 'status' }, message);
  $('#toasts').append(el);
  setTimeout(() => { el.classList.add('leaving'); setTimeout(() => el.remove(), 300); }, 5000);
}

// ---------------------------------------------------------------------------
// 3. App state
// ---------------------------------------------------------------------------

const PROFILE_KEY = 'reel.profile';

const state = {
  me: null,         // {account, plan} from /api/v1/me, null when signed out
  profiles: null,   // cached list; null = not loaded yet
  genres: null,     // cached genre list for names + search chips
  profileId: safeStorage('get', PROFILE_KEY),
};

/** localStorage can throw (private mode, disabled storage); the app still works without it. */
function safeStorage(op, key, value) {
  try {
    if (op === 'get') return localStorage.getItem(key);
    if (op === 'set') localStorage.setItem(key, value);
    if (op === 'remove') localStorage.removeItem(key);
  } catch { /* ignore */ }
  return null;
}

function setProfile(id) {
  state.profileId = id;
  if (id) safeStorage('set', PROFILE_KEY, id); else safeStorage('remove', PROFILE_KEY);
  renderAccountMenu();
}

const currentProfile = () => state.profiles?.find((p) => p.id === state.profileId) || null;

/** Operators (admin role) get the Fleet page. The server checks again on every call. */
const isAdmin = () => state.me?.account?.role === 'admin';

async function loadProfiles(signal) {
  const data = await api('GET', '/api/v1/profiles', undefined, { signal });
  state.profiles = data?.profiles || [];
  renderAccountMenu();
  return state.profiles;
}

async function loadGenres() {
  if (state.genres) return state.genres;
  try {
    state.genres = (await api('GET', '/api/v1/genres'))?.genres || [];
  } catch { state.genres = null; }
  return state.genres || [];
}

// ---------------------------------------------------------------------------
// 4. Router (History API)
// ---------------------------------------------------------------------------

// auth: needs a signed-in account; profile: also needs a chosen profile;
// guest: only for signed-out visitors; chrome: which header variant to show.
const ROUTES = [
  { name: 'home', re: /^\/$/, auth: true, profile: true, chrome: 'full', view: viewHome },
  { name: 'signin', re: /^\/signin\/?$/, guest: true, chrome: 'auth', view: (ctx) => viewAuth(ctx, 'signin') },
  { name: 'signup', re: /^\/signup\/?$/, guest: true, chrome: 'auth', view: (ctx) => viewAuth(ctx, 'signup') },
  { name: 'profiles', re: /^\/profiles\/?$/, auth: true, chrome: 'auth', view: viewProfiles },
  { name: 'title', re: /^\/title\/([^/]+)\/?$/, auth: true, profile: true, chrome: 'full', view: viewTitle },
  { name: 'watch', re: /^\/watch\/([^/]+)\/?$/, auth: true, profile: true, chrome: 'none', view: viewWatch },
  { name: 'search', re: /^\/search\/?$/, auth: true, profile: true, chrome: 'full', view: viewSearch },
  // Operators may have no viewing profile at all, so the fleet and ops pages need none.
  { name: 'fleet', re: /^\/fleet\/?$/, auth: true, chrome: 'full', view: viewFleet },
  { name: 'ops', re: /^\/ops\/?$/, auth: true, chrome: 'full', view: viewOps },
];

let current = null; // {route, controller, cleanups[], update?}
let renderSeq = 0;

/** Navigate inside the app. History entries carry an index so the player's
 *  back button knows whether "back" stays inside Reel. */
function navigate(path, { replace = false, keepFocus = false } = {}) {
  const idx = (history.state?.idx ?? 0) + (replace ? 0 : 1);
  history[replace ? 'replaceState' : 'pushState']({ idx }, '', path);
  render({ keepFocus });
}

async function render({ keepFocus = false } = {}) {
  const seq = ++renderSeq;
  const url = new URL(location.href);
  let params = [];
  const route = ROUTES.find((r) => { const m = url.pathname.match(r.re); if (m) params = m.slice(1).map(decodeURIComponent); return m; });

  // Same route again (e.g. typing in search): let the view update in place.
  if (route && current?.route === route && current.update && route.name === 'search') {
    current.update(url.searchParams);
    return;
  }

  teardown();
  document.body.dataset.chrome = route?.chrome || 'full';
  closeAccountMenu();
  if (!route) return viewNotFound();

  // Guards: decide before painting so the user never sees a wrong page flash.
  if (route.guest && state.me) return navigate('/', { replace: true });
  if (route.auth && !state.me) return navigate('/signin', { replace: true });
  if (route.profile) {
    if (!state.profiles) {
      try { await loadProfiles(); } catch (err) { if (seq === renderSeq) handleError(err); return; }
      if (seq !== renderSeq) return;
    }
    if (!currentProfile()) return navigate('/profiles', { replace: true });
  }

  const controller = new AbortController();
  const cleanups = [];
  current = { route, controller, cleanups, update: null };
  const ctx = {
    params,
    query: url.searchParams,
    signal: controller.signal,
    alive: () => !controller.signal.aborted,
    onCleanup: (fn) => cleanups.push(fn),
    setUpdate: (fn) => { current.update = fn; },
  };
  syncHeader(route, url);
  window.scrollTo(0, 0);
  if (!keepFocus && history.state?.idx) app.focus({ preventScroll: true });
  try {
    await route.view(ctx);
  } catch (err) {
    if (ctx.alive()) handleError(err);
  }
}

/** Stop whatever the previous view was doing (fetches, timers, the player). */
function teardown() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.cleanups.reverse()) {
    try { fn(); } catch (err) { console.warn('[reel] cleanup failed', err); }
  }
  current = null;
}

/** Same-origin <a> clicks become pushState navigations. */
function interceptLinks() {
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/media/')) return;
    if (url.hash && url.pathname === location.pathname) return; // skip-link etc.
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => render());
  // Coming back from the back/forward cache: the old view (e.g. a player whose
  // stream was stopped on pagehide) is stale, so draw it afresh.
  window.addEventListener('pageshow', (e) => { if (e.persisted) render(); });
}

function viewNotFound() {
  setTitle('Not found');
  app.replaceChildren(h('section', { class: 'empty-page' },
    h('h1', {}, 'Lost your way?'),
    h('p', {}, 'Sorry, we can’t find that page. There’s plenty to watch on the home page.'),
    h('a', { class: 'btn btn-primary', href: '/' }, 'Reel Home')));
}

// ---------------------------------------------------------------------------
// 5. Header: search box + account menu
// ---------------------------------------------------------------------------

const header = $('.site-header');
const searchInput = $('[data-testid="search-input"]');

function setupHeader() {
  // Debounced so we search once the user pauses, not on every keystroke.
  const runSearch = debounce(() => {
    const q = searchInput.value.trim();
    const onSearch = location.pathname === '/search';
    if (!q && !onSearch) return;
    const genre = onSearch ? new URLSearchParams(location.search).get('genre') : null;
    const qs = new URLSearchParams();
    if (q) qs.set('q', q);
    if (genre) qs.set('genre', genre);
    if (!q && !genre) return navigate('/', { replace: true, keepFocus: true });
    navigate(`/search?${qs}`, { replace: onSearch, keepFocus: true });
  }, 300);
  searchInput.addEventListener('input', runSearch);
  $('.search').addEventListener('submit', (e) => { e.preventDefault(); runSearch(); });
  searchInput.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { searchInput.value = ''; searchInput.blur(); header.classList.remove('search-open'); }
  });

  // On phones the search box collapses to an icon; the icon opens it.
  const toggle = $('.search-toggle');
  toggle.addEventListener('click', () => {
    const open = !header.classList.contains('search-open');
    header.classList.toggle('search-open', open);
    toggle.setAttribute('aria-expanded', String(open));
    if (open) searchInput.focus();
  });
  searchInput.addEventListener('blur', () => {
    if (!searchInput.value) { header.classList.remove('search-open'); toggle.setAttribute('aria-expanded', 'false'); }
  });

  const btn = $('.account-btn');
  btn.addEventListener('click', (e) => {
    e.stopPropagation();
    const menu = $('.account-menu');
    if (menu.hidden) openAccountMenu(); else closeAccountMenu();
  });
  document.addEventListener('click', (e) => { if (!e.target.closest('.account')) closeAccountMenu(); });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeAccountMenu(); });

  // Solid header once the page scrolls; transparent over the hero at the top.
  const onScroll = () => header.classList.toggle('scrolled', window.scrollY > 10);
  window.addEventListener('scroll', onScroll, { passive: true });
  onScroll();
}

function syncHeader(route, url) {
  for (const a of $$('.main-nav a')) {
    const active = (a.dataset.nav === 'home' && route.name === 'home') || (a.dataset.nav === 'browse' && route.name === 'search')
      || (a.dataset.nav === 'fleet' && route.name === 'fleet') || (a.dataset.nav === 'ops' && route.name === 'ops');
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  // Keep the box in sync with the URL, but never fight the user mid-typing.
  if (document.activeElement !== searchInput) {
    searchInput.value = route.name === 'search' ? url.searchParams.get('q') || '' : '';
    header.classList.toggle('search-open', !!searchInput.value);
  }
  renderAccountMenu();
}

function avatar(profile, size = 'sm') {
  const name = profile?.name || '?';
  return h('span', {
    class: `avatar avatar-${size}`,
    style: `--avatar:${profile?.avatar_color || `hsl(${hueOf(name)} 60% 45%)`}`,
    'aria-hidden': 'true',
  }, name.trim().charAt(0).toUpperCase() || '?');
}

function renderAccountMenu() {
  const btn = $('.account-btn');
  const menu = $('.account-menu');
  if (!btn) return;
  const me = currentProfile();
  // Before a profile is picked, show a neutral account badge instead of a "?".
  const badge = me ? avatar(me) : avatar({ name: state.me?.account?.email || '?', avatar_color: '#4a4a57' });
  btn.replaceChildren(badge, h('span', { class: 'caret', 'aria-hidden': 'true' }));
  btn.hidden = !state.me;
  const fleetLink = $('[data-testid="nav-fleet"]');
  if (fleetLink) fleetLink.hidden = !isAdmin();
  const opsLink = $('[data-testid="nav-ops"]');
  if (opsLink) opsLink.hidden = !isAdmin();

  const others = (state.profiles || []).filter((p) => p.id !== state.profileId);
  const plan = state.me?.plan;
  fill(menu,
    ...others.map((p) => h('button', {
      type: 'button', role: 'menuitem', class: 'menu-item',
      onclick: () => { setProfile(p.id); navigate('/'); },
    }, avatar(p), p.name)),
    h('a', { role: 'menuitem', class: 'menu-item', href: '/profiles' }, 'Manage profiles'),
    isAdmin() ? h('a', { role: 'menuitem', class: 'menu-item', href: '/fleet', 'data-testid': 'menu-fleet' }, 'Fleet') : null,
    isAdmin() ? h('a', { role: 'menuitem', class: 'menu-item', href: '/ops', 'data-testid': 'menu-ops' }, 'Ops') : null,
    h('hr'),
    state.me ? h('div', { class: 'menu-note' },
      h('div', {}, state.me.account?.email || ''),
      plan ? h('div', { class: 'muted' }, `${capitalize(plan.name)} plan · ${plan.max_streams} stream${plan.max_streams > 1 ? 's' : ''} · up to ${heightLabel(plan.max_height)}`) : null) : null,
    h('button', { type: 'button', role: 'menuitem', class: 'menu-item', 'data-testid': 'signout', onclick: signOut }, 'Sign out of Reel'),
  );
}

function openAccountMenu() {
  $('.account-menu').hidden = false;
  $('.account-btn').setAttribute('aria-expanded', 'true');
}

function closeAccountMenu() {
  const menu = $('.account-menu');
  if (menu && !menu.hidden) {
    menu.hidden = true;
    $('.account-btn').setAttribute('aria-expanded', 'false');
  }
}

async function signOut() {
  closeAccountMenu();
  try { await api('DELETE', '/api/v1/sessions/current'); } catch (err) { if (err.status !== 401) return handleError(err); }
  state.me = null;
  state.profiles = null;
  navigate('/signin', { replace: true });
}

const capitalize = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : '');
const heightLabel = (hgt) => (hgt >= 2160 ? '4K' : hgt ? `${hgt}p` : '');

// ---------------------------------------------------------------------------
// 6a. Views: sign in / sign up
// ---------------------------------------------------------------------------

const PLANS = [
  { id: 'basic', name: 'Basic', streams: '1 stream at a time', quality: '720p HD' },
  { id: 'standard', name: 'Standard', streams: '2 streams at a time', quality: '1080p Full HD' },
  { id: 'premium', name: 'Premium', streams: '4 streams at a time', quality: '4K Ultra HD' },
];

function viewAuth(ctx, mode) {
  const signup = mode === 'signup';
  setTitle(signup ? 'Create your account' : 'Sign in');
  const error = h('p', { class: 'form-error', 'data-testid': 'form-error', role: 'alert', hidden: true });
  const email = h('input', { id: 'email', name: 'email', type: 'email', required: true, autocomplete: 'email', 'data-testid': `${mode}-email`, placeholder: 'you@example.com' });
  const password = h('input', {
    id: 'password', name: 'password', type: 'password', required: true, minlength: signup ? 8 : null,
    autocomplete: signup ? 'new-password' : 'current-password', 'data-testid': `${mode}-password`,
    'aria-describedby': signup ? 'password-hint' : null,
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': `${mode}-submit` }, signup ? 'Create account' : 'Sign in');

  const plans = signup ? h('fieldset', { class: 'plans' },
    h('legend', {}, 'Choose your plan'),
    h('div', { class: 'plan-grid' }, PLANS.map((p) => h('label', { class: 'plan-card', 'data-testid': 'plan-option', 'data-plan': p.id },
      h('input', { type: 'radio', name: 'plan', value: p.id, checked: p.id === 'standard' }),
      h('span', { class: 'plan-name' }, p.name),
      h('span', { class: 'plan-detail' }, p.streams),
      h('span', { class: 'plan-detail' }, p.quality),
    )))) : null;

  const form = h('form', { class: 'auth-form', novalidate: true, 'data-testid': `${mode}-form` },
    h('h1', {}, signup ? 'Create your account' : 'Sign in'),
    error,
    h('label', { for: 'email' }, 'Email'), email,
    h('label', { for: 'password' }, 'Password'), password,
    signup ? h('p', { id: 'password-hint', class: 'hint' }, 'At least 8 characters.') : null,
    plans,
    submit,
    h('p', { class: 'switch' }, signup ? 'Already have an account? ' : 'New to Reel? ',
      h('a', { href: signup ? '/signin' : '/signup', 'data-testid': signup ? 'goto-signin' : 'goto-signup' }, signup ? 'Sign in' : 'Sign up now')),
  );

  const showError = (msg) => { error.textContent = msg; error.hidden = !msg; };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    // Validate locally first so common mistakes don't cost a round trip.
    if (!email.value.trim() || !email.checkValidity()) return showError('Please enter a valid email address.'), email.focus();
    if (signup && password.value.length < 8) return showError('Your password needs at least 8 characters.'), password.focus();
    if (!password.value) return showError('Please enter your password.'), password.focus();
    showError('');
    submit.disabled = true;
    submit.classList.add('busy');
    try {
      const body = { email: email.value.trim(), password: password.value };
      if (signup) body.plan = form.elements.plan.value || 'standard';
      await api('POST', signup ? '/api/v1/accounts' : '/api/v1/sessions', body);
      state.me = await api('GET', '/api/v1/me');
      state.profiles = null;
      navigate('/profiles', { replace: true });
    } catch (err) {
      if (isAbort(err)) return;
      showError(err.message || 'That didn’t work. Please try again.');
      submit.disabled = false;
      submit.classList.remove('busy');
    }
  });

  app.replaceChildren(h('section', { class: 'auth-page' }, form));
  // Autofocus on desktop only: on phones it would throw the keyboard over the page.
  if (matchMedia('(hover: hover)').matches) email.focus();
}

// ---------------------------------------------------------------------------
// 6b. View: profile picker ("Who's watching?")
// ---------------------------------------------------------------------------

async function viewProfiles(ctx) {
  setTitle('Who’s watching?');
  let managing = false;
  let adding = false;
  const page = h('section', { class: 'profiles-page', 'data-testid': 'profiles-page' });
  app.replaceChildren(page);
  page.append(h('h1', {}, 'Who’s watching?'), h('div', { class: 'profile-grid' },
    [0, 1].map(() => h('div', { class: 'profile-tile' }, h('span', { class: 'avatar avatar-lg skeleton' })))));

  await loadProfiles(ctx.signal);
  if (!ctx.alive()) return;

  const paint = () => {
    const list = state.profiles;
    const tiles = list.map((p) => h('div', { class: 'profile-tile' },
      h('button', {
        type: 'button', class: 'profile-btn', 'data-testid': 'profile', 'data-profile-id': p.id,
        'aria-label': managing ? `Delete profile ${p.name}` : `Watch as ${p.name}`,
        onclick: () => (managing ? removeProfile(p) : choose(p)),
      }, avatar(p, 'lg'), managing ? h('span', { class: 'tile-overlay', 'data-testid': 'profile-delete' }, icon('trash')) : null),
      h('span', { class: 'profile-name' }, p.name), p.kids ? h('span', { class: 'kids-badge' }, 'Kids') : null));
    if (list.length < 5 && !managing) {
      tiles.push(h('div', { class: 'profile-tile' },
        h('button', { type: 'button', class: 'profile-btn add', 'data-testid': 'add-profile', 'aria-label': 'Add profile', onclick: () => { adding = true; paint(); } },
          h('span', { class: 'avatar avatar-lg avatar-add' }, icon('plus'))),
        h('span', { class: 'profile-name' }, 'Add profile')));
    }
    fill(page,
      h('h1', {}, managing ? 'Manage profiles' : 'Who’s watching?'),
      h('div', { class: 'profile-grid' }, tiles),
      adding ? addForm() : null,
      h('button', { type: 'button', class: 'btn btn-outline', 'data-testid': 'manage-profiles', onclick: () => { managing = !managing; adding = false; paint(); } },
        managing ? 'Done' : 'Manage profiles'),
    );
  };

  const choose = (p) => { setProfile(p.id); navigate('/'); };

  const addForm = () => {
    const name = h('input', { id: 'profile-name', type: 'text', maxlength: 40, required: true, 'data-testid': 'profile-name', autocomplete: 'off' });
    const kids = h('input', { id: 'profile-kids', type: 'checkbox', 'data-testid': 'profile-kids' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'profile-save' }, 'Save');
    // Genres to start from, so a new profile's home page is already its own.
    const picks = h('div', { class: 'genre-picks', 'data-testid': 'genre-picks', role: 'group', 'aria-label': 'Genres you like' });
    api('GET', '/api/v1/genres').then((data) => {
      for (const g of data?.genres || []) {
        picks.append(h('label', { class: 'chip' },
          h('input', { type: 'checkbox', value: g.slug, 'data-testid': 'genre-pick' }), h('span', {}, g.name)));
      }
    }).catch(() => {});
    const form = h('form', { class: 'profile-form', 'data-testid': 'profile-form' },
      h('h2', {}, 'Add a profile'),
      h('label', { for: 'profile-name' }, 'Name'), name,
      h('label', { class: 'check' }, kids, h('span', {}, 'Kids profile — only titles rated for children')),
      h('span', { class: 'form-label' }, 'Genres you like (optional)'), picks,
      h('div', { class: 'form-actions' }, save,
        h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => { adding = false; paint(); } }, 'Cancel')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!name.value.trim()) return toast('Please give the profile a name.'), name.focus();
      save.disabled = true;
      try {
        const genres = [...picks.querySelectorAll('input:checked')].map((i) => i.value);
        await api('POST', '/api/v1/profiles', { name: name.value.trim(), kids: kids.checked, genres });
        await loadProfiles();
        adding = false;
        paint();
      } catch (err) {
        save.disabled = false;
        handleError(err);
      }
    });
    queueMicrotask(() => name.focus());
    return form;
  };

  const removeProfile = async (p) => {
    if (!(await confirmDialog(`Delete the profile “${p.name}”? Its watch history goes with it.`, 'Delete profile'))) return;
    try {
      await api('DELETE', `/api/v1/profiles/${encodeURIComponent(p.id)}`);
      if (p.id === state.profileId) setProfile(null);
      await loadProfiles();
      paint();
    } catch (err) { handleError(err); }
  };

  paint();
}

/** Small modal confirm built on <dialog> (focus trap + Escape come for free). */
function confirmDialog(message, okLabel) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog', 'data-testid': 'confirm-dialog' },
      h('form', { method: 'dialog' },
        h('p', {}, message),
        h('div', { class: 'form-actions' },
          h('button', { value: 'ok', class: 'btn btn-primary', 'data-testid': 'confirm-ok' }, okLabel),
          h('button', { value: 'cancel', class: 'btn btn-ghost' }, 'Cancel'))));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok'); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// ---------------------------------------------------------------------------
// 6c. View: home (hero + rows)
// ---------------------------------------------------------------------------

async function viewHome(ctx) {
  setTitle('Home');
  app.replaceChildren(h('div', { class: 'home' }, skeletonHero(), skeletonRow(), skeletonRow(), skeletonRow()));
  loadGenres(); // warm the cache for readable genre names; no need to wait

  const data = await api('GET', `/api/v1/home?profile=${encodeURIComponent(state.profileId)}`, undefined, { signal: ctx.signal });
  if (!ctx.alive()) return;
  const rows = (data?.rows || []).filter((r) => r.items?.length);
  if (!rows.length) {
    app.replaceChildren(h('section', { class: 'empty-page' }, h('h1', {}, 'Nothing to watch yet'),
      h('p', {}, 'Your library is empty. Once titles are added they will show up here.')));
    return;
  }
  const heroItem = rows.find((r) => r.id !== 'continue-watching')?.items[0];
  app.replaceChildren(h('div', { class: 'home' },
    heroItem ? hero(heroItem, ctx) : null,
    h('div', { class: 'rows' }, rows.map(renderRow))));
}

function hero(item, ctx) {
  const synopsis = h('p', { class: 'hero-synopsis' });
  const play = h('a', { class: 'btn btn-primary btn-lg', href: item.kind === 'movie' ? `/watch/${encodeURIComponent(item.id)}` : titleHref(item), 'data-testid': 'hero-play' }, icon('play'), 'Play');
  // Home items carry no synopsis; fetch the title lazily so the hero can tell
  // the story and so "Play" on a series starts the right episode.
  api('GET', `/api/v1/titles/${encodeURIComponent(item.id)}?profile=${encodeURIComponent(state.profileId)}`, undefined, { signal: ctx.signal })
    .then((t) => {
      synopsis.textContent = t?.synopsis || '';
      const target = playTarget(t);
      if (target) play.setAttribute('href', `/watch/${encodeURIComponent(target.id)}`);
    })
    .catch(() => { /* the hero still works without the synopsis */ });
  return h('section', { class: 'hero', 'data-testid': 'hero', style: `--hue:${hueOf(item.id)}` },
    h('img', { class: 'hero-art', src: item.backdrop || item.artwork, alt: '', decoding: 'async', fetchpriority: 'high', onerror: hideBrokenImage }),
    h('div', { class: 'hero-shade' }),
    h('div', { class: 'hero-body' },
      h('h1', { class: 'hero-title' }, item.name),
      metaLine(item),
      synopsis,
      h('div', { class: 'hero-actions' }, play,
        h('a', { class: 'btn btn-secondary btn-lg', href: titleHref(item), 'data-testid': 'hero-info' }, icon('info'), 'More info'))));
}

function hideBrokenImage(e) { e.target.classList.add('broken'); }

const titleHref = (item) => `/title/${encodeURIComponent(item.id)}`;

function renderRow(row) {
  const track = h('div', { class: 'row-track', role: 'list' });
  const continueRow = row.id === 'continue-watching';
  for (const item of row.items) track.append(h('div', { role: 'listitem', class: 'row-cell' }, card(item, { resume: continueRow })));
  const scroll = (dir) => track.scrollBy({ left: dir * track.clientWidth * 0.85, behavior: 'smooth' });
  return h('section', { class: 'row', 'data-testid': 'row', 'data-row-id': row.id, 'aria-label': row.title },
    h('h2', { class: 'row-title' }, row.title),
    h('div', { class: 'row-viewport' },
      h('button', { type: 'button', class: 'row-arrow prev', 'aria-label': `Scroll ${row.title} left`, tabindex: '-1', onclick: () => scroll(-1) }, icon('chevL')),
      track,
      h('button', { type: 'button', class: 'row-arrow next', 'aria-label': `Scroll ${row.title} right`, tabindex: '-1', onclick: () => scroll(1) }, icon('chevR'))));
}

/** A title card. Continue Watching cards jump straight back into the player
 *  (that's what the row is for); other cards open the title page. */
function card(item, { resume = false } = {}) {
  const progress = item.progress;
  const position = progress?.position_s ?? 0;
  const duration = progress?.duration_s || item.duration_s || 0;
  const href = resume && progress ? `/watch/${encodeURIComponent(progress.episode_id || item.id)}` : titleHref(item);
  const pct = duration ? Math.min(100, Math.max(0, (position / duration) * 100)) : 0;
  const left = duration ? Math.max(0, duration - position) : 0;
  return h('a', {
    class: 'card', href, 'data-testid': 'card', 'data-title-id': item.id, 'data-position': String(position),
    'aria-label': resume && progress ? `${item.name}, resume, ${formatDuration(left) || 'less than a minute'} left` : item.name,
    style: `--hue:${hueOf(item.id)}`,
  },
  h('div', { class: 'card-art' },
    h('span', { class: 'card-fallback', 'aria-hidden': 'true' }, item.name),
    item.artwork ? h('img', { src: item.artwork, alt: '', loading: 'lazy', decoding: 'async', onerror: hideBrokenImage }) : null,
    resume && progress ? h('span', { class: 'card-play', 'aria-hidden': 'true' }, icon('play')) : null,
    progress ? h('div', { class: 'progress', 'data-testid': 'card-progress', 'aria-hidden': 'true' }, h('span', { style: `width:${pct.toFixed(1)}%` })) : null),
  h('div', { class: 'card-info' },
    h('span', { class: 'card-name' }, item.name),
    h('span', { class: 'card-sub' }, resume && progress
      ? `${formatDuration(left) || '<1m'} left`
      : [item.year, item.maturity, item.kind === 'series' ? 'Series' : formatDuration(item.duration_s)].filter(Boolean).join(' · ')),
    // Why this title is here ("Because you watched …", "Trending in eu-west").
    !resume && item.evidence?.text && !/^(New from|Trending now$)/.test(item.evidence.text) && item.evidence.reason !== 'genre'
      ? h('span', { class: 'card-why', 'data-testid': 'card-why', title: item.evidence.text }, item.evidence.text)
      : null));
}

function skeletonHero() {
  return h('section', { class: 'hero hero-skeleton', 'aria-hidden': 'true' },
    h('div', { class: 'hero-body' }, h('div', { class: 'skeleton sk-title' }), h('div', { class: 'skeleton sk-line' }), h('div', { class: 'skeleton sk-line short' })));
}

function skeletonRow() {
  return h('section', { class: 'row', 'aria-hidden': 'true' },
    h('div', { class: 'skeleton sk-row-title' }),
    h('div', { class: 'row-track' }, Array.from({ length: 7 }, () => h('div', { class: 'row-cell' }, h('div', { class: 'card' }, h('div', { class: 'card-art skeleton' }))))));
}

// ---------------------------------------------------------------------------
// 6d. View: title details
// ---------------------------------------------------------------------------

/** What "Play" should start: the episode in progress, else the first episode;
 *  movies play themselves. Returns {id, episode?}. */
function playTarget(t) {
  if (!t) return null;
  if (t.kind !== 'series') return { id: t.id };
  const episodes = (t.seasons || []).flatMap((s) => (s.episodes || []).map((ep) => ({ ...ep, season: s.number })));
  const ep = episodes.find((e) => e.id === t.progress?.episode_id) || episodes[0];
  return ep ? { id: ep.id, episode: ep } : null;
}

function pickArtwork(artwork) {
  if (typeof artwork === 'string') return artwork;
  if (!Array.isArray(artwork) || !artwork.length) return null;
  // Variant names are server-defined; prefer wide ones for the backdrop.
  const prefer = ['backdrop', 'hero', 'banner', 'landscape', 'wide', 'poster'];
  const byName = (v) => artwork.find((a) => a.variant === v);
  return (prefer.map(byName).find(Boolean) || artwork[0]).url;
}

async function viewTitle(ctx) {
  const id = ctx.params[0];
  app.replaceChildren(h('div', { class: 'title-page' }, skeletonHero()));
  let t;
  try {
    t = await api('GET', `/api/v1/titles/${encodeURIComponent(id)}?profile=${encodeURIComponent(state.profileId)}`, undefined, { signal: ctx.signal });
  } catch (err) {
    if (!ctx.alive() || isAbort(err)) return;
    if (err.status === 404 || err.status === 403) return showPageMessage(err.status === 404 ? 'Title not found' : 'Not available on this profile', err.message);
    throw err;
  }
  if (!ctx.alive()) return;
  setTitle(t.name);
  await loadGenres();
  if (!ctx.alive()) return;

  const target = playTarget(t);
  const progress = t.progress;
  const resumeAt = progress?.position_s > 0 ? formatClock(progress.position_s) : null;
  const epLabel = target?.episode && progress?.episode_id ? `S${target.episode.season} E${target.episode.number} · ` : '';
  const play = target
    ? h('a', { class: 'btn btn-primary btn-lg', href: `/watch/${encodeURIComponent(target.id)}`, 'data-testid': 'play' },
      icon('play'), resumeAt ? `Resume ${epLabel}at ${resumeAt}`
        : target.episode ? `Play S${target.episode.season} E${target.episode.number}` : 'Play')
    : h('button', { type: 'button', class: 'btn btn-primary btn-lg', disabled: true, 'data-testid': 'play' }, 'Coming soon');
  const pct = progress?.duration_s ? Math.min(100, (progress.position_s / progress.duration_s) * 100) : 0;

  app.replaceChildren(h('article', { class: 'title-page', 'data-testid': 'title-page', 'data-title-id': t.id },
    h('section', { class: 'hero title-hero', style: `--hue:${hueOf(t.id)}` },
      h('img', { class: 'hero-art', src: pickArtwork(t.artwork) || '', alt: '', decoding: 'async', onerror: hideBrokenImage }),
      h('div', { class: 'hero-shade' }),
      h('div', { class: 'hero-body' },
        h('h1', { class: 'hero-title', 'data-testid': 'title-name' }, t.name),
        metaLine(t),
        pct ? h('div', { class: 'progress progress-inline', 'aria-label': `Watched ${Math.round(pct)}%` }, h('span', { style: `width:${pct.toFixed(1)}%` })) : null,
        h('div', { class: 'hero-actions' }, play),
        t.synopsis ? h('p', { class: 'title-synopsis', 'data-testid': 'synopsis' }, t.synopsis) : null)),
    t.kind === 'series' ? episodesSection(t) : null));
  if (isAdmin()) {
    let ladder = null;
    try {
      ladder = await api('GET', `/api/v1/admin/titles/${encodeURIComponent(t.id)}/ladder`, undefined, { signal: ctx.signal });
    } catch (err) {
      if (!ctx.alive() || isAbort(err)) return;
      if (err.status !== 404) throw err;
    }
    if (ladder && ctx.alive()) $('.title-page', app)?.append(ladderSection(ladder));
  }
}

/** Admin view of a title's encoding: the per-title ladder (each rung's
 *  resolution, bitrate and VMAF) and the hull it was picked from, drawn. */
function ladderSection(doc) {
  const rungs = doc.ladder || [];
  const table = h('table', { class: 'ladder-table', 'data-testid': 'ladder-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Rung'), h('th', {}, 'Resolution'), h('th', {}, 'Bitrate'), h('th', {}, 'VMAF'), h('th', {}, 'CRF'))),
    h('tbody', {}, rungs.map((r) => h('tr', { 'data-testid': 'ladder-rung' },
      h('td', {}, r.name), h('td', {}, `${r.width}×${r.height}`), h('td', {}, `${Math.round(r.kbps).toLocaleString()} kb/s`),
      h('td', {}, r.vmaf.toFixed(2)), h('td', {}, crfLabel(r))))));
  const fixed = doc.fixed;
  const summary = fixed
    ? h('p', { class: 'muted', 'data-testid': 'ladder-savings' },
      `Against the fixed ladder at equal VMAF: ${(fixed.savings * 100).toFixed(1)}% ${fixed.savings >= 0 ? 'fewer' : 'more'} bits.`)
    : h('p', { class: 'muted' }, 'Run reel media ladder --compare-fixed to compare with a fixed ladder.');
  return h('section', { class: 'ladder', 'data-testid': 'ladder' },
    h('h2', {}, 'Encoding ladder'),
    h('p', { class: 'muted' }, `${doc.width}×${doc.height} source, ${doc.chunks} chunks, ${doc.candidates?.length || 0} candidate encodes scored with VMAF.`),
    hullChart(doc), table, summary);
}

/** A rung's x264 CRF, or the range of its chunks' CRFs (per-shot). */
function crfLabel(r) {
  const c = r.shot_crfs || [];
  const lo = Math.min(...c), hi = Math.max(...c);
  return c.length && lo !== hi ? `${lo}–${hi} per shot` : String(r.crf);
}

/** VMAF against bitrate: every constant-CRF candidate (dots, coloured by
 *  resolution), the convex hull of per-shot mixes (line), the chosen rungs (rings) and the fixed ladder (squares). */
function hullChart(doc) {
  const W = 640, H = 300, L = 48, R = 12, T = 12, B = 36;
  const pts = [...(doc.candidates || []), ...((doc.fixed?.rungs || []).map((r) => r.fixed))];
  const maxK = Math.max(1, ...pts.map((p) => p.kbps));
  const x = (k) => L + (k / maxK) * (W - L - R);
  const y = (v) => T + (1 - Math.max(0, Math.min(100, v)) / 100) * (H - T - B);
  const svg = svgEl('svg', { class: 'hull-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'VMAF against bitrate', 'data-testid': 'hull-chart' });
  for (const v of [0, 20, 40, 60, 80, 100]) {
    svg.append(svgEl('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    const label = svgEl('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }); label.textContent = String(v); svg.append(label);
  }
  for (let i = 0; i <= 4; i++) {
    const k = (maxK * i) / 4;
    const label = svgEl('text', { x: x(k), y: H - B + 16, 'text-anchor': 'middle', class: 'axis' }); label.textContent = `${Math.round(k)}`; svg.append(label);
  }
  const xl = svgEl('text', { x: (W + L) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis' }); xl.textContent = 'kb/s'; svg.append(xl);
  const heights = [...new Set((doc.candidates || []).map((p) => p.height))].sort((a, b) => a - b);
  for (const p of doc.candidates || []) {
    const hue = heightHue(heights, p.height);
    const c = svgEl('circle', { cx: x(p.kbps), cy: y(p.vmaf), r: 3, class: 'cand', style: `fill:hsl(${hue} 60% 60%)` });
    const tip = svgEl('title'); tip.textContent = `${p.width}×${p.height} crf ${p.crf}: ${Math.round(p.kbps)} kb/s, VMAF ${p.vmaf.toFixed(2)}`; c.append(tip);
    svg.append(c);
  }
  svg.append(svgEl('polyline', { class: 'hull', fill: 'none', points: (doc.hull || []).map((p) => `${x(p.kbps)},${y(p.vmaf)}`).join(' ') }));
  for (const r of doc.fixed?.rungs || []) {
    const s = svgEl('rect', { x: x(r.fixed.kbps) - 4, y: y(r.fixed.vmaf) - 4, width: 8, height: 8, class: 'fixed' });
    const tip = svgEl('title'); tip.textContent = `fixed ${r.fixed.width}×${r.fixed.height} at ${Math.round(r.fixed.kbps)} kb/s: VMAF ${r.fixed.vmaf.toFixed(2)}`; s.append(tip);
    svg.append(s);
  }
  for (const r of doc.ladder || []) {
    const c = svgEl('circle', { cx: x(r.kbps), cy: y(r.vmaf), r: 7, class: 'rung', 'data-testid': 'hull-rung' });
    const tip = svgEl('title'); tip.textContent = `${r.name}: ${Math.round(r.kbps)} kb/s, VMAF ${r.vmaf.toFixed(2)}`; c.append(tip);
    svg.append(c);
  }
  const legend = h('span', { class: 'hull-legend' }, heights.map((ht) => h('span', { style: `color:hsl(${heightHue(heights, ht)} 60% 60%)` }, `● ${ht}p `)));
  return h('figure', { class: 'hull-figure' }, svg,
    h('figcaption', { class: 'muted' }, legend, ' Dots: candidate encodes, one CRF throughout. Line: convex hull of per-shot mixes (each chunk at its own CRF). Rings: chosen rungs. Squares: fixed ladder.'));
}

/** Resolutions get hues away from the hull's red. */
function heightHue(heights, height) {
  return 160 + (heights.indexOf(height) * 170) / Math.max(1, heights.length - 1 || 1);
}

function episodesSection(t) {
  const seasons = (t.seasons || []).filter((s) => s.episodes?.length);
  if (!seasons.length) return h('section', { class: 'episodes' }, h('p', { class: 'muted' }, 'Episodes are on their way.'));
  const list = h('ol', { class: 'episode-list', 'data-testid': 'episodes' });
  const startSeason = seasons.find((s) => s.episodes.some((e) => e.id === t.progress?.episode_id)) || seasons[0];
  const show = (number) => {
    const season = seasons.find((s) => String(s.number) === String(number)) || seasons[0];
    list.replaceChildren(...season.episodes.map((ep) => h('li', {},
      h('a', { class: 'episode', href: `/watch/${encodeURIComponent(ep.id)}`, 'data-testid': 'episode', 'data-episode-id': ep.id },
        h('span', { class: 'ep-num' }, String(ep.number)),
        h('span', { class: 'ep-thumb', style: `--hue:${hueOf(ep.id)}` }, icon('play')),
        h('span', { class: 'ep-body' },
          h('span', { class: 'ep-head' }, h('span', { class: 'ep-name' }, ep.name), h('span', { class: 'muted' }, formatDuration(ep.duration_s))),
          ep.synopsis ? h('span', { class: 'ep-synopsis' }, ep.synopsis) : null,
          ep.id === t.progress?.episode_id ? h('span', { class: 'ep-resume' }, `Resume at ${formatClock(t.progress.position_s)}`) : null)))));
  };
  const picker = seasons.length > 1
    ? h('select', { class: 'season-select', 'aria-label': 'Season', 'data-testid': 'season-select', onchange: (e) => show(e.target.value) },
      seasons.map((s) => h('option', { value: s.number, selected: s === startSeason }, `Season ${s.number}`)))
    : h('span', { class: 'muted' }, `Season ${seasons[0].number}`);
  show(startSeason.number);
  return h('section', { class: 'episodes' }, h('div', { class: 'episodes-head' }, h('h2', {}, 'Episodes'), picker), list);
}

function showPageMessage(title, message) {
  setTitle(title);
  app.replaceChildren(h('section', { class: 'empty-page', 'data-testid': 'page-message' },
    h('h1', {}, title), h('p', {}, message), h('a', { class: 'btn btn-primary', href: '/' }, 'Back to Home')));
}

// ---------------------------------------------------------------------------
// 6e. View: search + genre browse
// ---------------------------------------------------------------------------

async function viewSearch(ctx) {
  const heading = h('h1', { class: 'search-heading' });
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Genres' });
  const grid = h('div', { class: 'grid', 'data-testid': 'search-results', 'aria-live': 'polite' });
  app.replaceChildren(h('section', { class: 'search-page' }, heading, chips, grid));
  let fetchCtl = null;

  const update = async (query) => {
    const q = (query.get('q') || '').trim();
    const genre = query.get('genre') || '';
    setTitle(q ? `Search: ${q}` : 'Browse');
    heading.textContent = q ? `Results for “${q}”` : genre ? genreName(genre) : 'Browse';
    for (const c of chips.children) c.setAttribute('aria-pressed', String(c.dataset.slug === genre));
    fetchCtl?.abort();
    if (!q && !genre) {
      grid.replaceChildren(h('p', { class: 'muted grid-note' }, 'Search for a title, or pick a genre above.'));
      return;
    }
    fetchCtl = new AbortController();
    const signal = fetchCtl.signal;
    ctx.signal.addEventListener('abort', () => fetchCtl?.abort(), { once: true });
    grid.replaceChildren(...Array.from({ length: 8 }, () => h('div', { class: 'card' }, h('div', { class: 'card-art skeleton' }))));
    const qs = new URLSearchParams({ profile: state.profileId });
    if (q) qs.set('q', q);
    if (genre) qs.set('genre', genre);
    try {
      const data = await api('GET', `/api/v1/search?${qs}`, undefined, { signal });
      if (signal.aborted) return;
      const results = data?.results || [];
      grid.replaceChildren(...(results.length
        ? results.map((item) => card(item))
        : [h('p', { class: 'muted grid-note', 'data-testid': 'no-results' }, q ? `No matches for “${q}”. Try a different title or genre.` : 'Nothing in this genre yet.')]));
    } catch (err) {
      if (isAbort(err)) return;
      grid.replaceChildren();
      handleError(err);
    }
  };

  ctx.setUpdate(update);
  update(ctx.query);

  // Genre chips toggle the filter while keeping the typed query.
  const genres = await loadGenres();
  if (!ctx.alive()) return;
  chips.replaceChildren(...genres.map((g) => h('button', {
    type: 'button', class: 'chip', 'data-testid': 'genre-chip', 'data-slug': g.slug,
    'aria-pressed': String(new URLSearchParams(location.search).get('genre') === g.slug),
    onclick: () => {
      const qs = new URLSearchParams(location.search);
      if (qs.get('genre') === g.slug) qs.delete('genre'); else qs.set('genre', g.slug);
      navigate(`/search${qs.toString() ? `?${qs}` : ''}`, { replace: true, keepFocus: true });
    },
  }, g.name)));
}

// ---------------------------------------------------------------------------
// 6f. View: fleet (operators only)
// ---------------------------------------------------------------------------

const FLEET_POLL_MS = 3000;
const SPARK_POINTS = 40;
const APPLIANCE_STATES = ['provisioning', 'active', 'draining', 'maintenance', 'failed'];
// States that take an appliance out of steering ask first: a slip of the
// select would otherwise move every viewer on it elsewhere.
const RISKY_STATES = {
  failed: (id) => `Mark ${id} as failed? Steering stops sending viewers to it at once.`,
  maintenance: (id) => `Put ${id} into maintenance? Steering stops sending viewers to it until it is active again.`,
};

/** 1536 → "1.5 KiB"; binary units, as disks and caches count them. */
function formatBytes(n) {
  let v = Number(n);
  if (!Number.isFinite(v) || v < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i && v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

const formatCount = (n) => (Number.isFinite(Number(n)) ? new Intl.NumberFormat('en-US').format(Number(n)) : '—');
/** 1234567 → "1.2M": fits a card; the exact count goes in a title. */
const formatCompact = (n) => (Number.isFinite(Number(n))
  ? new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(Number(n)) : '—');
const formatPct = (f) => `${Math.round(Math.min(1, Math.max(0, f)) * 100)}%`;

/** Milliseconds since the epoch → "just now", "42s ago", "5m ago", "3h ago", "2d ago". */
function timeAgo(ms) {
  const s = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

const absoluteTime = (ms) => new Date(Number(ms)).toLocaleString();

/** A <time> showing "5m ago" with the full date on hover; refreshRelativeTimes keeps it current. */
function relTime(ms) {
  if (!Number.isFinite(Number(ms))) return h('span', { class: 'muted' }, '—');
  return h('time', { class: 'rel-time', datetime: new Date(Number(ms)).toISOString(), title: absoluteTime(ms), 'data-ms': ms }, timeAgo(ms));
}

function refreshRelativeTimes(root) {
  for (const t of $$('time.rel-time', root)) t.textContent = timeAgo(t.dataset.ms);
}

/** SVG needs its own namespace; h() makes HTML elements only. */
function svgEl(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/** Requests/s over time as a tiny line. draw(points) redraws in place. */
function sparkline() {
  const W = 120;
  const H = 28;
  const area = svgEl('polygon', { class: 'spark-area' });
  const line = svgEl('polyline', { class: 'spark-line', fill: 'none', 'vector-effect': 'non-scaling-stroke' });
  const el = svgEl('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  el.append(area, line);
  const draw = (points) => {
    if (points.length < 2) { line.setAttribute('points', ''); area.setAttribute('points', ''); return; }
    const max = Math.max(1, ...points);
    const step = W / (SPARK_POINTS - 1);
    // Newest point on the right edge; the line grows in from the right.
    const xy = points.map((p, i) => [W - (points.length - 1 - i) * step, H - 1 - (p / max) * (H - 3)]);
    const pts = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    line.setAttribute('points', pts);
    area.setAttribute('points', `${xy[0][0].toFixed(1)},${H} ${pts} ${W},${H}`);
  };
  return { el, draw };
}

/** A labelled horizontal bar. set(fraction, text, level) updates it in place. */
function meterBar(label) {
  const fillEl = h('span', { class: 'meter-fill' });
  const value = h('span', { class: 'meter-value' }, '—');
  const el = h('div', { class: 'meter' },
    h('span', { class: 'meter-label' }, label),
    h('span', { class: 'meter-track', 'aria-hidden': 'true' }, fillEl),
    value);
  const set = (fraction, text, level = '') => {
    const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
    fillEl.style.width = `${(f * 100).toFixed(1)}%`;
    el.dataset.level = level;
    value.textContent = text;
  };
  return { el, set };
}

const usageLevel = (f) => (f >= 0.9 ? 'crit' : f >= 0.7 ? 'warn' : '');

/** "2 × disk — 3.84 TB NVMe · 4 TiB". Capacity may come as bytes or as text. */
function partLine(p) {
  const cap = typeof p.capacity === 'number' ? formatBytes(p.capacity) : p.capacity || '';
  return h('li', {},
    h('strong', {}, `${p.quantity ?? 1} × ${p.kind || 'part'}`),
    p.description ? ` — ${p.description}` : '',
    cap ? h('span', { class: 'muted' }, ` · ${cap}`) : null);
}

/** before/after may arrive as JSON values or as JSON text; show them pretty either way. */
function prettyJson(value) {
  if (value == null) return null;
  if (typeof value === 'string') {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

async function viewFleet(ctx) {
  setTitle('Fleet');
  const status = h('span', { class: 'fleet-live', 'data-testid': 'fleet-live', role: 'status' }, 'Connecting…');
  const summary = h('p', { class: 'fleet-summary muted' });
  const overview = h('div', { class: 'fleet-overview', 'aria-live': 'off' },
    h('div', { class: 'fleet-grid' }, [0, 1, 2].map(() => h('div', { class: 'fleet-card skeleton fleet-card-skeleton' }))));
  const sitesBox = h('div', { class: 'fleet-table-wrap' });
  const modelsBox = h('div', { class: 'fleet-table-wrap' });
  const auditBox = h('div', { class: 'audit-list' });
  const section = (id, title, testid, ...body) => h('section', { class: 'fleet-section', id, 'data-testid': testid }, h('h2', {}, title), body);
  const page = h('section', { class: 'fleet-page', 'data-testid': 'fleet-page' },
    h('div', { class: 'fleet-head' },
      h('div', {}, h('h1', {}, 'Fleet'), summary),
      status),
    h('nav', { class: 'fleet-toc', 'aria-label': 'Fleet sections' },
      h('a', { href: '#fleet-health' }, 'Health'),
      h('a', { href: '#fleet-sites' }, 'Sites'),
      h('a', { href: '#fleet-models' }, 'Models'),
      h('a', { href: '#fleet-audit' }, 'Audit trail')),
    section('fleet-health', 'Health', null, overview),
    section('fleet-sites', 'Sites', 'fleet-sites', sitesBox),
    section('fleet-models', 'Models', 'fleet-models', modelsBox),
    section('fleet-audit', 'Audit trail', 'fleet-audit', h('p', { class: 'muted fleet-note' }, 'Latest 50 changes, newest first. Open an entry to see what changed.'), auditBox));
  app.replaceChildren(page);

  let timer = null; // next poll
  const get = (path) => api('GET', path, undefined, { signal: ctx.signal });
  const [appliancesRes, sitesRes, modelsRes, auditRes] = await Promise.allSettled([
    get('/api/v1/fleet/appliances'),
    get('/api/v1/fleet/sites'),
    get('/api/v1/fleet/models'),
    get('/api/v1/fleet/audit?limit=50'),
  ]);
  if (!ctx.alive()) return;
  const firstError = [appliancesRes, sitesRes, modelsRes, auditRes].find((r) => r.status === 'rejected')?.reason;
  if (firstError && (isAbort(firstError) || firstError.status === 401)) return handleError(firstError);
  if (firstError?.status === 403) return operatorsOnly();
  if (appliancesRes.status === 'rejected') return showPageMessage('Fleet unavailable', appliancesRes.reason?.message || 'Please try again.');

  let sites = sitesRes.status === 'fulfilled' ? sitesRes.value?.sites || [] : [];
  const models = modelsRes.status === 'fulfilled' ? modelsRes.value?.models || [] : [];
  const failedNote = (what, err) => h('p', { class: 'muted fleet-note' }, `Couldn’t load ${what}: ${err?.message || 'unknown error'}`);
  fill(sitesBox, sitesRes.status === 'fulfilled' ? sitesTable(sites) : failedNote('sites', sitesRes.reason));
  fill(modelsBox, modelsRes.status === 'fulfilled' ? modelsTable(models) : failedNote('models', modelsRes.reason));

  // ---- health overview ------------------------------------------------------
  const appliances = new Map(); // id → latest appliance JSON
  const cards = new Map();      // id → card (built once, updated in place so selects keep focus)
  const rates = new Map();      // id → {requests, at, points[]} for the sparklines
  let layoutKey = '';
  let lastOk = 0;

  const siteOf = (a) => sites.find((s) => s.id === a.site_id) || null;
  const modelName = (id) => models.find((m) => m.id === id)?.name || id || '—';

  // Requests/s from the counter's change between two reports, timed by the
  // reports themselves (a poll may see the same report twice). A restarted
  // appliance starts counting from zero again.
  const trackRate = (a) => {
    let r = rates.get(a.id);
    if (!r) rates.set(a.id, (r = { requests: null, at: null, points: [] }));
    const requests = Number(a.report?.requests);
    const at = Number(a.last_report_ms);
    const push = (v) => { r.points.push(v); if (r.points.length > SPARK_POINTS) r.points.shift(); };
    if (a.last_report_ms == null || !Number.isFinite(requests) || !Number.isFinite(at)) return r;
    if (r.at != null && at > r.at) {
      const delta = requests >= r.requests ? requests - r.requests : requests;
      push(delta / ((at - r.at) / 1000));
    } else if (r.at != null && !a.healthy) {
      push(0); // silent appliance: the line falls to the floor instead of freezing
    }
    if (r.at == null || at >= r.at) { r.requests = requests; r.at = at; }
    return r;
  };

  const buildCard = (id) => {
    const name = h('span', { class: 'fleet-card-id' }, id);
    const badge = h('span', { class: 'state-badge' });
    const healthText = h('span', { class: 'health-text' });
    const health = h('span', { class: 'health' }, h('span', { class: 'health-dot', 'aria-hidden': 'true' }), healthText);
    const sub = h('p', { class: 'fleet-card-sub muted' });
    const stat = (label) => {
      const dd = h('dd', {}, '—');
      return { dd, el: h('div', {}, h('dt', {}, label), dd) };
    };
    const stats = { requests: stat('Requests'), bytes: stat('Served'), errors: stat('Errors'), titles: stat('Titles') };
    const bars = { hit: meterBar('Hit ratio'), disk: meterBar('Disk'), load: meterBar('Load') };
    const spark = sparkline();
    const rate = h('span', { class: 'spark-rate' }, '—');
    const waiting = h('p', { class: 'fleet-waiting muted', hidden: true }, 'Waiting for the first report…');
    const select = h('select', { class: 'fleet-select', 'data-testid': 'fleet-state-select', 'aria-label': `State of ${id}` },
      APPLIANCE_STATES.map((s) => h('option', { value: s }, capitalize(s))));
    const configBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'fleet-config-button', onclick: () => openConfig(id, ctx) }, 'Config');
    const el = h('article', { class: 'fleet-card', 'data-testid': 'fleet-appliance', 'data-appliance-id': id, 'aria-label': `Appliance ${id}` },
      h('header', { class: 'fleet-card-head' }, name, badge, health),
      sub,
      waiting,
      h('dl', { class: 'fleet-stats' }, Object.values(stats).map((s) => s.el)),
      h('div', { class: 'fleet-meters' }, Object.values(bars).map((b) => b.el)),
      h('div', { class: 'fleet-spark', title: 'Requests per second, from the last reports' }, spark.el, rate),
      h('footer', { class: 'fleet-card-foot' },
        h('label', { class: 'fleet-select-wrap' }, h('span', { class: 'muted' }, 'State'), select),
        configBtn));

    let busy = false; // confirming or saving: polls leave the select alone
    select.addEventListener('change', async () => {
      const a = appliances.get(id);
      const next = select.value;
      if (!a || next === a.state || busy) return;
      busy = true;
      if (RISKY_STATES[next] && !(await confirmDialog(RISKY_STATES[next](id), `Set to ${next}`))) {
        busy = false;
        select.value = appliances.get(id)?.state || a.state;
        return;
      }
      if (!ctx.alive()) return;
      select.disabled = true;
      try {
        const updated = await api('PATCH', `/api/v1/fleet/appliances/${encodeURIComponent(id)}`, { state: next }, { signal: ctx.signal });
        if (!ctx.alive()) return;
        // The reply is the appliance; keep the health fields it may leave out.
        const merged = { ...appliances.get(id), ...(updated && typeof updated === 'object' ? updated : {}) };
        if (!merged.state) merged.state = next;
        if (!updated?.report || typeof updated.report !== 'object') merged.report = appliances.get(id)?.report;
        appliances.set(id, merged);
        busy = false;
        card.update(merged);
        toast(`${id} is now ${merged.state}.`, 'info');
        refreshAudit();
      } catch (err) {
        if (isAbort(err)) return;
        select.value = appliances.get(id)?.state || '';
        handleError(err);
      } finally {
        busy = false;
        select.disabled = false;
      }
    });

    const update = (a) => {
      const known = APPLIANCE_STATES.includes(a.state);
      const site = siteOf(a);
      const report = a.report && typeof a.report === 'object' ? a.report : {};
      const hasReport = Object.keys(report).length > 0;
      el.dataset.healthy = String(!!a.healthy);
      el.dataset.state = a.state || '';
      badge.className = `state-badge state-${known ? a.state : 'unknown'}`;
      badge.textContent = a.state || 'unknown';
      if (a.healthy) {
        healthText.textContent = 'healthy';
        health.title = a.last_report_ms ? `Last report ${absoluteTime(a.last_report_ms)}` : '';
      } else if (a.last_report_ms != null) {
        healthText.textContent = `no report for ${Math.max(0, Math.round((Date.now() - a.last_report_ms) / 1000))}s`;
        health.title = `Last report ${absoluteTime(a.last_report_ms)}`;
      } else {
        healthText.textContent = 'no report yet';
        health.title = '';
      }
      fill(sub,
        h('span', { title: 'Serial number' }, a.serial || '—'),
        h('span', { title: 'Site' }, site?.name || a.site_id || '—'),
        h('span', { title: `Model ${a.model || ''}` }, modelName(a.model)));
      waiting.hidden = hasReport;

      stats.requests.dd.textContent = hasReport ? formatCompact(report.requests) : '—';
      stats.requests.dd.title = hasReport ? formatCount(report.requests) : '';
      stats.bytes.dd.textContent = hasReport ? formatBytes(report.bytes_served) : '—';
      stats.bytes.dd.title = hasReport ? `${formatCount(report.bytes_served)} bytes` : '';
      stats.errors.dd.textContent = hasReport ? formatCompact(report.errors) : '—';
      stats.errors.dd.title = hasReport ? formatCount(report.errors) : '';
      stats.errors.dd.classList.toggle('bad', Number(report.errors) > 0);
      const titles = Array.isArray(report.titles) ? report.titles : [];
      stats.titles.dd.textContent = hasReport ? formatCount(titles.length) : '—';
      stats.titles.el.title = titles.length ? titles.slice(0, 30).join(', ') + (titles.length > 30 ? ` and ${titles.length - 30} more` : '') : '';

      const hit = Number(report.hit_ratio);
      bars.hit.set(hit, Number.isFinite(hit) ? formatPct(hit) : '—');
      const used = Number(report.disk_used);
      const cap = Number(report.disk_capacity);
      const diskF = cap > 0 ? used / cap : NaN;
      bars.disk.set(diskF, Number.isFinite(used) && cap > 0 ? `${formatBytes(used)} / ${formatBytes(cap)}` : '—', usageLevel(diskF));
      // load is requests/s as a share of what the appliance is rated for; it can pass 100%.
      const load = Number(report.load);
      bars.load.set(load, Number.isFinite(load) ? `${Math.round(load * 100)}%` : '—', usageLevel(load));

      const r = rates.get(id);
      spark.draw(r?.points || []);
      const latest = r?.points.at(-1);
      rate.textContent = latest != null ? `${latest < 10 ? latest.toFixed(1) : Math.round(latest)} req/s` : '— req/s';

      // Never yank the select from under the operator's hand.
      if (!busy && document.activeElement !== select) select.value = known ? a.state : '';
    };
    const card = { el, update };
    return card;
  };

  const renderOverview = () => {
    const list = [...appliances.values()];
    if (!list.length) {
      fill(overview, h('p', { class: 'muted fleet-note' }, 'No appliances yet. They appear here once they are registered.'));
      return;
    }
    // Region → site → appliances; appliances at an unknown site go last.
    const groups = new Map();
    for (const a of list) {
      const site = siteOf(a);
      const region = site?.region || 'Unassigned';
      if (!groups.has(region)) groups.set(region, new Map());
      const bySite = groups.get(region);
      const key = site?.id || a.site_id || '';
      if (!bySite.has(key)) bySite.set(key, { site, id: key, items: [] });
      bySite.get(key).items.push(a);
    }
    const byName = (x, y) => x.localeCompare(y, undefined, { numeric: true });
    const regions = [...groups.keys()].sort((x, y) => (x === 'Unassigned') - (y === 'Unassigned') || byName(x, y));
    fill(overview, regions.map((region) => h('section', { class: 'fleet-region', 'aria-label': `Region ${region}` },
      h('h3', { class: 'fleet-region-name' }, region),
      [...groups.get(region).values()]
        .sort((x, y) => byName(x.site?.name || x.id, y.site?.name || y.id))
        .map((g) => h('div', { class: 'fleet-site' },
          h('h4', { class: 'fleet-site-name' }, g.site?.name || g.id || 'Unknown site',
            g.site?.location ? h('span', { class: 'muted' }, ` · ${g.site.location}`) : null,
            h('span', { class: 'muted' }, ` · ${g.items.length} appliance${g.items.length === 1 ? '' : 's'}`)),
          h('div', { class: 'fleet-grid' }, g.items.sort((x, y) => byName(x.id, y.id)).map((a) => cards.get(a.id).el)))))));
  };

  const applyAppliances = (list) => {
    const seen = new Set();
    for (const a of list) {
      if (!a?.id) continue;
      seen.add(a.id);
      appliances.set(a.id, a);
      trackRate(a);
      if (!cards.has(a.id)) cards.set(a.id, buildCard(a.id));
      cards.get(a.id).update(a);
    }
    for (const id of [...appliances.keys()]) {
      if (!seen.has(id)) { appliances.delete(id); cards.delete(id); rates.delete(id); }
    }
    // Rebuild the grouping only when membership moves; otherwise cards update in place.
    const key = [...appliances.values()].map((a) => `${a.id}@${a.site_id}`).sort().join('|')
      + `#${sites.map((s) => `${s.id}:${s.region}:${s.name}`).join('|')}`;
    if (key !== layoutKey) {
      layoutKey = key;
      renderOverview();
    }
    const all = [...appliances.values()];
    const healthy = all.filter((a) => a.healthy).length;
    const byState = APPLIANCE_STATES.map((s) => [s, all.filter((a) => a.state === s).length]).filter(([, n]) => n);
    summary.textContent = [
      `${all.length} appliance${all.length === 1 ? '' : 's'}`,
      `${healthy} healthy`,
      ...byState.map(([s, n]) => `${n} ${s}`),
    ].join(' · ');
  };

  // ---- audit ----------------------------------------------------------------
  let auditKey = '';
  const renderAudit = (entries) => {
    const key = JSON.stringify(entries);
    if (key === auditKey) return refreshRelativeTimes(auditBox);
    auditKey = key;
    // Keep open entries open across refreshes.
    const open = new Set($$('details[open]', auditBox).map((d) => d.dataset.key));
    if (!entries.length) return fill(auditBox, h('p', { class: 'muted fleet-note' }, 'Nothing has changed yet.'));
    fill(auditBox,
      h('div', { class: 'audit-row audit-header', 'aria-hidden': 'true' },
        h('span', {}, 'When'), h('span', {}, 'Actor'), h('span', {}, 'Action'), h('span', {}, 'Entity'), h('span', {}, 'ID')),
      entries.map((e, i) => {
        const k = `${e.at_ms}|${e.actor}|${e.action}|${e.entity}|${e.entity_id}|${entries.slice(0, i).filter((x) => x.at_ms === e.at_ms).length}`;
        const block = (label, value) => {
          const text = prettyJson(value);
          return h('div', { class: 'audit-json' }, h('h5', {}, label),
            text == null ? h('p', { class: 'muted' }, '(none)') : h('pre', { class: 'fleet-pre' }, text));
        };
        return h('details', { class: 'audit-entry', 'data-testid': 'fleet-audit-entry', 'data-key': k, open: open.has(k) },
          h('summary', { class: 'audit-row' },
            relTime(e.at_ms),
            h('span', { class: 'audit-actor' }, e.actor || '—'),
            h('span', { class: 'audit-action' }, e.action || '—'),
            h('span', { class: 'audit-entity' }, e.entity || '—'),
            h('code', { class: 'audit-id' }, e.entity_id || '—')),
          h('div', { class: 'audit-body' }, block('Before', e.before), block('After', e.after)));
      }));
  };

  const refreshAudit = async () => {
    try {
      const data = await get('/api/v1/fleet/audit?limit=50');
      if (ctx.alive()) renderAudit(data?.entries || []);
    } catch (err) {
      if (!isAbort(err) && ctx.alive() && !auditKey) fill(auditBox, failedNote('the audit trail', err));
    }
  };

  if (auditRes.status === 'fulfilled') renderAudit(auditRes.value?.entries || []);
  else fill(auditBox, failedNote('the audit trail', auditRes.reason));

  // ---- polling --------------------------------------------------------------
  let failing = false;
  const setStatus = () => {
    status.classList.toggle('stale', failing);
    const text = failing
      ? `Reconnecting… last update ${lastOk ? timeAgo(lastOk) : 'never'}`
      : `Live · every ${FLEET_POLL_MS / 1000}s`;
    if (status.textContent !== text) status.textContent = text;
  };

  const poll = async () => {
    timer = null;
    if (!ctx.alive()) return;
    const started = Date.now();
    // A background tab doesn't need the fleet every 3 s; pick up on return.
    if (!document.hidden) {
      try {
        const data = await get('/api/v1/fleet/appliances');
        if (!ctx.alive()) return;
        applyAppliances(data?.appliances || []);
        lastOk = Date.now();
        failing = false;
        refreshAudit();
      } catch (err) {
        if (!ctx.alive() || isAbort(err)) return;
        if (err.status === 401) return handleError(err);
        if (err.status === 403) return operatorsOnly();
        if (!failing) toast(`Fleet updates paused: ${err.message}`);
        failing = true;
      }
      setStatus();
    }
    if (ctx.alive()) timer = setTimeout(poll, Math.max(500, FLEET_POLL_MS - (Date.now() - started)));
  };
  ctx.onCleanup(() => clearTimeout(timer));

  applyAppliances(appliancesRes.value?.appliances || []);
  lastOk = Date.now();
  setStatus();
  timer = setTimeout(poll, FLEET_POLL_MS);

  function operatorsOnly() {
    clearTimeout(timer);
    showPageMessage('Operators only', 'The fleet page is for Reel operators. Ask an admin if you need access.');
  }

  // Sites rarely change, so they load once; if that failed, try once more.
  if (sitesRes.status === 'rejected') {
    get('/api/v1/fleet/sites').then((d) => {
      if (!ctx.alive()) return;
      sites = d?.sites || [];
      fill(sitesBox, sitesTable(sites));
      layoutKey = '';
      applyAppliances([...appliances.values()]);
    }).catch(() => {});
  }
}

function sitesTable(sites) {
  if (!sites.length) return h('p', { class: 'muted fleet-note' }, 'No sites yet.');
  return h('table', { class: 'fleet-table' },
    h('thead', {}, h('tr', {}, ['ID', 'Name', 'Region', 'Location', 'Client prefixes'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, sites.map((s) => h('tr', { 'data-site-id': s.id },
      h('td', {}, h('code', {}, s.id)),
      h('td', {}, s.name || '—'),
      h('td', {}, s.region || '—'),
      h('td', {}, s.location || '—'),
      h('td', {}, s.prefixes?.length
        ? h('span', { class: 'prefixes' }, s.prefixes.map((p) => h('code', { class: 'prefix' }, p)))
        : h('span', { class: 'muted' }, 'none'))))));
}

function modelsTable(models) {
  if (!models.length) return h('p', { class: 'muted fleet-note' }, 'No models yet.');
  return h('table', { class: 'fleet-table' },
    h('thead', {}, h('tr', {}, ['ID', 'Name', 'Vendor', 'Parts'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, models.map((m) => {
      const parts = Array.isArray(m.parts) ? m.parts : (() => { try { return JSON.parse(m.parts) || []; } catch { return []; } })();
      return h('tr', { 'data-model-id': m.id },
        h('td', {}, h('code', {}, m.id)),
        h('td', {}, m.name || '—'),
        h('td', {}, m.vendor || '—'),
        h('td', {}, parts.length ? h('ul', { class: 'parts' }, parts.map(partLine)) : h('span', { class: 'muted' }, 'none')));
    })));
}

/** Config panel for one appliance: the rendered config, its saved versions,
 *  and a diff between any two of them. A modal <dialog>, gone on route change. */
async function openConfig(id, ctx) {
  const base = `/api/v1/fleet/appliances/${encodeURIComponent(id)}/config`;
  const text = h('pre', { class: 'fleet-pre config-text', 'data-testid': 'fleet-config-text' }, 'Rendering…');
  const meta = h('p', { class: 'muted fleet-note' });
  const versionsBox = h('div', { class: 'fleet-table-wrap' }, h('p', { class: 'muted fleet-note' }, 'Loading versions…'));
  const fromSel = h('select', { class: 'fleet-select', 'aria-label': 'Diff from version', 'data-testid': 'fleet-diff-from' });
  const toSel = h('select', { class: 'fleet-select', 'aria-label': 'Diff to version', 'data-testid': 'fleet-diff-to' });
  const diffOut = h('pre', { class: 'fleet-pre diff', 'data-testid': 'fleet-diff', 'aria-live': 'polite' }, 'Choose two versions to compare.');
  const dlg = h('dialog', { class: 'fleet-dialog', 'data-testid': 'fleet-config', 'data-appliance-id': id, 'aria-label': `Config of ${id}` },
    h('div', { class: 'fleet-dialog-head' },
      h('h2', {}, 'Config · ', h('code', {}, id)),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', 'data-testid': 'fleet-config-close', onclick: () => dlg.close() }, icon('close'))),
    h('div', { class: 'fleet-dialog-body' },
      h('h3', {}, 'Current config'), meta, text,
      h('h3', {}, 'Versions'), versionsBox,
      h('h3', {}, 'Diff'),
      h('div', { class: 'diff-pick' },
        h('label', {}, h('span', { class: 'muted' }, 'From'), fromSel),
        h('label', {}, h('span', { class: 'muted' }, 'To'), toSel)),
      diffOut));
  const ctrl = new AbortController();
  const remove = () => { if (dlg.open) dlg.close(); };
  dlg.addEventListener('close', () => { dlg.remove(); ctrl.abort(); });
  // A click on the backdrop (the dialog box itself, outside its content) closes it.
  dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); });
  ctx.signal.addEventListener('abort', remove, { once: true });
  ctx.onCleanup(remove);
  document.body.append(dlg);
  dlg.showModal();

  const get = (path) => api('GET', path, undefined, { signal: ctrl.signal });
  let diffSeq = 0;
  const showDiff = async () => {
    const from = fromSel.value;
    const to = toSel.value;
    const seq = ++diffSeq;
    if (!from || !to) return;
    if (from === to) { fill(diffOut, h('span', { class: 'muted' }, 'Same version: nothing to compare.')); return; }
    diffOut.textContent = 'Loading diff…';
    try {
      const d = await get(`${base}/diff?${new URLSearchParams({ from, to })}`);
      if (seq !== diffSeq) return;
      const lines = String(d?.diff || '').replace(/\n$/, '').split('\n').filter((l, i, all) => l || all.length > 1);
      if (!lines.length) return fill(diffOut, h('span', { class: 'muted' }, `No differences between v${from} and v${to}.`));
      fill(diffOut, lines.map((l) => {
        const kind = l.startsWith('+++') || l.startsWith('---') ? 'file'
          : l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'ctx';
        return h('span', { class: `diff-line diff-${kind}` }, `${l}\n`);
      }));
    } catch (err) {
      if (isAbort(err) || seq !== diffSeq) return;
      fill(diffOut, h('span', { class: 'diff-error' }, err.message));
    }
  };
  fromSel.addEventListener('change', showDiff);
  toSel.addEventListener('change', showDiff);

  try {
    // Rendering first: it may save a new version, which the list should show.
    const cfg = await get(base);
    text.textContent = cfg?.text ?? '';
    meta.textContent = cfg?.version != null ? `Version ${cfg.version}` : '';
    const data = await get(`${base}/versions`);
    const versions = [...(data?.versions || [])].sort((a, b) => a.version - b.version);
    if (!versions.length) {
      fill(versionsBox, h('p', { class: 'muted fleet-note' }, 'No saved versions.'));
      return;
    }
    fill(versionsBox, h('table', { class: 'fleet-table versions' },
      h('thead', {}, h('tr', {}, ['Version', 'Saved', 'Actor', 'SHA-256'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, [...versions].reverse().map((v) => h('tr', { 'data-version': v.version, class: v.version === cfg?.version ? 'current' : null },
        h('td', {}, `v${v.version}`, v.version === cfg?.version ? h('span', { class: 'tag' }, 'current') : null),
        h('td', {}, relTime(v.created_ms)),
        h('td', {}, v.actor || '—'),
        h('td', {}, h('code', { title: v.sha256 || '' }, (v.sha256 || '').slice(0, 12))))))));
    const options = (sel) => fill(sel, [...versions].reverse().map((v) => h('option', { value: v.version }, `v${v.version}`)));
    options(fromSel);
    options(toSel);
    if (versions.length < 2) {
      fill(diffOut, h('span', { class: 'muted' }, 'Only one version so far. A diff appears once the config changes.'));
      fromSel.disabled = true;
      toSel.disabled = true;
      return;
    }
    toSel.value = String(versions.at(-1).version);
    fromSel.value = String(versions.at(-2).version);
    showDiff();
  } catch (err) {
    if (isAbort(err)) return;
    if (text.textContent === 'Rendering…') text.textContent = '';
    fill(versionsBox, h('p', { class: 'diff-error' }, err.message));
    if (err.status === 401) { dlg.close(); handleError(err); }
  }
}

// ---------------------------------------------------------------------------
// 6g. View: ops dashboard (operators only)
// ---------------------------------------------------------------------------

const OPS_REFRESH_MS = 15000;
const OPS_POINTS = 120;      // points per series; the step follows from the range
const OPS_MAX_SERIES = 8;    // more lines than this is noise: keep the highest
const OPS_RANGES = [
  { id: '15m', label: '15 min', seconds: 15 * 60 },
  { id: '1h', label: '1 h', seconds: 3600 },
  { id: '6h', label: '6 h', seconds: 6 * 3600 },
  { id: '24h', label: '24 h', seconds: 24 * 3600 },
];
// unit picks the axis and tooltip format (see opsFormat).
const OPS_PANELS = [
  { id: 'requests', title: 'Requests/s by status class', unit: 'rate', groupBy: 'status',
    colors: { '1xx': '#8b949e', '2xx': '#3fb950', '3xx': '#4f8bf0', '4xx': '#d29922', '5xx': '#f85149' },
    query: 'sum by (status) (rate(http_server_requests_total[1m]))' },
  { id: 'latency', title: 'p99 latency by route (top routes)', unit: 'seconds',
    query: 'histogram_quantile(0.99, sum by (route, le) (rate(http_server_request_duration_seconds_bucket[5m])))' },
  { id: 'playback-starts', title: 'Playback starts/min', unit: 'count',
    query: 'sum(rate(playback_starts_total[5m])) * 60' },
  { id: 'rebuffers', title: 'Rebuffers/min by region', unit: 'count',
    query: 'sum by (region) (rate(playback_rebuffers_total[5m])) * 60' },
  { id: 'edge-throughput', title: 'Edge throughput per appliance (Gb/s)', unit: 'gbps',
    query: 'sum by (appliance) (rate(edge_bytes_served_total[1m])) * 8 / 1e9' },
  { id: 'edge-hit-ratio', title: 'Edge hit ratio per appliance', unit: 'ratio',
    query: 'sum by (appliance) (rate(edge_cache_hits_total[5m])) / (sum by (appliance) (rate(edge_cache_hits_total[5m])) + sum by (appliance) (rate(edge_cache_misses_total[5m])))' },
  { id: 'edge-latency', title: 'Edge p99 latency', unit: 'seconds',
    query: 'histogram_quantile(0.99, sum by (appliance, le) (rate(edge_http_request_duration_seconds_bucket[5m])))' },
];
// Distinct on the dark surface and apart from each other; assigned by legend order.
const OPS_COLORS = ['#4f8bf0', '#3fb950', '#d29922', '#f85149', '#a371f7', '#39c5cf', '#ec6cb9', '#e3b341', '#8b949e', '#ff9b5c'];

/** 1234 → "1.2k", 2500000 → "2.5M", 0.25 → "0.25": short enough for an axis. */
function formatSI(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trimNum(v / 1e9)}G`;
  if (a >= 1e6) return `${trimNum(v / 1e6)}M`;
  if (a >= 1e3) return `${trimNum(v / 1e3)}k`;
  return trimNum(v);
}

/** At most 3 significant digits, no trailing zeros: 12.50 → "12.5", 0.00123 → "0.00123". */
function trimNum(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(a)));
  return String(Number(v.toFixed(digits)));
}

/** A value in a panel's unit, for axis ticks and the tooltip. */
function opsFormat(v, unit) {
  if (!Number.isFinite(v)) return String(v);
  switch (unit) {
    case 'seconds': return Math.abs(v) >= 1 ? `${trimNum(v)} s` : `${trimNum(v * 1000)} ms`;
    case 'ratio': return `${trimNum(v * 100)}%`;
    case 'gbps': return Math.abs(v) >= 1 || v === 0 ? `${trimNum(v)} Gb/s` : `${formatSI(v * 1000)} Mb/s`;
    default: return formatSI(v);
  }
}

/** Unix seconds → "14:05" in the viewer's time zone. */
function hhmm(t) {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** 1, 2 or 5 × a power of ten, at least `raw`: the classic axis step. */
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** "route=/api/v1/home, method=GET"; a single label shows just its value. */
function seriesLabel(metric) {
  const entries = Object.entries(metric || {}).filter(([k]) => k !== '__name__');
  if (!entries.length) return metric?.__name__ || 'value';
  if (entries.length === 1) return String(entries[0][1]);
  return entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

/** Prometheus matrix JSON → [{label, points:[[t, v]...]}], sorted by label.
 *  `groupBy` sums series whose label starts alike into a class: 200, 204 → "2xx". */
function parseMatrix(data, { groupBy } = {}) {
  const result = Array.isArray(data?.data?.result) ? data.data.result : [];
  let series = result.map((r) => ({
    label: seriesLabel(r.metric),
    points: (r.values || (r.value ? [r.value] : [])).map(([t, v]) => [Number(t), parseFloat(v)]).filter(([t]) => Number.isFinite(t)),
  }));
  if (groupBy) {
    const groups = new Map();
    result.forEach((r, i) => {
      const raw = String(r.metric?.[groupBy] ?? '');
      const key = /^\d{3}$/.test(raw) ? `${raw[0]}xx` : raw || series[i].label;
      if (!groups.has(key)) groups.set(key, new Map());
      const sums = groups.get(key);
      for (const [t, v] of series[i].points) if (Number.isFinite(v)) sums.set(t, (sums.get(t) || 0) + v);
    });
    series = [...groups].map(([label, sums]) => ({ label, points: [...sums].sort((a, b) => a[0] - b[0]) }));
  }
  series = series.filter((s) => s.points.some(([, v]) => Number.isFinite(v)));
  series.sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
  return series;
}

/** The highest `max` series by their peak; says how many were left out. */
function topSeries(series, max = OPS_MAX_SERIES) {
  if (series.length <= max) return { shown: series, hidden: 0 };
  const peak = (s) => Math.max(-Infinity, ...s.points.map(([, v]) => v).filter(Number.isFinite));
  const keep = new Set([...series].sort((a, b) => peak(b) - peak(a)).slice(0, max));
  return { shown: series.filter((s) => keep.has(s)), hidden: series.length - max };
}

/** A line chart drawn as inline SVG at the box's real pixel size (so labels stay
 *  legible on a phone), redrawn on resize. draw(series, {start, end, step, unit}). */
function opsChart(ctx) {
  const box = h('div', { class: 'ops-chart-box' });
  const tip = h('div', { class: 'ops-tip', hidden: true, 'aria-hidden': 'true' });
  const H = 200;
  const M = { top: 10, right: 12, bottom: 24, left: 56 };
  let last = null;
  let svg = null;
  let geo = null; // what the pointer handler needs from the last draw

  const render = () => {
    if (!last) return;
    const { series, start, end, unit } = last;
    const W = Math.max(240, Math.round(box.clientWidth || 480));
    const iw = W - M.left - M.right;
    const ih = H - M.top - M.bottom;
    const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
    let lo = Math.min(0, ...values);
    let hi = Math.max(...values, lo);
    if (unit === 'ratio' && hi <= 1 && lo >= 0) hi = Math.max(hi, 1);
    if (hi === lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo));
    const yStep = niceStep((hi - lo) / 4);
    lo = Math.floor(lo / yStep) * yStep;
    hi = Math.ceil(hi / yStep) * yStep;
    const x = (t) => M.left + ((t - start) / Math.max(1, end - start)) * iw;
    const y = (v) => M.top + ih - ((v - lo) / (hi - lo)) * ih;

    svg = svgEl('svg', { class: 'ops-chart', 'data-testid': 'ops-chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' });
    const grid = svgEl('g', { class: 'ops-gridlines' });
    const axis = svgEl('g', { class: 'ops-axis' });
    for (let v = lo, i = 0; v <= hi + yStep / 2 && i < 12; v += yStep, i += 1) {
      const yy = Math.round(y(v)) + 0.5;
      grid.append(svgEl('line', { x1: M.left, x2: W - M.right, y1: yy, y2: yy }));
      const label = svgEl('text', { x: M.left - 6, y: yy + 4, 'text-anchor': 'end' });
      label.textContent = opsFormat(Number(v.toPrecision(12)), unit);
      axis.append(label);
    }
    // Time ticks on whole local minutes/hours, as many as fit (~1 per 90 px).
    const want = Math.max(2, Math.floor(iw / 90));
    const span = end - start;
    const iv = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].find((s) => span / s <= want) || 86400;
    const off = -new Date(start * 1000).getTimezoneOffset() * 60;
    for (let t = Math.ceil((start + off) / iv) * iv - off; t <= end; t += iv) {
      const xx = Math.round(x(t)) + 0.5;
      grid.append(svgEl('line', { x1: xx, x2: xx, y1: M.top + ih, y2: M.top + ih + 4 }));
      const label = svgEl('text', { x: xx, y: H - 6, 'text-anchor': 'middle' });
      label.textContent = hhmm(t);
      axis.append(label);
    }
    grid.append(svgEl('line', { class: 'ops-baseline', x1: M.left, x2: W - M.right, y1: M.top + ih + 0.5, y2: M.top + ih + 0.5 }));

    const lines = svgEl('g', { class: 'ops-lines' });
    const gap = (last.step || 0) * 2.5; // a hole in the data breaks the line instead of bridging it
    series.forEach((s) => {
      const g = svgEl('g', { class: 'ops-series', 'data-series': s.label });
      let run = [];
      let prevT = null;
      const flush = () => {
        if (run.length === 1) g.append(svgEl('circle', { cx: run[0][0], cy: run[0][1], r: 2, fill: s.color }));
        else if (run.length > 1) g.append(svgEl('polyline', { points: run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' '), fill: 'none', stroke: s.color }));
        run = [];
      };
      for (const [t, v] of s.points) {
        if (!Number.isFinite(v) || (prevT != null && gap && t - prevT > gap)) flush();
        if (Number.isFinite(v)) run.push([x(t), y(Math.min(hi, Math.max(lo, v)))]);
        prevT = t;
      }
      flush();
      lines.append(g);
    });
    const cursor = svgEl('line', { class: 'ops-cursor', y1: M.top, y2: M.top + ih, x1: -10, x2: -10 });
    svg.append(grid, axis, lines, cursor);
    svg.setAttribute('aria-label', `Chart of ${series.map((s) => s.label).join(', ')} from ${hhmm(start)} to ${hhmm(end)}`);
    geo = { W, iw, start, end, x, cursor };
    box.replaceChildren(svg, tip);
  };

  // Nearest point of each series to the pointer's time.
  const nearest = (points, t) => {
    let a = 0;
    let b = points.length - 1;
    while (b - a > 1) { const m = (a + b) >> 1; if (points[m][0] < t) a = m; else b = m; }
    return Math.abs(points[a][0] - t) <= Math.abs(points[b][0] - t) ? points[a] : points[b];
  };
  const hideTip = () => { tip.hidden = true; geo?.cursor.setAttribute('x1', -10); geo?.cursor.setAttribute('x2', -10); };
  box.addEventListener('pointermove', (e) => {
    if (!geo || !last?.series.length) return;
    const rect = svg.getBoundingClientRect();
    const px = e.clientX - rect.left;
    if (px < M.left || px > M.left + geo.iw) return hideTip();
    const t = geo.start + ((px - M.left) / geo.iw) * (geo.end - geo.start);
    const rows = last.series.map((s) => ({ s, p: nearest(s.points, t) })).filter((r) => r.p);
    if (!rows.length) return hideTip();
    const at = rows.reduce((best, r) => (Math.abs(r.p[0] - t) < Math.abs(best - t) ? r.p[0] : best), rows[0].p[0]);
    const cx = geo.x(at);
    geo.cursor.setAttribute('x1', cx);
    geo.cursor.setAttribute('x2', cx);
    fill(tip, h('div', { class: 'ops-tip-time' }, new Date(at * 1000).toLocaleTimeString()),
      rows.filter((r) => r.p[0] === at).sort((p, q) => q.p[1] - p.p[1]).map((r) => h('div', { class: 'ops-tip-row' },
        h('span', { class: 'ops-swatch', style: `--c:${r.s.color}` }),
        h('span', { class: 'ops-tip-label' }, r.s.label),
        h('strong', {}, opsFormat(r.p[1], last.unit)))));
    tip.hidden = false;
    const left = cx + 12 + tip.offsetWidth > geo.W ? cx - 12 - tip.offsetWidth : cx + 12;
    tip.style.left = `${Math.max(0, left)}px`;
  });
  box.addEventListener('pointerleave', hideTip);

  let width = 0;
  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => {
    const w = Math.round(box.clientWidth);
    if (w && w !== width) { width = w; render(); }
  }) : null;
  ro?.observe(box);
  ctx.onCleanup(() => ro?.disconnect());

  return {
    el: box,
    draw(series, opts) { last = { series, ...opts }; render(); },
    clear() { last = null; svg = null; geo = null; box.replaceChildren(); },
  };
}

/** One chart panel: title, its PromQL, the chart or a state (loading, no data,
 *  error), a legend. load(range) runs the query; each panel fails on its own. */
function opsPanel(ctx, spec, { onForbidden, onQueryError, testid = 'ops-panel' } = {}) {
  const chart = opsChart(ctx);
  const body = h('div', { class: 'ops-panel-body' }, h('div', { class: 'ops-loading skeleton', 'aria-hidden': 'true' }));
  const legend = h('ul', { class: 'ops-legend', 'aria-label': 'Legend' });
  const queryEl = h('code', { class: 'ops-query', title: spec.query }, spec.query);
  const copy = h('button', {
    type: 'button', class: 'btn btn-ghost btn-xs ops-copy', 'data-testid': 'ops-copy', 'aria-label': `Copy the query of ${spec.title}`,
    onclick: async () => {
      try { await navigator.clipboard.writeText(spec.query); toast('Query copied.', 'info'); } catch { toast('Couldn’t copy: select the query and copy it by hand.'); }
    },
  }, 'Copy');
  const el = h('article', { class: 'ops-panel', 'data-testid': testid, 'data-panel-id': spec.id, 'data-state': 'loading', 'aria-busy': 'true' },
    h('header', { class: 'ops-panel-head' }, h('h2', {}, spec.title), copy),
    queryEl, body, legend);
  if (!spec.title) { el.querySelector('.ops-panel-head').remove(); queryEl.remove(); }

  let ctrl = null;
  let seq = 0;
  let hasChart = false;
  ctx.signal.addEventListener('abort', () => ctrl?.abort(), { once: true });
  const setState = (s) => { el.dataset.state = s; el.setAttribute('aria-busy', String(s === 'loading')); };
  const message = (cls, text, testidMsg) => {
    hasChart = false;
    chart.clear();
    fill(legend);
    fill(body, h('p', { class: `ops-msg ${cls}`, 'data-testid': testidMsg }, text));
  };

  const load = async ({ start, end, step }) => {
    const my = ++seq;
    ctrl?.abort();
    ctrl = new AbortController();
    setState('loading');
    el.classList.toggle('refreshing', hasChart);
    try {
      const qs = new URLSearchParams({ query: spec.query, start: String(start), end: String(end), step: String(step) });
      const data = await api('GET', `/api/v1/metrics/query_range?${qs}`, undefined, { signal: ctrl.signal });
      if (my !== seq || !ctx.alive()) return;
      const { shown, hidden } = topSeries(parseMatrix(data, spec));
      if (!shown.length) { setState('empty'); message('ops-empty', 'No data yet', 'ops-empty'); return; }
      const palette = OPS_COLORS.filter((c) => !Object.values(spec.colors || {}).includes(c));
      let next = 0;
      shown.forEach((s) => { s.color = spec.colors?.[s.label] || palette[next++ % palette.length]; });
      if (!hasChart) fill(body, chart.el);
      hasChart = true;
      chart.draw(shown, { start, end, step, unit: spec.unit });
      const latest = (s) => [...s.points].reverse().find(([, v]) => Number.isFinite(v))?.[1];
      fill(legend, shown.map((s) => h('li', { title: s.label },
        h('span', { class: 'ops-swatch', style: `--c:${s.color}`, 'aria-hidden': 'true' }),
        h('span', { class: 'ops-legend-label' }, s.label),
        latest(s) != null ? h('span', { class: 'ops-legend-value' }, opsFormat(latest(s), spec.unit)) : null)),
        hidden ? h('li', { class: 'muted' }, `+${hidden} more not shown`) : null);
      setState('ready');
      return { ok: true };
    } catch (err) {
      if (isAbort(err) || my !== seq || !ctx.alive()) return;
      if (err.status === 401) { handleError(err); return; }
      if (err.status === 403) { onForbidden?.(); return; }
      setState('error');
      if (err.code === 'bad_query' && onQueryError?.(err)) return { ok: false, err };
      message('ops-error', err.message || 'Couldn’t load this panel.', 'ops-panel-error');
      return { ok: false, err };
    } finally {
      if (my === seq) el.classList.remove('refreshing');
    }
  };
  return { el, load, spec };
}

/** "at 12: expected ')'" → a caret under byte 12 of the query (0-based, as the
 *  parser counts). Byte offsets become character offsets for non-ASCII text. */
function queryErrorView(query, message) {
  const m = /^at (\d+):\s*/.exec(message || '');
  const children = [h('p', { class: 'ops-explore-msg' }, message || 'That query didn’t work.')];
  if (m) {
    const bytes = new TextEncoder().encode(query);
    const pos = Math.min(Number(m[1]), bytes.length);
    const col = [...new TextDecoder().decode(bytes.slice(0, pos))].length;
    children.unshift(h('pre', { class: 'ops-caret', 'aria-hidden': 'true', 'data-testid': 'ops-explore-caret', 'data-pos': col },
      `${query}\n${' '.repeat(col)}^`));
  }
  return children;
}

async function viewOps(ctx) {
  setTitle('Ops');
  const rangeId = OPS_RANGES.some((r) => r.id === ctx.query.get('range')) ? ctx.query.get('range') : '1h';
  let range = OPS_RANGES.find((r) => r.id === rangeId);
  let timer = null;
  let forbidden = false;
  let lastOk = 0;

  const operatorsOnly = () => {
    if (forbidden) return;
    forbidden = true;
    clearTimeout(timer);
    showPageMessage('Operators only', 'The ops dashboard is for Reel operators. Ask an admin if you need access.');
  };

  const status = h('span', { class: 'fleet-live', 'data-testid': 'ops-live', role: 'status' }, 'Loading…');
  const rangeButtons = OPS_RANGES.map((r) => h('button', {
    type: 'button', class: 'ops-range-btn', 'data-range': r.id, 'aria-pressed': String(r === range),
    onclick: () => {
      if (r === range) return;
      range = r;
      for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b.dataset.range === r.id));
      syncUrl();
      refresh();
    },
  }, r.label));
  const picker = h('div', { class: 'ops-range', role: 'group', 'aria-label': 'Time range', 'data-testid': 'ops-range' }, rangeButtons);

  const panels = OPS_PANELS.map((spec) => opsPanel(ctx, spec, { onForbidden: operatorsOnly }));

  // ---- explore --------------------------------------------------------------
  const input = h('input', {
    type: 'text', class: 'ops-explore-input', 'data-testid': 'ops-explore-input', name: 'query',
    placeholder: 'PromQL, e.g. sum by (route) (rate(http_server_requests_total[1m]))',
    'aria-label': 'PromQL query', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', value: ctx.query.get('q') || '',
  });
  const runBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-sm', 'data-testid': 'ops-explore-run' }, 'Run');
  const errorBox = h('div', { class: 'ops-explore-error', 'data-testid': 'ops-explore-error', role: 'alert', hidden: true });
  const resultBox = h('div', { class: 'ops-explore-result' });
  let explore = null; // the panel for the last query that ran
  const runExplore = async () => {
    const query = input.value.trim();
    syncUrl();
    errorBox.hidden = true;
    fill(errorBox);
    if (!query) { explore = null; fill(resultBox); return; }
    // A bad query's message belongs under the input, where the mistake is.
    const mine = opsPanel(ctx, { id: 'explore', title: '', query, unit: 'auto' }, {
      onForbidden: operatorsOnly,
      testid: 'ops-explore-result',
      onQueryError: (err) => {
        if (mine !== explore) return true;
        fill(errorBox, queryErrorView(query, err.message));
        errorBox.hidden = false;
        explore = null;
        fill(resultBox);
        return true;
      },
    });
    explore = mine;
    fill(resultBox, mine.el);
    runBtn.disabled = true;
    await mine.load(window_());
    if (explore === mine || !explore) runBtn.disabled = false;
  };
  const form = h('form', { class: 'ops-explore-form', onsubmit: (e) => { e.preventDefault(); runExplore(); } }, input, runBtn);
  input.addEventListener('input', () => { if (!errorBox.hidden) { errorBox.hidden = true; fill(errorBox); } });

  // ---- alerts: what fired, and the series most likely behind it ------------
  const alertsBox = h('div', { class: 'ops-alerts-list', 'data-testid': 'ops-alerts' }, h('p', { class: 'muted' }, 'Loading alerts…'));
  const loadAlerts = async () => {
    try {
      const data = await api('GET', '/api/v1/alerts');
      const alerts = data?.alerts || [];
      if (!alerts.length) return fill(alertsBox, h('p', { class: 'muted', 'data-testid': 'ops-alerts-empty' }, 'No alerts. Rules: POST /api/v1/alert-rules.'));
      fill(alertsBox, alerts.slice(0, 20).map((a) => {
        const labels = Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
        const top = (a.suspects?.top || []).slice(0, 5);
        return h('article', { class: `ops-alert ${a.state}`, 'data-testid': 'ops-alert', 'data-state': a.state },
          h('header', {},
            h('strong', {}, a.name), ' ',
            h('span', { class: `ops-alert-state ${a.state}` }, a.state), ' ',
            h('span', { class: 'muted' }, `${labels ? `{${labels}} ` : ''}value ${opsFormat(a.value, 'auto')} · ${timeAgo(a.fired_ms)}`)),
          top.length
            ? h('ol', { class: 'ops-suspects', 'aria-label': `Suspects, of ${a.suspects?.ranked_of ?? '?'} series` }, top.map((s) => {
              const name = s.series?.__name__ || '';
              const rest = Object.entries(s.series || {}).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}=${v}`).join(', ');
              const ev = s.evidence || {};
              const why = [
                ev.change_seconds_from_alert != null ? `changed ${ev.change_seconds_from_alert}s from the alert` : null,
                `correlation ${Number(ev.correlation || 0).toFixed(2)}${ev.lag_seconds ? ` at ${ev.lag_seconds}s lag` : ''}`,
                ev.shared_tags?.length ? `shares ${ev.shared_tags.join(', ')}` : null,
              ].filter(Boolean).join(' · ');
              return h('li', { 'data-testid': 'ops-suspect' }, h('code', {}, `${name}{${rest}}`), h('span', { class: 'muted' }, ` score ${Number(s.score).toFixed(2)} — ${why}`));
            }))
            : null);
      }));
    } catch (err) {
      if (err.status === 403) return operatorsOnly();
      fill(alertsBox, h('p', { class: 'muted' }, `Alerts unavailable: ${err.message}`));
    }
  };

  const page = h('section', { class: 'ops-page', 'data-testid': 'ops-page' },
    h('div', { class: 'fleet-head' },
      h('div', {}, h('h1', {}, 'Ops'), h('p', { class: 'fleet-summary muted' }, 'Service health from the metrics store.')),
      h('div', { class: 'ops-tools' }, picker, status)),
    h('section', { class: 'ops-alerts', 'aria-labelledby': 'ops-alerts-title' }, h('h2', { id: 'ops-alerts-title' }, 'Alerts'), alertsBox),
    h('div', { class: 'ops-grid' }, panels.map((p) => p.el)),
    h('section', { class: 'ops-explore', 'aria-labelledby': 'ops-explore-title' },
      h('h2', { id: 'ops-explore-title' }, 'Explore'),
      form, errorBox, resultBox));
  app.replaceChildren(page);

  function syncUrl() {
    const qs = new URLSearchParams();
    if (range.id !== '1h') qs.set('range', range.id);
    if (input.value.trim()) qs.set('q', input.value.trim());
    const url = `/ops${qs.toString() ? `?${qs}` : ''}`;
    if (location.pathname + location.search !== url) history.replaceState(history.state, '', url);
  }

  // start/end on whole steps, so consecutive refreshes line up point for point.
  function window_() {
    const step = Math.max(1, Math.round(range.seconds / OPS_POINTS));
    const end = Math.floor(Date.now() / 1000 / step) * step;
    return { start: end - range.seconds, end, step };
  }

  const setStatus = (failing) => {
    status.classList.toggle('stale', failing);
    status.textContent = failing
      ? `Some panels failed · last good update ${lastOk ? timeAgo(lastOk) : 'never'}`
      : `Live · every ${OPS_REFRESH_MS / 1000}s`;
  };

  async function refresh() {
    clearTimeout(timer);
    timer = null;
    if (!ctx.alive() || forbidden) return;
    const w = window_();
    const jobs = panels.map((p) => p.load(w));
    if (explore) jobs.push(explore.load(w));
    loadAlerts();
    const results = await Promise.all(jobs);
    if (!ctx.alive() || forbidden) return;
    const failed = results.some((r) => r && !r.ok);
    if (results.some((r) => r?.ok)) lastOk = Date.now();
    setStatus(failed);
    schedule();
  }
  function schedule() {
    clearTimeout(timer);
    // A background tab skips refreshes; the next tick after it returns catches up.
    timer = setTimeout(() => (document.hidden ? schedule() : refresh()), OPS_REFRESH_MS);
  }
  ctx.onCleanup(() => clearTimeout(timer));

  if (input.value.trim()) runExplore();
  await refresh();
}

// ---------------------------------------------------------------------------
// 7. Player
// ---------------------------------------------------------------------------

const HEARTBEAT_MS = 5000;
const CONTROLS_IDLE_MS = 3000;

async function viewWatch(ctx) {
  const titleId = ctx.params[0];
  setTitle('Loading…');
  const ui = playerUI();
  app.replaceChildren(ui.root);
  ui.setBusy(true);

  let session;
  try {
    session = await api('POST', '/api/v1/playback', { profile_id: state.profileId, title_id: titleId }, { signal: ctx.signal });
  } catch (err) {
    if (!ctx.alive() || isAbort(err)) return;
    if (err.status === 401 && err.code === 'unauthenticated') return handleError(err);
    const title = { stream_limit: 'Too many streams', maturity: 'Not available on this profile', not_found: 'Title not found' }[err.code] || 'Can’t play this title';
    ui.showMessage(title, err.message, [{ label: 'Try again', primary: true, onClick: () => render() }]);
    return;
  }
  if (!ctx.alive()) return;
  setTitle(session.title?.name || 'Watch');
  startPlayback(ui, session, ctx);
}

/** Build the player DOM. Returns element refs plus small helpers. */
function playerUI() {
  const video = h('video', { class: 'video', 'data-testid': 'video', playsinline: true, preload: 'auto' });
  const btn = (name, label, testid, extra = {}) => h('button', { type: 'button', class: 'ctl', 'aria-label': label, title: label, 'data-testid': testid, ...extra }, icon(name));
  const refs = {
    video,
    back: h('button', { type: 'button', class: 'ctl player-back', 'aria-label': 'Back', 'data-testid': 'player-back' }, icon('back')),
    name: h('div', { class: 'player-name', 'data-testid': 'player-title' }),
    surface: h('div', { class: 'player-surface', 'aria-hidden': 'true' }),
    big: h('button', { type: 'button', class: 'player-big', 'aria-label': 'Play', tabindex: '-1' }, icon('play')),
    spinner: h('div', { class: 'player-spinner', role: 'status', 'aria-label': 'Loading' }),
    playPause: btn('play', 'Play', 'play-pause'),
    rewind: btn('rewind', 'Back 10 seconds', 'seek-back'),
    forward: btn('forward', 'Forward 10 seconds', 'seek-forward'),
    mute: btn('volume', 'Mute', 'mute'),
    volume: h('input', { type: 'range', class: 'volume', min: 0, max: 1, step: 0.05, value: 1, 'aria-label': 'Volume' }),
    seek: h('input', { type: 'range', class: 'seek', min: 0, max: 0, step: 0.1, value: 0, 'aria-label': 'Seek', 'data-testid': 'seek' }),
    time: h('span', { class: 'time', 'data-testid': 'time' }, '0:00 / 0:00'),
    qualityLabel: h('span', { class: 'quality-label', 'data-testid': 'quality-label', 'aria-live': 'polite' }),
    qualityBtn: btn('gear', 'Quality', 'quality-button', { 'aria-haspopup': 'menu', 'aria-expanded': 'false' }),
    qualityMenu: h('div', { class: 'quality-menu', role: 'menu', 'aria-label': 'Quality', 'data-testid': 'quality-menu', hidden: true }),
    fullscreen: btn('fullscreen', 'Full screen', 'fullscreen'),
    message: h('div', { class: 'player-message', hidden: true, 'data-testid': 'player-message', role: 'alert' }),
  };
  refs.root = h('div', { class: 'player', 'data-testid': 'player' },
    video, refs.surface, refs.spinner, refs.big,
    h('div', { class: 'player-top' }, refs.back, refs.name),
    h('div', { class: 'player-bottom' },
      refs.seek,
      h('div', { class: 'player-bar' },
        refs.playPause, refs.rewind, refs.forward,
        h('div', { class: 'volume-wrap' }, refs.mute, refs.volume),
        refs.time,
        h('span', { class: 'spacer' }),
        refs.qualityLabel,
        h('div', { class: 'quality-wrap' }, refs.qualityBtn, refs.qualityMenu),
        refs.fullscreen)),
    refs.message);
  refs.setBusy = (busy) => refs.root.classList.toggle('busy', busy);
  refs.showMessage = (title, text, actions = []) => {
    refs.setBusy(false);
    refs.message.replaceChildren(h('div', { class: 'message-box' },
      h('h2', {}, title), h('p', {}, text),
      h('div', { class: 'form-actions' },
        actions.map((a) => h('button', { type: 'button', class: `btn ${a.primary ? 'btn-primary' : 'btn-secondary'}`, onclick: a.onClick }, a.label)),
        h('button', { type: 'button', class: 'btn btn-ghost', onclick: leavePlayer }, 'Back to browse'))));
    refs.message.hidden = false;
    refs.root.classList.add('has-message');
  };
  refs.back.addEventListener('click', leavePlayer);
  return refs;
}

/** Leave the player: history back when we came from inside the app (keeps the
 *  user's place), otherwise home. Route teardown sends the stop call. */
function leavePlayer() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  if ((history.state?.idx ?? 0) > 0) history.back(); else navigate('/', { replace: true });
}

function startPlayback(ui, session, ctx) {
  const { video } = ui;
  const streamId = session.id;
  const startAt = Number(session.start_position_s) || 0;
  const sources = manifestCandidates(session);
  let sourceIndex = 0;
  let hls = null;
  let started = false;   // true once media actually played from startAt
  let stopped = false;   // stop sent (or session gone): no more heartbeats
  const player = { hls: null, video, streamId };
  window.__reelPlayer = player;
  ui.name.textContent = session.title?.name || '';

  // Position to report. Before the first frame plays, currentTime is still 0
  // while the start position is pending: report startAt then, or a quick
  // reload/leave would wipe the viewer's progress.
  const position = () => Math.floor(started ? video.currentTime : startAt);
  const endpoint = (what) => `/api/v1/playback/${encodeURIComponent(streamId)}/${what}`;

  const heartbeat = async () => {
    if (stopped) return;
    try {
      await api('POST', endpoint('heartbeat'), { position_s: position() });
    } catch (err) {
      if (stopped || isAbort(err) || err.status === 0) return; // network blips: next beat retries
      if (err.status === 401 && err.code === 'unauthenticated') return handleError(err);
      if ([404, 409, 410].includes(err.status)) {
        // The server ended this stream (e.g. plan stream limit hit elsewhere).
        stopped = true;
        video.pause();
        ui.showMessage('Playback stopped', err.message, [{ label: 'Resume', primary: true, onClick: () => render() }]);
      }
    }
  };

  // Stop on route change: keepalive lets the request outlive the view.
  const sendStop = (pos, { beacon = false } = {}) => {
    if (stopped) return;
    stopped = true;
    const json = JSON.stringify({ position_s: Math.floor(pos) });
    if (beacon && navigator.sendBeacon) {
      if (navigator.sendBeacon(endpoint('stop'), new Blob([json], { type: 'application/json' }))) return;
    }
    fetch(endpoint('stop'), { method: 'POST', credentials: 'same-origin', keepalive: true, headers: { 'Content-Type': 'application/json' }, body: json }).catch(() => {});
  };

  // Quality of experience, reported with each heartbeat: time to first
  // frame (once), rebuffers and their time, fatal errors, the bitrate now.
  const qoe = { openedAt: performance.now(), startupMs: null, sentStartup: false, rebuffers: 0, rebufferMs: 0, stallSince: null, errors: 0 };
  const sendQoe = () => {
    if (stopped) return;
    const body = { rebuffers: qoe.rebuffers, rebuffer_ms: Math.round(qoe.rebufferMs), errors: qoe.errors };
    if (qoe.startupMs != null && !qoe.sentStartup) { body.startup_ms = Math.round(qoe.startupMs); qoe.sentStartup = true; }
    const level = hls?.levels?.[hls.currentLevel];
    if (level?.bitrate) body.bitrate_kbps = Math.round(level.bitrate / 1000);
    // Which appliance is serving now (the origin of the URL in use).
    const serving = (session.urls || []).find((u) => { try { return new URL(u.url, location.href).origin === player.deliveryOrigin; } catch { return false; } });
    if (serving?.appliance_id) body.appliance = serving.appliance_id;
    qoe.rebuffers = 0; qoe.rebufferMs = 0; qoe.errors = 0;
    api('POST', endpoint('qoe'), body).catch(() => {});
  };
  const beatTimer = setInterval(() => { if (started && !video.paused && !video.ended) { heartbeat(); sendQoe(); } }, HEARTBEAT_MS);
  const seekedBeat = debounce(() => { if (started) heartbeat(); }, 400);
  const onPageHide = () => sendStop(position(), { beacon: true });
  window.addEventListener('pagehide', onPageHide);

  // ---- media wiring -------------------------------------------------------
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    attachHls(sources[0], startAt);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    // Safari/iOS: native HLS. Only "Auto" quality; the label follows videoHeight.
    video.src = sources[0];
    video.addEventListener('loadedmetadata', () => { if (startAt > 0) video.currentTime = startAt; tryPlay(); }, { once: true });
    video.addEventListener('error', () => ui.showMessage('Playback error', 'This video couldn’t be loaded. Please try again.', [{ label: 'Retry', primary: true, onClick: () => render() }]));
    buildQualityMenu([]);
  } else {
    ui.showMessage('Can’t play here', 'This browser can’t play Reel’s video streams. Try a recent version of Chrome, Firefox, Edge or Safari.');
  }

  function attachHls(url, startPosition) {
    hls?.destroy();
    const origins = sources.map((u) => new URL(u).origin);
    hls = new Hls({
      startPosition,
      capLevelToPlayerSize: false,
      // A modest forward buffer: enough to ride out an appliance failing
      // over, without fetching what an abandoned session never watches.
      maxBufferLength: 15,
      maxMaxBufferLength: 20,
      loader: failoverLoader(Hls, origins, (origin) => {
        player.deliveryOrigin = origin;
        console.info(`[reel] delivery moved to ${origin}`);
      }),
    });
    player.deliveryOrigin = origins[0];
    player.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => { buildQualityMenu(hls.levels); tryPlay(); });
    hls.on(Hls.Events.LEVEL_SWITCHED, updateQualityLabel);
    hls.on(Hls.Events.ERROR, (_evt, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && sourceIndex + 1 < sources.length) {
        // Try the next delivery base, picking up where we were.
        sourceIndex += 1;
        const resumeAt = started ? video.currentTime : startAt;
        console.warn(`[reel] network error, switching to source ${sourceIndex + 1}/${sources.length}`);
        attachHls(sources[sourceIndex], resumeAt);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else {
        qoe.errors += 1;
        sendQoe();
        ui.showMessage('Playback error', 'We lost the connection to the video. Check your network and try again.', [{ label: 'Retry', primary: true, onClick: () => render() }]);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  // Autoplay policies may block sound: retry muted rather than show nothing.
  function tryPlay() {
    video.play().catch(() => {
      video.muted = true;
      return video.play();
    }).catch(() => { ui.setBusy(false); syncPlayState(); });
  }

  // ---- quality menu -------------------------------------------------------
  function buildQualityMenu(levels) {
    const options = levels
      .map((l, index) => ({ index, height: l.height || 0, bitrate: l.bitrate || 0 }))
      .sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
    const dupes = new Set(options.map((o) => o.height).filter((hgt, i, all) => all.indexOf(hgt) !== i));
    const item = (label, height, level, sub) => h('button', {
      type: 'button', role: 'menuitemradio', class: 'quality-option', 'data-testid': 'quality-option',
      'data-height': height, 'data-level': level, 'aria-checked': 'false',
      onclick: () => chooseLevel(level),
    }, icon('check'), h('span', {}, label), sub ? h('span', { class: 'muted' }, sub) : null);
    fill(ui.qualityMenu,
      h('div', { class: 'menu-head' }, 'Quality'),
      item('Auto', 'auto', -1),
      ...options.map((o) => item(qualityName(o.height), o.height, o.index, dupes.has(o.height) ? `${(o.bitrate / 1e6).toFixed(1)} Mbps` : null)),
      session.max_height ? h('div', { class: 'menu-foot muted' }, `Your plan streams up to ${heightLabel(session.max_height)}`) : null);
    ui.qualityBtn.hidden = options.length < 2;
    updateQualityLabel();
  }

  function chooseLevel(level) {
    closeQualityMenu();
    if (!hls) return;
    // currentLevel switches now (flushes the buffer) so the choice is visible
    // at once; loadLevel = -1 hands control back to ABR without a stall.
    if (level >= 0) hls.currentLevel = level; else hls.loadLevel = -1;
    updateQualityLabel();
  }

  function updateQualityLabel() {
    const auto = !hls || hls.autoLevelEnabled;
    const lvl = hls && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel] : null;
    const height = lvl?.height || video.videoHeight || 0;
    ui.qualityLabel.textContent = auto ? (height ? `Auto · ${qualityName(height)}` : 'Auto') : qualityName(height);
    ui.qualityLabel.dataset.height = height ? String(height) : '';
    const selected = auto ? -1 : hls.manualLevel ?? hls.loadLevel;
    for (const o of ui.qualityMenu.querySelectorAll('.quality-option')) {
      o.setAttribute('aria-checked', String(Number(o.dataset.level) === (auto ? -1 : selected)));
    }
  }

  const toggleQualityMenu = () => (ui.qualityMenu.hidden ? openQualityMenu() : closeQualityMenu());
  function openQualityMenu() {
    ui.qualityMenu.hidden = false;
    ui.qualityBtn.setAttribute('aria-expanded', 'true');
    (ui.qualityMenu.querySelector('[aria-checked="true"]') || ui.qualityMenu.querySelector('.quality-option'))?.focus();
  }
  function closeQualityMenu() {
    ui.qualityMenu.hidden = true;
    ui.qualityBtn.setAttribute('aria-expanded', 'false');
  }

  // ---- controls -----------------------------------------------------------
  let scrubbing = false;
  let idleTimer = null;

  const togglePlay = () => (video.paused || video.ended ? tryPlay() : video.pause());
  const seekBy = (d) => { if (Number.isFinite(video.duration)) video.currentTime = Math.min(Math.max(0, video.currentTime + d), video.duration - 0.5); };

  function syncPlayState() {
    const paused = video.paused;
    ui.playPause.replaceChildren(icon(paused ? 'play' : 'pause'));
    ui.playPause.setAttribute('aria-label', paused ? 'Play' : 'Pause');
    ui.playPause.title = paused ? 'Play' : 'Pause';
    ui.root.classList.toggle('paused', paused);
    wake();
  }

  function syncTime() {
    const dur = Number.isFinite(video.duration) ? video.duration : Number(session.title?.duration_s) || 0;
    const t = scrubbing ? Number(ui.seek.value) : video.currentTime;
    if (!scrubbing) { ui.seek.max = String(dur || 0); ui.seek.value = String(t); }
    ui.time.textContent = `${formatClock(t)} / ${formatClock(dur)}`;
    ui.seek.setAttribute('aria-valuetext', `${formatClock(t)} of ${formatClock(dur)}`);
    const buffered = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
    ui.seek.style.setProperty('--played', dur ? `${(t / dur) * 100}%` : '0%');
    ui.seek.style.setProperty('--buffered', dur ? `${Math.min(100, (buffered / dur) * 100)}%` : '0%');
  }

  function syncVolume() {
    const silent = video.muted || video.volume === 0;
    ui.mute.replaceChildren(icon(silent ? 'muted' : 'volume'));
    ui.mute.setAttribute('aria-label', silent ? 'Unmute' : 'Mute');
    ui.volume.value = String(video.muted ? 0 : video.volume);
  }

  // Controls fade out while playing and come back on any pointer/key activity.
  function wake() {
    ui.root.classList.remove('idle');
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      // Keep them while the pointer rests on a control bar: hiding a button
      // under the cursor just before a click is the worst kind of surprise.
      const overBars = ui.root.querySelector('.player-top:hover, .player-bottom:hover');
      if (!video.paused && ui.qualityMenu.hidden && !scrubbing && !overBars) ui.root.classList.add('idle');
    }, CONTROLS_IDLE_MS);
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) return document.exitFullscreen().catch(() => {});
    if (ui.root.requestFullscreen) return ui.root.requestFullscreen().catch(() => {});
    if (video.webkitEnterFullscreen) video.webkitEnterFullscreen(); // iPhone
  }

  const on = (target, type, fn, opts) => {
    target.addEventListener(type, fn, opts);
    ctx.onCleanup(() => target.removeEventListener(type, fn, opts));
  };

  on(video, 'playing', () => {
    if (!started) {
      started = true;
      qoe.startupMs = performance.now() - qoe.openedAt;
      heartbeat();
      sendQoe();
    }
    if (qoe.stallSince != null) { qoe.rebufferMs += performance.now() - qoe.stallSince; qoe.stallSince = null; }
    ui.setBusy(false);
  });
  on(video, 'waiting', () => {
    // A stall after playback began is a rebuffer (seeking is not).
    if (started && !video.seeking && qoe.stallSince == null) { qoe.rebuffers += 1; qoe.stallSince = performance.now(); }
    ui.setBusy(true);
  });
  on(video, 'canplay', () => ui.setBusy(false));
  on(video, 'play', syncPlayState);
  on(video, 'pause', () => { syncPlayState(); if (started && !video.ended) heartbeat(); });
  on(video, 'seeked', seekedBeat);
  on(video, 'timeupdate', syncTime);
  on(video, 'durationchange', syncTime);
  on(video, 'progress', syncTime);
  on(video, 'volumechange', syncVolume);
  on(video, 'resize', () => { if (!hls) updateQualityLabel(); });
  on(video, 'ended', () => {
    sendStop(video.duration || session.title?.duration_s || position());
    ui.showMessage('Finished', `You’ve watched ${session.title?.name || 'this title'}.`, [{ label: 'Watch again', primary: true, onClick: () => render() }]);
  });

  on(ui.playPause, 'click', togglePlay);
  on(ui.big, 'click', togglePlay);
  on(ui.rewind, 'click', () => seekBy(-10));
  on(ui.forward, 'click', () => seekBy(10));
  on(ui.mute, 'click', () => { video.muted = !video.muted; if (!video.muted && video.volume === 0) video.volume = 1; });
  on(ui.volume, 'input', () => { video.volume = Number(ui.volume.value); video.muted = video.volume === 0; });
  on(ui.seek, 'input', () => { scrubbing = true; syncTime(); });
  on(ui.seek, 'change', () => { scrubbing = false; video.currentTime = Number(ui.seek.value); });
  on(ui.qualityBtn, 'click', (e) => { e.stopPropagation(); toggleQualityMenu(); });
  on(ui.qualityMenu, 'keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    e.preventDefault();
    const items = $$('.quality-option', ui.qualityMenu);
    const i = items.indexOf(document.activeElement);
    items[(i + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length]?.focus();
  });
  on(ui.fullscreen, 'click', toggleFullscreen);
  on(document, 'fullscreenchange', () => {
    const fs = !!document.fullscreenElement;
    ui.fullscreen.replaceChildren(icon(fs ? 'exitFullscreen' : 'fullscreen'));
    ui.fullscreen.setAttribute('aria-label', fs ? 'Exit full screen' : 'Full screen');
  });
  on(document, 'click', (e) => { if (!e.target.closest('.quality-wrap')) closeQualityMenu(); });

  // Mouse: click toggles play, double-click fullscreen. Touch: tap shows or
  // hides the controls (a tap that paused would be maddening on a phone).
  on(ui.surface, 'pointerup', (e) => {
    if (e.pointerType === 'mouse') { togglePlay(); return; }
    if (ui.root.classList.contains('idle')) wake(); else if (!video.paused) ui.root.classList.add('idle');
  });
  on(ui.surface, 'dblclick', toggleFullscreen);
  on(ui.root, 'pointermove', wake);
  on(ui.root, 'touchstart', wake, { passive: true });

  on(document, 'keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const onControl = e.target.closest?.('button, input, select');
    switch (e.key) {
      case ' ': case 'k': case 'K':
        if (e.key === ' ' && onControl && e.target.tagName === 'BUTTON') return; // the button handles it
        e.preventDefault(); togglePlay(); break;
      case 'ArrowLeft': case 'ArrowRight':
        if (e.target === ui.seek || e.target === ui.volume) return;
        e.preventDefault(); seekBy(e.key === 'ArrowLeft' ? -10 : 10); break;
      case 'f': case 'F': toggleFullscreen(); break;
      case 'm': case 'M': video.muted = !video.muted; break;
      case 'Escape':
        if (!ui.qualityMenu.hidden) { closeQualityMenu(); ui.qualityBtn.focus(); break; }
        if (!document.fullscreenElement) leavePlayer();
        break;
      default: return;
    }
    wake();
  });

  // ---- teardown -----------------------------------------------------------
  ctx.onCleanup(() => {
    sendStop(position());
    clearInterval(beatTimer);
    clearTimeout(idleTimer);
    window.removeEventListener('pagehide', onPageHide);
    hls?.destroy();
    video.removeAttribute('src');
    video.load();
    if (window.__reelPlayer === player) delete window.__reelPlayer;
  });

  syncPlayState();
  syncVolume();
  syncTime();
}

/** A hls.js loader that moves down the ranked delivery bases when a request
 *  fails: the same path is asked of the next base at once, and every later
 *  request goes there directly. Playback goes on from the buffer, so the
 *  viewer sees neither an error nor a stall when an appliance dies. */
function failoverLoader(Hls, origins, onSwitch) {
  const Base = Hls.DefaultConfig.loader;
  let current = 0;
  const onto = (url, i) => {
    try {
      const u = new URL(url);
      return origins.includes(u.origin) ? origins[i] + u.pathname + u.search : url;
    } catch { return url; }
  };
  return class FailoverLoader {
    constructor(config) {
      this.config = config;
      this.inner = new Base(config);
    }
    get stats() { return this.inner.stats; }
    get context() { return this.inner.context; }
    load(context, loadConfig, callbacks) {
      let at = current;
      const attempt = () => {
        const ctx = { ...context, url: onto(context.url, at) };
        const fail = (original) => (...args) => {
          if (at + 1 < origins.length) {
            at += 1;
            if (at > current) { current = at; onSwitch?.(origins[at]); }
            this.inner.destroy();
            this.inner = new Base(this.config);
            attempt();
          } else {
            original?.(...args);
          }
        };
        this.inner.load(ctx, loadConfig, {
          ...callbacks,
          onError: fail(callbacks.onError),
          onTimeout: fail(callbacks.onTimeout),
        });
      };
      attempt();
    }
    abort() { this.inner.abort(); }
    destroy() { this.inner.destroy(); }
  };
}

/** The manifest as served, then the same path on each alternative base from
 *  `urls` (by rank). Only the origin is swapped, as the contract says. */
function manifestCandidates(session) {
  const path = session.manifests?.hls;
  const first = new URL(path, location.href);
  const list = [first.href];
  const bases = [...(session.urls || [])].sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0));
  for (const b of bases) {
    try {
      const origin = new URL(b.url, location.href).origin;
      const href = origin + first.pathname + first.search;
      if (!list.includes(href)) list.push(href);
    } catch { /* malformed base: skip it */ }
  }
  return list;
}

function qualityName(height) {
  if (!height) return 'Auto';
  return height >= 2160 ? `${height}p 4K` : `${height}p`;
}

// ---------------------------------------------------------------------------
// 8. Boot
// ---------------------------------------------------------------------------

async function boot() {
  history.scrollRestoration = 'manual';
  if (!history.state || typeof history.state.idx !== 'number') history.replaceState({ idx: 0 }, '');
  setupHeader();
  interceptLinks();
  try {
    state.me = await api('GET', '/api/v1/me');
  } catch (err) {
    state.me = null;
    if (err.status !== 401) toast(err.message);
  }
  await render();
}

boot();
