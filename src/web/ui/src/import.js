// Import a spreadsheet: choose a CSV, check the guessed column mapping, preview row by row
// (old -> new), then confirm. The rules are the server's (`zila import`'s shared code).
import { useState, useEffect } from 'preact/hooks';
import { html, Msg, Link } from './ui.js';
import { post } from './api.js';
import { t, tableLabel, colLabel, fmtNum, errText } from './i18n.js';
import { loadTables } from './records.js';

const SHOW = 200;

// The first line of a CSV: its headers (quotes and a byte-order mark allowed).
function headersOf(csv) {
  const text = csv.replace(/^\uFEFF/, '');
  const out = [];
  let f = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') { f += '"'; i++; } else if (ch === '"') q = false; else f += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { out.push(f.trim()); f = ''; }
    else if (ch === '\n' || ch === '\r') break;
    else f += ch;
  }
  out.push(f.trim());
  return out.filter((h) => h !== '');
}
// When the server cannot guess a header, a first guess from the words offices use.
const WORDS = [
  [/hindi|हिन्दी|हिंदी|local/i, 'name_local'], [/mobile|phone|फ़ोन|फोन|मोबाइल/i, 'phone'], [/booth|बूथ|unit/i, 'org_unit_id'],
  [/gender|sex|ling|लिंग/i, 'gender'], [/birth|janm|जन्म/i, 'birth_year'], [/address|pata|पता/i, 'address'],
  [/^(name|naam|नाम)$/i, 'name'], [/join/i, 'joined_on'],
];
function guess(h, names) {
  const k = h.toLowerCase().replace(/[^a-z0-9_\u0900-\u097f]+/g, ' ').trim();
  if (names.includes(k.replace(/ /g, '_'))) return k.replace(/ /g, '_');
  for (const [re, col] of WORDS) if (re.test(k) && names.includes(col)) return col;
  return '';
}

export function ImportPage({ session }) {
  const [tables, setTables] = useState(null);
  const [table, setTable] = useState('people');
  const [csv, setCsv] = useState(null);
  const [fname, setFname] = useState('');
  const [prev, setPrev] = useState(null);
  const [map, setMap] = useState(null);
  const [msg, setMsg] = useState(null);
  const [done, setDone] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    loadTables().then((ts) => setTables(ts.filter((x) => x.writable))).catch((e) => setMsg({ kind: 'err', text: errText(e) }));
  }, []);
  const tab = tables && tables.find((x) => x.name === table);

  const fields = tab ? tab.columns.filter((c) => !c.pk && !(session && session.role !== 'hq' && c.name === tab.partition)).map((c) => c.name) : [];
  const preview = (m) => {
    if (csv === null) {
      setMsg({ kind: 'err', text: t('imp.nofile') });
      return;
    }
    setBusy(true);
    setMsg(null);
    post('/import/preview', m ? { table, csv, map: m } : { table, csv })
      .then((r) => {
        setPrev(r);
        setMap(r.mapping);
      })
      .catch((e) => {
        setPrev(null);
        setMsg({ kind: 'err', text: errText(e) });
        // A header the server could not place: the clerk places it here and previews again.
        if (!m && e.status === 400) {
          const g = {};
          for (const h of headersOf(csv)) g[h] = guess(h, fields);
          setMap(g);
          setMsg({ kind: 'err', text: errText(e) + ' ' + t('imp.map.fix') });
        }
      })
      .finally(() => setBusy(false));
  };
  const commit = () => {
    setBusy(true);
    post('/import/commit', { table, csv, map })
      .then((r) => {
        setDone(r.counts);
        setPrev(null);
      })
      .catch((e) => setMsg({ kind: 'err', text: errText(e) }))
      .finally(() => setBusy(false));
  };
  const pick = (e) => {
    const f = e.target.files[0];
    setPrev(null);
    setDone(null);
    if (!f) return;
    setFname(f.name);
    setMap(null);
    f.text().then(setCsv);
  };
  const reset = () => {
    setCsv(null);
    setPrev(null);
    setDone(null);
    setFname('');
    setMsg(null);
  };

  if (done) {
    return html`<h1>${t('imp.title')}</h1>
      <p class="msg ok" role="status" data-testid="import-done">${t('imp.done', { create: fmtNum(done.create), update: fmtNum(done.update), skip: fmtNum(done.skip) })}</p>
      <p><${Link} href=${'/records/' + table} cls="button">${tableLabel(tab || { name: table })}<//>
      <button onClick=${reset}>${t('imp.again')}</button></p>`;
  }
  const counts = prev && prev.counts;
  const n = counts ? counts.create + counts.update : 0;
  return html`<h1>${t('imp.title')}</h1>
    <p class="help">${t('imp.help')}</p>
    <form class="importform" onSubmit=${(e) => { e.preventDefault(); preview(map); }}>
      <label>${t('imp.table')}
        <select value=${table} onChange=${(e) => { setTable(e.target.value); setPrev(null); setMap(null); }}>
          ${(tables || []).map((x) => html`<option value=${x.name}>${tableLabel(x)}</option>`)}
        </select></label>
      <label>${t('imp.file')} <input type="file" accept=".csv,text/csv" onChange=${pick} /></label>
      <button type="submit" class="primary" disabled=${busy}>${t('imp.preview')}</button>
    </form>
    <${Msg} m=${msg} />
    ${map ? html`
      <section aria-labelledby="h-map">
        <h2 id="h-map">${t('imp.mapping')} ${fname ? html`<small class="muted">(${fname})</small>` : null}</h2>
        <p class="help">${t('imp.mapping.help')}</p>
        <table class="grid mapping"><thead><tr><th>${t('imp.csvcol')}</th><th>${t('imp.field')}</th></tr></thead>
          <tbody>${Object.keys(map).map((h) => html`<tr><td>${h}</td><td>
            <select aria-label=${h} value=${map[h] || ''} onChange=${(e) => { const m = { ...map, [h]: e.target.value }; setMap(m); if (prev) preview(m); }}>
              <option value="">${t('imp.ignore')}</option>
              ${((prev && prev.columns) || fields).map((c) => html`<option value=${c}>${tab ? colLabel(tab.columns.find((x) => x.name === c) || { name: c }) : c}</option>`)}
            </select></td></tr>`)}</tbody></table>
        ${prev ? null : html`<p><button class="primary" disabled=${busy} onClick=${() => preview(map)}>${t('imp.preview')}</button></p>`}
      </section>` : null}
    ${prev ? html`
      <section aria-labelledby="h-rows">
        <h2 id="h-rows">${t('imp.rows')}</h2>
        <p data-testid="import-counts" class="big">${t('imp.counts', { create: fmtNum(counts.create), update: fmtNum(counts.update), skip: fmtNum(counts.skip), error: fmtNum(counts.error) })}</p>
        ${counts.error ? html`<p class="msg err" role="alert">${t('imp.has.errors')}</p>` : null}
        ${(prev.unmapped || []).filter((h) => !map || !map[h]).length ? html`<p class="msg warn" role="status" data-testid="import-unmapped">${t('imp.unmapped', { cols: prev.unmapped.filter((h) => !map || !map[h]).join(', ') })}</p>` : null}
        <div class="buttons">
          <button class="primary" disabled=${busy || counts.error > 0 || n === 0} onClick=${commit}>${t('imp.commit', { n: fmtNum(n) })}</button>
        </div>
        ${prev.rows.length > SHOW ? html`<p class="muted">${t('imp.more', { n: SHOW, total: fmtNum(prev.rows.length) })}</p>` : null}
        <table class="grid preview"><thead><tr><th>${t('imp.line')}</th><th>${t('imp.action')}</th><th>${t('imp.changes')}</th></tr></thead>
          <tbody>${prev.rows.slice(0, SHOW).map((r) => html`<tr class=${'act-' + r.action}>
            <td>${r.line}</td><td><span class=${'badge act-' + r.action}>${t('imp.act.' + r.action)}</span></td>
            <td>${r.action === 'error' ? html`<span class="bad">${r.error}</span>` : (r.changes || []).map((c) => html`<span class="chg">
              <span class="col">${tab ? colLabel(tab.columns.find((x) => x.name === c.col) || { name: c.col }) : c.col}</span>:${' '}${c.old !== null && c.old !== undefined ? html`<del>${c.old}</del> → ` : null}<ins>${c.new ?? t('rec.empty')}</ins></span>`)}</td>
          </tr>`)}</tbody></table>
      </section>` : null}`;
}
