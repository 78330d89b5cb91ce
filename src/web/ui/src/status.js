// Status, like Syncthing's: this laptop, HQ, what is not yet at HQ, what waits for review,
// laptops met, clock warnings, and a running sync's progress in rows. Live via /api/events.
import { useState } from 'preact/hooks';
import { html, Link, Msg } from './ui.js';
import { post } from './api.js';
import { t, fmtTime, fmtNum, errText } from './i18n.js';
import { AttachmentsCard } from './attach.js';

function Progress({ sync }) {
  if (!sync || !sync.running) return html`<p class="muted" data-testid="sync-idle">${t('status.sync.idle')}</p>`;
  const total = sync.rows_total || 0;
  const done = Math.min(sync.rows_done || 0, total || Infinity);
  const peer = sync.peer === 'hq' || !sync.peer ? t('status.hq') : sync.peer;
  // Honest: with no total yet, no bar pretends to know how far it is.
  return html`<div class="progress" data-testid="sync-progress">
    <p>${t('status.sync.running', { peer })}</p>
    ${total > 0
      ? html`<progress max=${total} value=${done} aria-label=${t('status.sync')}></progress>
          <p class="muted">${t(sync.unit === 'entries' ? 'status.sync.entries' : 'status.sync.rows', { done: fmtNum(done), total: fmtNum(total) })} (${Math.floor((100 * done) / total)}%)</p>`
      : html`<progress aria-label=${t('status.sync')}></progress><p class="muted">${t('status.sync.starting')}</p>`}
  </div>`;
}

export function StatusPage({ session, status, live }) {
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const syncNow = () => {
    setBusy(true);
    post('/sync', { peer: 'hq' })
      .then(() => setMsg({ kind: 'ok', text: t('status.sync.started') }))
      .catch((e) => setMsg({ kind: 'err', text: errText(e) }))
      .finally(() => setBusy(false));
  };
  if (!status) return html`<h1>${t('status.title')}</h1><p>${t('loading')}</p>`;
  const hq = status.hq || {};
  const unsent = status.unsent_to_hq || 0;
  const review = (status.conflicts || 0) + (status.duplicates || 0) + (status.orphans || 0);
  const running = status.sync && status.sync.running;
  return html`
    <div class="titlebar"><h1>${t('status.title')}</h1>
      <span class=${'live ' + (live ? 'on' : 'off')}>${live ? t('status.live') : t('status.live.lost')}</span></div>
    ${status.clock_warning ? html`<p class="msg err" role="alert"><strong>${t('status.clock')}:</strong> ${status.clock_warning}</p>` : null}
    ${(status.warnings || []).map((w) => html`<p class="msg err" role="alert"><strong>${t('status.warning')}:</strong> ${w}</p>`)}
    <div class="cards">
      <section class="card" aria-labelledby="h-laptop">
        <h2 id="h-laptop">${t('status.laptop')}</h2>
        <dl>
          <dt>${t('status.device')}</dt><dd>${session.device.name}</dd>
          <dt>${t('status.district')}</dt><dd>${session.district ? session.district.name : t('role.hq')}</dd>
          ${session.org ? html`<dt>${t('status.org')}</dt><dd>${session.org.name}</dd>` : null}
        </dl>
      </section>
      <section class="card" aria-labelledby="h-hq">
        <h2 id="h-hq">${t('status.hq')}</h2>
        ${session.role === 'hq'
          ? html`<p class="good" data-testid="hq-reach">${t('status.hq.self')}</p>`
          : html`<p class=${hq.reachable ? 'good' : 'bad'} data-testid="hq-reach">${hq.reachable ? t('status.hq.reachable') : t('status.hq.unreachable')}</p>`}
        ${session.role === 'hq' ? null : html`<dl>
          <dt>${t('status.hq.last')}</dt><dd data-testid="hq-last">${fmtTime(hq.last_sync_at)}</dd>
          ${hq.next_attempt_at ? html`<dt>${t('status.hq.next')}</dt><dd>${fmtTime(hq.next_attempt_at)}</dd>` : null}
          ${hq.last_error ? html`<dt>${t('status.hq.error')}</dt><dd>${hq.last_error}</dd>` : null}
        </dl>`}
      </section>
      <section class="card" aria-labelledby="h-pending">
        <h2 id="h-pending">${t('status.pending')}</h2>
        <p class=${unsent ? 'warn big' : 'good'} data-testid="unsent">${unsent ? t('status.pending.some', { n: fmtNum(unsent) }) : t('status.pending.none')}</p>
        ${status.refused_by_hq ? html`<p class="bad">${t('status.refused', { n: fmtNum(status.refused_by_hq) })}</p>` : null}
      </section>
      <section class="card" aria-labelledby="h-review">
        <h2 id="h-review">${t('status.review')}</h2>
        <dl class="counts">
          <dt>${t('status.conflicts')}</dt><dd data-testid="n-conflicts">${fmtNum(status.conflicts)}</dd>
          <dt>${t('status.duplicates')}</dt><dd>${fmtNum(status.duplicates)}</dd>
          <dt>${t('status.orphans')}</dt><dd>${fmtNum(status.orphans)}</dd>
        </dl>
        ${review ? html`<${Link} href="/review" cls="button">${t('status.review.go')}<//>` : null}
      </section>
    </div>
    <section class="card wide" aria-labelledby="h-sync">
      <h2 id="h-sync">${t('status.sync')}</h2>
      <${Progress} sync=${status.sync} />
      <button class="primary" onClick=${syncNow} disabled=${busy || running}>${t('status.sync.now')}</button>
      <${Msg} m=${msg} />
    </section>
    <${AttachmentsCard} att=${status.attachments} />
    <section class="card wide" aria-labelledby="h-peers">
      <h2 id="h-peers">${t('status.peers')}</h2>
      ${status.peers && status.peers.length
        ? html`<table class="grid"><thead><tr><th>${t('status.peer.name')}</th><th>${t('status.peer.district')}</th>
            <th>${t('status.peer.seen')}</th><th>${t('status.peer.synced')}</th></tr></thead>
            <tbody>${status.peers.map((p) => html`<tr><td>${p.name}</td><td>${p.district || ''}</td>
              <td>${fmtTime(p.last_seen_at)}</td><td>${fmtTime(p.last_sync_at)}</td></tr>`)}</tbody></table>`
        : html`<p class="muted">${t('status.peers.none')}</p>`}
    </section>`;
}
