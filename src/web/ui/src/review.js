// Review: conflicts, duplicates and orphans side by side, each resolved with one click; the
// resolution is an entry like any edit and travels (server: the store calls of the CLI).
import { useState, useEffect } from 'preact/hooks';
import { html, Msg } from './ui.js';
import { get, post } from './api.js';
import { t, tableLabel, colLabel, fmtTime, errText } from './i18n.js';

function val(v) {
  return v === null || v === undefined || v === '' ? t('rec.empty') : String(v);
}
function Values({ values }) {
  if (!values) return null;
  return html`<dl class="vals">${Object.entries(values).map(([k, v]) => html`<dt>${colLabel({ name: k })}</dt><dd>${val(v)}</dd>`)}</dl>`;
}

export function ReviewPage({ status }) {
  const [data, setData] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = () => get('/review').then(setData).catch((e) => setMsg({ kind: 'err', text: errText(e) }));
  const waiting = status ? (status.conflicts || 0) + (status.duplicates || 0) + (status.orphans || 0) : null;
  useEffect(() => { load(); }, [waiting]);
  const resolve = (body) => {
    setBusy(true);
    post('/review/resolve', body)
      .then(() => {
        setMsg({ kind: 'ok', text: t('rev.done') });
        return load();
      })
      .catch((e) => setMsg({ kind: 'err', text: errText(e) }))
      .finally(() => setBusy(false));
  };
  if (!data) return html`<h1>${t('rev.title')}</h1><${Msg} m=${msg} /><p>${msg ? '' : t('loading')}</p>`;
  const invalid = data.invalid || [];
  const none = !data.conflicts.length && !data.duplicates.length && !data.orphans.length && !invalid.length;
  const tl = (name) => tableLabel({ name });
  return html`<h1>${t('rev.title')}</h1>
    <p class="help">${t('rev.help')}</p>
    <${Msg} m=${msg} />
    ${none ? html`<p class="good big" data-testid="review-none">${t('rev.none')}</p>` : null}
    ${data.conflicts.length ? html`<section aria-labelledby="h-conf"><h2 id="h-conf">${t('rev.conflicts')}</h2>
      ${data.conflicts.map((c) => html`<article class="pair" data-testid="conflict">
        <h3>${tl(c.table)}: ${c.row_label || c.row} — ${colLabel({ name: c.col })}</h3>
        <div class="sides">
          <div class="side"><h4>${t('rev.kept')}</h4><p class="v">${val(c.kept.value)}</p>
            <p class="muted">${t('rev.by', { device: c.kept.device, when: fmtTime(c.kept.when) })}</p>
            <button disabled=${busy} onClick=${() => resolve({ kind: 'conflict', id: c.id, choice: 'kept' })}>${t('rev.keep')}</button></div>
          <div class="side"><h4>${t('rev.lost')}</h4><p class="v">${val(c.lost.value)}</p>
            <p class="muted">${t('rev.by', { device: c.lost.device, when: fmtTime(c.lost.when) })}</p>
            <button disabled=${busy} onClick=${() => resolve({ kind: 'conflict', id: c.id, choice: 'lost' })}>${t('rev.keep')}</button></div>
        </div></article>`)}</section>` : null}
    ${data.duplicates.length ? html`<section aria-labelledby="h-dup"><h2 id="h-dup">${t('rev.duplicates')}</h2>
      ${data.duplicates.map((d) => html`<article class="pair" data-testid="duplicate">
        <h3>${tl(d.table)}</h3>
        <div class="sides">
          <div class="side"><h4>${t('rev.holder')}</h4><${Values} values=${d.holder_values} /></div>
          <div class="side"><h4>${t('rev.dup')}</h4><${Values} values=${d.values} /></div>
        </div>
        <div class="buttons"><button disabled=${busy || !d.holder_values} onClick=${() => resolve({ kind: 'duplicate', id: d.id, choice: 'merge' })}>${t('rev.merge')}</button>
        <button disabled=${busy} class="danger" onClick=${() => resolve({ kind: 'duplicate', id: d.id, choice: 'drop' })}>${t('rev.drop.dup')}</button></div>
      </article>`)}</section>` : null}
    ${data.orphans.length ? html`<section aria-labelledby="h-orph"><h2 id="h-orph">${t('rev.orphans')}</h2>
      ${data.orphans.map((o) => html`<article class="pair" data-testid="orphan">
        <h3>${tl(o.table)} — ${o.col ? t('rev.missing', { what: colLabel({ name: o.col }) }) : t('rev.missing.any')}</h3>
        <${Values} values=${o.values} />
        <button disabled=${busy} onClick=${() => resolve({ kind: 'orphan', id: o.id, choice: 'drop' })}>${t('rev.drop')}</button>
      </article>`)}</section>` : null}
    ${invalid.length ? html`<section aria-labelledby="h-inv"><h2 id="h-inv">${t('rev.invalid')}</h2>
      ${invalid.map((o) => html`<article class="pair" data-testid="invalid">
        <h3>${tl(o.table)}</h3>
        <${Values} values=${o.values} />
        <button disabled=${busy} onClick=${() => resolve({ kind: 'invalid', id: o.id, choice: 'drop' })}>${t('rev.drop')}</button>
      </article>`)}</section>` : null}`;
}
