// Small shared pieces: the htm template tag bound to Preact, links that route in the page,
// the per-record sync badge and message lines.
import { h } from 'preact';
import htm from 'htm';
import { t } from './i18n.js';

export const html = htm.bind(h);

export function navigate(path) {
  if (location.pathname + location.search !== path) history.pushState(null, '', path);
  window.dispatchEvent(new Event('zila-route'));
}

export function Link({ href, children, cls, current }) {
  const click = (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} class=${cls} aria-current=${current ? 'page' : undefined} onClick=${click}>${children}</a>`;
}

export function SyncBadge({ state }) {
  if (!state) return null;
  return html`<span class=${'badge sync-' + state} data-sync=${state}>${t('sync.' + state)}</span>`;
}

// kind: ok | err | info
export function Msg({ m }) {
  if (!m) return null;
  return html`<p class=${'msg ' + m.kind} role=${m.kind === 'err' ? 'alert' : 'status'}>${m.text}</p>`;
}
