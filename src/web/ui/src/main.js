// The interface's shell: login, the session, the live status stream, navigation between
// the pages (client-side routes; the server serves index.html for every non-API path).
import { render } from 'preact';
import { useState, useEffect, useCallback, useRef } from 'preact/hooks';
import { html, Link, navigate } from './ui.js';
import { get, post, put, setCsrf, whenLoggedOut, ApiError } from './api.js';
import { t, setLang, getLang, errText } from './i18n.js';
import { StatusPage } from './status.js';
import { RecordsPage } from './records.js';
import { ImportPage } from './import.js';
import { ReviewPage } from './review.js';
import { HqPage, DevicesPage } from './hq.js';

function useRoute() {
  const [path, setPath] = useState(location.pathname + location.search);
  useEffect(() => {
    const f = () => setPath(location.pathname + location.search);
    window.addEventListener('popstate', f);
    window.addEventListener('zila-route', f);
    return () => {
      window.removeEventListener('popstate', f);
      window.removeEventListener('zila-route', f);
    };
  }, []);
  return path;
}

// The status as API.md shapes it. The daemon may send `zila status --json`'s own shape
// (hq.last_sync, local.unsent_to_hq, warnings, ...); both are read here, nothing made up:
// with no row counts from the daemon, a running sync shows no fraction.
export function normStatus(s) {
  if (!s || s.local === undefined) return s;
  const now = Math.floor(Date.now() / 1000);
  const hq = s.hq || null;
  // counts in `local` (API.md; an older stand-in had them in `replica`)
  const counts = s.replica && typeof s.replica === 'object' ? s.replica : s.local;
  const idle = !hq || ['idle', 'due', 'waiting to retry'].includes(hq.state);
  const pending = (n) => (typeof n === 'number' ? n : null);
  const done = hq ? (hq.sent || 0) + (hq.received || 0) : 0;
  const total = hq && (pending(hq.to_send) !== null || pending(hq.to_receive) !== null) ? (hq.to_send || 0) + (hq.to_receive || 0) : null;
  return {
    hq: hq && { addr: hq.address, reachable: hq.reachable, last_sync_at: hq.last_sync, last_error: hq.last_error,
      next_attempt_at: typeof hq.next_attempt_s === 'number' ? now + hq.next_attempt_s : null },
    peers: (s.peers || []).map((p) => ({ name: p.name, district: p.district, addr: p.address, source: p.source,
      last_seen_at: p.last_seen, last_sync_at: p.last_sync })),
    // changes not yet sealed into an entry are not at HQ either
    unsent_to_hq: s.local.unsent_to_hq === null ? 0 : (s.local.unsent_to_hq || 0) + (s.local.unsealed || 0),
    refused_by_hq: (s.hq_refused || []).length,
    conflicts: (counts.conflicts) || 0,
    // `parked` counts duplicates, orphans and invalid rows; `orphans` those of them orphans
    duplicates: Math.max(0, (counts.parked || 0) - (counts.orphans || 0)),
    orphans: (counts.orphans) || 0,
    clock_warning: (s.clock && s.clock.message) || null,
    warnings: (s.warnings || []).filter((w) => !(s.clock && w === s.clock.message)),
    // to_send and to_receive are the session's totals (include/zila/session.h), in entries
    sync: idle ? null : { running: true, peer: 'hq', rows_done: done, rows_total: total, unit: 'entries' },
    // files rows refer to that are not here yet, and what is moving (#25), as the daemon counts them
    attachments: s.attachments || null,
  };
}

// Live status: GET /api/events (SSE), falling back to the last good value while it reconnects.
function useStatus(enabled) {
  const [status, setStatus] = useState(null);
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!enabled) return undefined;
    let es = null;
    let stopped = false;
    get('/status').then((s) => !stopped && setStatus(normStatus(s))).catch(() => {});
    es = new EventSource('/api/events');
    es.addEventListener('status', (ev) => {
      try {
        setStatus(normStatus(JSON.parse(ev.data)));
        setLive(true);
      } catch (e) {
        /* a malformed event is ignored; the next one replaces it */
      }
    });
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    return () => {
      stopped = true;
      es.close();
    };
  }, [enabled]);
  return [status, live];
}


function LoginPage({ onLogin }) {
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const [pw, setPw] = useState('');
  const [name, setName] = useState('');
  // On this computer the one-time link of 'zila open' logs in; from another, a password.
  const local = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(location.hostname);
  useEffect(() => {
    const tryToken = () => {
      const m = /[#&]t=([0-9a-fA-F]+)/.exec(location.hash);
      // The token is spent by this one post; take it out of the address bar and history.
      history.replaceState(null, '', '/login');
      if (!m) return;
      setBusy(true);
      post('/login', { token: m[1] })
        .then(onLogin)
        .catch((e) => {
          setBusy(false);
          setMsg(t('login.failed', { why: errText(e) }));
        });
    };
    tryToken();
    // A link opened while this page is already showing changes only the fragment.
    window.addEventListener('hashchange', tryToken);
    return () => window.removeEventListener('hashchange', tryToken);
  }, []);
  const submit = (e) => {
    e.preventDefault();
    setBusy(true);
    const body = name.trim() ? { name: name.trim().toLowerCase(), password: pw } : { password: pw };
    // The password goes in the body of a POST, never in an address.
    post('/login', body)
      .then(onLogin)
      .catch((err) => {
        setBusy(false);
        setPw('');
        // A clerk given an account often types only its password: say the name counts.
        const hint = !name.trim() && err && err.code === 'bad_password' ? ' ' + t('login.name.hint') : '';
        setMsg(t('login.failed', { why: errText(err) }) + hint);
      });
  };
  return html`<main id="main" class="login">
    <h1>${t('login.title')}</h1>
    ${busy ? html`<p role="status">${t('login.working')}</p>` : null}
    ${msg ? html`<p class="msg err" role="alert">${msg}</p>` : null}
    ${local ? html`<p>${t('login.how')}</p>
    <pre class="cmd">zila open</pre>` : html`<p>${t('login.lan')}</p>`}
    <form onSubmit=${submit} class="pwform">
      <label>${t('login.name')}
        <input type="text" autocomplete="username" autocapitalize="none" spellcheck="false" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label>${local ? t('login.password') : t('login.password.lan')}
        <input type="password" autocomplete="current-password" value=${pw} onInput=${(e) => setPw(e.target.value)} /></label>
      <button type="submit" disabled=${busy || !pw}>${t('login.submit')}</button>
    </form>
  </main>`;
}

function Nav({ path, session, status }) {
  const items = [
    ['/status', 'nav.status'],
    ['/records', 'nav.records'],
    ['/import', 'nav.import'],
    ['/review', 'nav.review'],
  ];
  if (session.role === 'hq') items.push(['/hq', 'nav.hq'], ['/devices', 'nav.devices']);
  const waiting = status ? (status.conflicts || 0) + (status.duplicates || 0) + (status.orphans || 0) : 0;
  return html`<nav aria-label="zila"><ul>
    ${items.map(([href, key]) => html`<li><${Link} href=${href} current=${path.startsWith(href)}>
      ${t(key)}${href === '/review' && waiting ? html` <span class="count" aria-label=${String(waiting)}>${waiting}</span>` : null}
    <//></li>`)}
  </ul></nav>`;
}

function App() {
  const path = useRoute();
  const [session, setSession] = useState(null);
  const [state, setState] = useState('loading'); // loading | login | ready | error
  const [err, setErr] = useState(null);
  const [lang, setLangState] = useState(getLang());
  const [status, live] = useStatus(state === 'ready');
  // Keyboard and screen-reader users land on the new page, not on the link they left.
  const section = path.split(/[/?]/)[1];
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const m = document.getElementById('main');
    if (m) m.focus({ preventScroll: true });
  }, [section]);

  const load = useCallback(() => {
    get('/session')
      .then((s) => {
        setCsrf(s.csrf);
        const saved = localStorage.getItem('zila.lang');
        const l = saved || s.lang || 'en';
        setLang(l);
        setLangState(l);
        setSession(s);
        setState('ready');
        if (path === '/' || path.startsWith('/login')) navigate('/status');
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 401) {
          setState('login');
          if (!location.pathname.startsWith('/login')) history.replaceState(null, '', '/login' + location.hash);
        } else {
          setErr(e);
          setState('error');
        }
      });
  }, []);
  useEffect(() => {
    whenLoggedOut(() => setState('login'));
    if (location.pathname.startsWith('/login') && /t=/.test(location.hash)) setState('login');
    else load();
  }, []);

  const switchLang = () => {
    const l = lang === 'hi' ? 'en' : 'hi';
    setLang(l);
    setLangState(l);
    localStorage.setItem('zila.lang', l);
    put('/session', { lang: l }).catch(() => {}); // remembered by the daemon when it can
  };
  const logout = () => post('/logout').catch(() => {}).then(() => setState('login'));

  const langBtn = html`<button class="lang" onClick=${switchLang} title=${t('lang.switch.label')} lang=${lang === 'hi' ? 'en' : 'hi'}>${t('lang.switch')}</button>`;
  if (state === 'loading') return html`<p class="loading">${t('loading')}</p>`;
  if (state === 'error') return html`<main id="main"><p class="msg err" role="alert">${errText(err)}</p></main>`;
  if (state === 'login') return html`<div class="loginwrap">${langBtn}<${LoginPage} onLogin=${() => { setState('loading'); load(); }} /></div>`;

  let page;
  const p = location.pathname;
  if (p.startsWith('/records')) page = html`<${RecordsPage} session=${session} status=${status} />`;
  else if (p.startsWith('/import')) page = html`<${ImportPage} session=${session} />`;
  else if (p.startsWith('/review')) page = html`<${ReviewPage} status=${status} />`;
  else if (p.startsWith('/hq') && session.role === 'hq') page = html`<${HqPage} status=${status} />`;
  else if (p.startsWith('/devices') && session.role === 'hq') page = html`<${DevicesPage} />`;
  else page = html`<${StatusPage} session=${session} status=${status} live=${live} />`;

  return html`<div class="shell">
    <a class="skip" href="#main">${t('nav.skip')}</a>
    <header>
      <span class="brand">zila</span>
      <span class="who">${session.device.name} · ${session.district ? session.district.name : t('role.hq')}${session.org ? ' · ' + session.org.name : ''}${session.account && session.account.name ? ' · ' + session.account.name + (session.account.role === 'viewer' ? ' (' + t('role.viewer') + ')' : '') : ''}</span>
      <span class="grow"></span>
      ${langBtn}
      <button class="plain" onClick=${logout}>${t('logout')}</button>
    </header>
    <${Nav} path=${path} session=${session} status=${status} />
    <main id="main" tabindex="-1">${page}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
