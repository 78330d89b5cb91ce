// Attachments (#25, API.md "Attachments"): a record's photos and scanned forms, with what is
// here of each, added from the page (shrunk when asked), shown and downloaded; and on the
// status page the files not here yet and what is moving.
import { useState, useEffect } from 'preact/hooks';
import { html, Msg } from './ui.js';
import { api, get, post, qs } from './api.js';
import { t, fmtNum, errText } from './i18n.js';

export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return fmtNum(n) + ' B';
  if (n < 1024 * 1024) return fmtNum(Math.round(n / 1024)) + ' KB';
  return (n / (1024 * 1024)).toFixed(1) + ' MB';
}

function State({ a }) {
  if (a.state === 'here') return html`<span class="badge good" data-testid="att-state">${t('att.here')}</span>`;
  if (a.state === 'partial') return html`<span class="badge warn" data-testid="att-state">${t('att.partial', { p: a.percent })}</span>`;
  return html`<span class="badge bad" data-testid="att-state">${t('att.missing')}</span>`;
}

const isPhoto = (a) => /^image\/(jpeg|png|gif|webp)$/.test(a.media_type);
const contentUrl = (a, dl) => `/api/attachments/${encodeURIComponent(a.id)}/content${dl ? '?download=1' : ''}`;

// A refusal in the page's language: the daemon's words in English, ours (with the numbers) in Hindi.
function uploadError(e, name, max) {
  if (e.code === 'too_big') return t('att.err.too_big', { name, max: fmtBytes(e.body.limit || max) });
  if (e.code === 'quota') return t('att.err.quota', { name });
  if (e.code === 'damaged') return t('att.err.damaged', { name });
  return errText(e);
}

export function Attachments({ tab, id, session, writable }) {
  const [list, setList] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const conf = session.attach || { max_bytes: 10485760, shrink: false, can_shrink: false };
  const [shrink, setShrink] = useState(!!conf.shrink && !!conf.can_shrink);
  const load = () =>
    get('/attachments' + qs({ table: tab.name, id }))
      .then((r) => setList(r.attachments))
      .catch((e) => setMsg({ kind: 'err', text: errText(e) }));
  useEffect(() => {
    setList(null);
    setMsg(null);
    load();
  }, [tab.name, id]);
  const send = (e) => {
    e.preventDefault();
    const input = e.target.querySelector('input[type=file]');
    const file = input && input.files && input.files[0];
    if (!file) return;
    const jpeg = /\.jpe?g$/i.test(file.name) || file.type === 'image/jpeg';
    // A photo to be shrunk may be larger than the limit: the daemon checks what it keeps.
    if (file.size > conf.max_bytes && !(shrink && jpeg)) {
      setMsg({ kind: 'err', text: t('att.err.too_big', { name: file.name, max: fmtBytes(conf.max_bytes) }) });
      return;
    }
    setBusy(true);
    setMsg({ kind: 'ok', text: t('att.uploading') });
    api('POST', '/attachments' + qs({ table: tab.name, id, name: file.name, type: file.type, shrink: shrink ? '1' : '0' }), file)
      .then((r) => {
        const s = r.shrink || {};
        const a = r.attachment || {};
        setMsg({ kind: 'ok', text: s.done ? t('att.shrunk', { name: a.name, from: fmtBytes(s.original_size || a.original_size), to: fmtBytes(a.size) })
          : s.asked ? t('att.kept', { name: a.name }) + ' ' + (s.why ? t('att.why.' + s.why) : s.note) : t('att.added', { name: a.name }) });
        input.value = '';
        load();
      })
      .catch((er) => setMsg({ kind: 'err', text: uploadError(er, file.name, conf.max_bytes) }))
      .finally(() => setBusy(false));
  };
  const fetchIt = (a) =>
    post(`/attachments/${encodeURIComponent(a.id)}/fetch`)
      .then(() => post('/sync', {}).catch(() => {}))
      .then(() => setMsg({ kind: 'ok', text: t('att.asked') }))
      .catch((e) => setMsg({ kind: 'err', text: errText(e) }));
  return html`<section class="attachments" aria-labelledby="att-title">
    <h3 id="att-title">${t('att.title')}</h3>
    ${list === null ? html`<p class="muted">${t('loading')}</p>` : list.length === 0 ? html`<p class="muted" data-testid="att-none">${t('att.none')}</p>`
      : html`<ul class="att-list">${list.map((a) => html`<li data-testid="att-item">
          ${a.state === 'here' && isPhoto(a) ? html`<a href=${contentUrl(a)} target="_blank" rel="noopener"><img class="thumb" src=${contentUrl(a)} alt=${a.name} loading="lazy" /></a>` : null}
          <span class="att-name">${a.name}</span> <span class="muted">${fmtBytes(a.size)}</span> <${State} a=${a} />
          ${a.state === 'here' ? html` <a href=${contentUrl(a)} target="_blank" rel="noopener">${t('att.view')}</a>${' · '}<a href=${contentUrl(a, true)} download=${a.name}>${t('att.download')}</a>`
            : a.asked ? html` <span class="muted">${t('att.asked')}</span>`
              : html` <button type="button" onClick=${() => fetchIt(a)}>${t('att.fetch')}</button>`}
        </li>`)}</ul>`}
    ${writable ? html`<form class="att-add" onSubmit=${send}>
      <label>${t('att.add')} <input type="file" name="file" accept="image/*,application/pdf" data-testid="att-file" /></label>
      <label class="check"><input type="checkbox" checked=${shrink} disabled=${!conf.can_shrink}
        onChange=${(e) => setShrink(e.target.checked)} data-testid="att-shrink" /> ${t('att.shrink')}</label>
      <button type="submit" disabled=${busy}>${t('att.upload')}</button>
    </form>` : null}
    <${Msg} m=${msg} />
  </section>`;
}

// The status page's card: files rows refer to that are not here yet, and what is moving.
export function AttachmentsCard({ att }) {
  const [missing, setMissing] = useState(null);
  const n = att ? att.missing || 0 : 0;
  useEffect(() => {
    if (!att) return;
    get('/attachments?missing=1').then((r) => setMissing(r.attachments)).catch(() => setMissing(null));
  }, [n]); // listing verifies partial copies: only when the count changes, not at every chunk
  if (!att) return null;
  const moving = att.moving_bytes || 0;
  const moved = att.moved_bytes || 0;
  return html`<section class="card wide" aria-labelledby="h-att">
    <h2 id="h-att">${t('status.att')}</h2>
    <p class=${n ? 'warn' : 'good'} data-testid="att-missing">${n ? t('status.att.missing', { n: fmtNum(n), size: fmtBytes(att.missing_bytes) })
      : t('status.att.none', { n: fmtNum(att.referenced || 0) })}</p>
    ${moving + moved > 0 ? html`<div class="progress" data-testid="att-moving">
      <progress max=${moving + moved} value=${moved} aria-label=${t('status.att')}></progress>
      <p class="muted">${t('status.att.moving', { done: fmtBytes(moved), total: fmtBytes(moving + moved) })}
        (${Math.floor((100 * moved) / (moving + moved))}%)</p></div>` : null}
    ${missing && missing.length ? html`<table class="grid"><thead><tr><th>${t('status.att.name')}</th><th>${t('status.att.size')}</th>
        <th>${t('status.att.state')}</th></tr></thead>
      <tbody>${missing.map((a) => html`<tr><td>${a.name}</td><td>${fmtBytes(a.size)}</td><td><${State} a=${a} /></td></tr>`)}</tbody></table>` : null}
  </section>`;
}
