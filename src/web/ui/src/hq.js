// HQ: progress per district (sign-ups against target over the drive as an SVG chart,
// booth-agent and committee coverage, reports in), the list behind every number, and the
// devices page (invite code as text and QR, revocation) with export.
import { useState, useEffect } from 'preact/hooks';
import qrcode from 'qrcode-generator';
import { html, Msg } from './ui.js';
import { get, post, qs } from './api.js';
import { t, tableLabel, colLabel, choiceLabel, fmtTime, fmtNum, errText } from './i18n.js';
import { loadTables } from './records.js';

// series[].signups is the running total on that day (see NEEDS.md).
function Chart({ d }) {
  const W = 380, H = 150, L = 40, B = 22, T = 10, R = 8;
  const s = d.series || [];
  const max = Math.max(d.target || 0, d.signups || 0, ...s.map((p) => p.signups), 1);
  const n = Math.max(s.length - 1, 1);
  const x = (i) => L + ((W - L - R) * i) / n;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const pts = s.map((p, i) => `${x(i).toFixed(1)},${y(p.signups).toFixed(1)}`).join(' ');
  const label = t('hq.chart', { district: d.name, n: fmtNum(d.signups), target: fmtNum(d.target) });
  return html`<svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label} data-signups=${d.signups}>
    <title>${label}</title>
    <line x1=${L} y1=${y(0)} x2=${W - R} y2=${y(0)} class="axis" />
    <line x1=${L} y1=${T} x2=${L} y2=${y(0)} class="axis" />
    <text x=${L - 4} y=${y(0)} class="tick" text-anchor="end">0</text>
    <text x=${L - 4} y=${y(max) + 8} class="tick" text-anchor="end">${fmtNum(max)}</text>
    ${d.target ? html`<line x1=${L} y1=${y(d.target)} x2=${W - R} y2=${y(d.target)} class="target" />
      <text x=${W - R} y=${y(d.target) - 3} class="tick" text-anchor="end">${t('hq.target')} ${fmtNum(d.target)}</text>` : null}
    ${s.length > 1 ? html`<polyline points=${pts} class="line" />` : null}
    ${s.length ? html`<circle cx=${x(s.length - 1)} cy=${y(s[s.length - 1].signups)} r="3" class="dot" />` : null}
    ${s.length ? html`<text x=${L} y=${H - 6} class="tick">${s[0].day}</text>
      <text x=${W - R} y=${H - 6} class="tick" text-anchor="end">${s[s.length - 1].day}</text>` : null}
  </svg>`;
}

function Bar({ n, of, label, onShow }) {
  const pct = of ? Math.round((100 * n) / of) : 0;
  return html`<div class="bar">
    <div class="barlabel"><span>${label}</span>
      <button class="link" onClick=${onShow} title=${t('hq.show')}>${t('hq.of', { n: fmtNum(n), target: fmtNum(of) })} (${pct}%)</button></div>
    <div class="track" role="progressbar" aria-valuemin="0" aria-valuemax=${of} aria-valuenow=${n} aria-label=${label}><div class="fill" style=${`width:${pct}%`}></div></div>
  </div>`;
}

function ListBehind({ sel, onClose }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    setData(null);
    get('/hq/list' + qs({ metric: sel.metric, district: sel.district.id })).then(setData).catch(setErr);
  }, [sel.metric, sel.district.id]);
  return html`<section class="card wide listbehind" aria-labelledby="h-list" data-testid="hq-list">
    <div class="titlebar"><h2 id="h-list">${t('hq.list.title', { what: t('hq.list.' + sel.metric), district: sel.district.name })}</h2>
      <span class="grow"></span><button onClick=${onClose}>${t('hq.list.close')}</button></div>
    ${err ? html`<p class="msg err">${errText(err)}</p>` : !data ? html`<p>${t('loading')}</p>` : !data.rows.length ? html`<p>${t('hq.list.empty')}</p>`
      : html`<table class="grid"><thead><tr>${data.columns.map((c) => html`<th>${colLabel({ name: c })}</th>`)}</tr></thead>
        <tbody>${data.rows.map((r) => html`<tr>${(Array.isArray(r) ? r : data.columns.map((c) => r[c])).map((v) => html`<td>${v ?? ''}</td>`)}</tr>`)}</tbody></table>`}
  </section>`;
}

export function HqPage({ status }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  const [sel, setSel] = useState(null);
  // Every status event that moves a peer's last sync means new rows may have arrived.
  const stamp = status ? JSON.stringify((status.peers || []).map((p) => p.last_sync_at)) + (status.sync ? status.sync.running : '') : '';
  useEffect(() => {
    get('/hq/progress').then(setData).catch(setErr);
  }, [stamp]);
  if (err) return html`<h1>${t('hq.title')}</h1><p class="msg err">${errText(err)}</p>`;
  if (!data) return html`<h1>${t('hq.title')}</h1><p>${t('loading')}</p>`;
  return html`<h1>${t('hq.title')}</h1>
    ${sel ? html`<${ListBehind} sel=${sel} onClose=${() => setSel(null)} />` : null}
    <div class="districts">${data.districts.map((d) => {
      // API.md's zila report figures (reports_due/submitted, bearers_*) or the stand-in's
      const reports = d.reports_due !== undefined ? t('hq.of', { n: fmtNum(d.reports_submitted), target: fmtNum(d.reports_due) }) : fmtNum(d.reports);
      const reportsMetric = d.reports_due !== undefined ? 'reports_missing' : 'reports';
      const inactive = d.inactive_bearers !== undefined ? d.inactive_bearers : (d.bearers_inactive || 0) + (d.bearers_to_replace || 0);
      return html`<section class="card district" aria-labelledby=${'d-' + d.id} data-district=${d.name}>
      <div class="titlebar"><h2 id=${'d-' + d.id}>${d.name}</h2><span class="grow"></span>
        <span class="muted">${t('hq.lastsync')}: ${d.last_sync_at !== undefined ? fmtTime(d.last_sync_at) : d.last_sync || t('status.never')}</span></div>
      <p><strong>${t('hq.signups')}:</strong> <button class="link" data-testid="signups" onClick=${() => setSel({ metric: 'signups', district: d })}>${t('hq.of', { n: fmtNum(d.signups), target: fmtNum(d.target) })}</button></p>
      <${Chart} d=${d} />
      <${Bar} n=${d.booths_with_agent} of=${d.booths} label=${t('hq.agents')} onShow=${() => setSel({ metric: 'booths_without_agent', district: d })} />
      <${Bar} n=${d.booths_with_committee} of=${d.booths} label=${t('hq.committees')} onShow=${() => setSel({ metric: 'booths_without_committee', district: d })} />
      <p class="row"><span>${t('hq.reports')}: <button class="link" onClick=${() => setSel({ metric: reportsMetric, district: d })}>${reports}</button></span>
        <span>${t('hq.list.inactive_bearers')}: <button class="link" data-testid="inactive" onClick=${() => setSel({ metric: 'inactive_bearers', district: d })}>${fmtNum(inactive)}</button></span></p>
    </section>`;
    })}</div>`;
}

function Qr({ text }) {
  const q = qrcode(0, 'M');
  q.addData(text);
  q.make();
  const n = q.getModuleCount();
  let d = '';
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (q.isDark(r, c)) d += `M${c + 4},${r + 4}h1v1h-1z`;
  return html`<svg class="qr" viewBox=${`0 0 ${n + 8} ${n + 8}`} role="img" aria-label=${t('dev.invite.qr')} shape-rendering="crispEdges">
    <rect width="100%" height="100%" fill="#fff" /><path d=${d} fill="#000" /></svg>`;
}

export function DevicesPage() {
  const [devs, setDevs] = useState(null);
  const [districts, setDistricts] = useState([]);
  const [tables, setTables] = useState([]);
  const [district, setDistrict] = useState('');
  const [code, setCode] = useState(null);
  const [ask, setAsk] = useState(null);
  const [msg, setMsg] = useState(null);
  const [exp, setExp] = useState('people');
  const load = () => get('/devices').then((r) => setDevs(r.devices)).catch((e) => setMsg({ kind: 'err', text: errText(e) }));
  useEffect(() => {
    load();
    get('/tables/districts/rows' + qs({ limit: 200, sort: 'name' })).then((r) => {
      setDistricts(r.rows);
      if (r.rows.length) setDistrict(r.rows[0].id);
    }).catch(() => {});
    loadTables().then(setTables).catch(() => {});
  }, []);
  const invite = (e) => {
    e.preventDefault();
    post('/devices/invite', { district }).then((r) => setCode(r.code)).catch((er) => setMsg({ kind: 'err', text: errText(er) }));
  };
  const revoke = (d) => post('/devices/revoke', { id: d.id })
    .then(() => { setAsk(null); setMsg({ kind: 'ok', text: t('dev.revoked.done', { name: d.name }) }); load(); })
    .catch((er) => setMsg({ kind: 'err', text: errText(er) }));
  return html`<h1>${t('dev.title')}</h1>
    <${Msg} m=${msg} />
    ${ask ? html`<div class="confirm" role="alertdialog" aria-label=${t('dev.revoke')}>
      <p>${t('dev.revoke.confirm', { name: ask.name })}</p>
      <button class="danger" onClick=${() => revoke(ask)}>${t('dev.revoke.yes')}</button>
      <button onClick=${() => setAsk(null)}>${t('rec.cancel')}</button></div>` : null}
    ${devs ? html`<table class="grid"><thead><tr><th>${t('dev.name')}</th><th>${t('dev.district')}</th><th>${t('dev.role')}</th>
        <th>${t('dev.lastsync')}</th><th>${t('dev.state')}</th><th></th></tr></thead>
      <tbody>${devs.map((d) => html`<tr><td>${d.name}</td><td>${d.district || ''}</td><td>${choiceLabel(d.role)}</td><td>${d.last_sync_at !== undefined ? fmtTime(d.last_sync_at) : ''}</td>
        <td>${d.revoked ? html`<span class="badge bad">${t('dev.revoked')}</span>` : t('dev.active')}</td>
        <td>${d.revoked || d.role === 'hq' ? null : html`<button class="danger" onClick=${() => setAsk(d)}>${t('dev.revoke')}</button>`}</td></tr>`)}</tbody></table>`
      : html`<p>${t('loading')}</p>`}
    <div class="cards">
      <section class="card" aria-labelledby="h-inv">
        <h2 id="h-inv">${t('dev.invite')}</h2>
        <p class="help">${t('dev.invite.help')}</p>
        <form class="inline" onSubmit=${invite}>
          <label>${t('dev.district')} <select value=${district} onChange=${(e) => setDistrict(e.target.value)}>
            ${districts.map((d) => html`<option value=${d.id}>${d.name}</option>`)}</select></label>
          <button type="submit" class="primary">${t('dev.invite.make')}</button>
        </form>
        ${code ? html`<div class="invite"><p>${t('dev.invite.code')}:</p><pre class="cmd" data-testid="invite-code">${code}</pre><${Qr} text=${code} /></div>` : null}
      </section>
      <section class="card" aria-labelledby="h-exp">
        <h2 id="h-exp">${t('hq.export')}</h2>
        <p class="help">${t('hq.export.help')}</p>
        <div class="inline"><label>${t('hq.export.table')} <select value=${exp} onChange=${(e) => setExp(e.target.value)}>
          ${tables.map((x) => html`<option value=${x.name}>${tableLabel(x)}</option>`)}</select></label>
        <a class="button" href=${'/api/export' + qs({ table: exp })} download>${t('rec.export')}</a></div>
      </section>
    </div>`;
}
