// Records of every synced table, with forms made from /api/tables (the replica's schema):
// list, search, filter and page on the server; view, add, edit, delete; sync state and
// history per record. Nothing here knows a table by name.
import { Attachments } from './attach.js';
import { useState, useEffect, useRef } from 'preact/hooks';
import { html, Link, navigate, SyncBadge, Msg } from './ui.js';
import { get, post, put, del, qs } from './api.js';
import { t, tableLabel, colLabel, choiceLabel, fmtTime, fmtNum, errText } from './i18n.js';

const PAGE = 50;
let tablesCache = null;

export function loadTables() {
  if (!tablesCache) tablesCache = get('/tables').then((r) => r.tables).catch((e) => { tablesCache = null; throw e; });
  return tablesCache;
}

// A column's SQL default as a form's first value: 'text' and numbers; an expression (a
// generated id, a time) is left to the database.
function literal(d) {
  if (d === null || d === undefined) return undefined;
  if (/^'.*'$/.test(d)) return d.slice(1, -1).replace(/''/g, "'");
  if (/^-?\d+(\.\d+)?$/.test(d)) return d;
  return undefined;
}

function isDate(col) {
  return col.type === 'TEXT' && (/_on$/.test(col.name) || col.name === 'since' || col.name === 'deadline');
}
// Columns a person fills in: not the key, not the partition on a district laptop.
function formCols(tab, session) {
  return tab.columns.filter((c) => !c.pk && !(session.role !== 'hq' && c.name === tab.partition));
}
function listCols(tab, session) {
  return formCols(tab, session).slice(0, 5);
}
function shown(row, col) {
  const v = row[col.name];
  if (v === null || v === undefined || v === '') return '';
  if (col.fk) return (row._labels && row._labels[col.name]) || v;
  if (col.choices) return choiceLabel(v);
  return String(v);
}

// A foreign-key field: a search box and a dropdown of names from /options (never an id).
export function FkSelect({ table, col, value, label, onChange, id, allowAny, required }) {
  const [q, setQ] = useState('');
  const [opts, setOpts] = useState([]);
  const timer = useRef(null);
  useEffect(() => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      get(`/tables/${table}/options/${col.name}` + qs({ q, limit: 50 }))
        .then((r) => setOpts(r.options || []))
        .catch(() => setOpts([]));
    }, q ? 200 : 0);
    return () => clearTimeout(timer.current);
  }, [q, table, col.name]);
  const list = opts.slice();
  if (value && !list.some((o) => o.id === value)) list.unshift({ id: value, label: label || value });
  return html`<span class="fk">
    <input type="search" class="fkq" placeholder=${t('rec.find')} value=${q} aria-label=${colLabel(col) + ': ' + t('rec.find')}
      onInput=${(e) => setQ(e.target.value)} />
    <select id=${id} value=${value || ''} required=${required} onChange=${(e) => {
      const o = list.find((x) => x.id === e.target.value);
      onChange(e.target.value || null, o ? o.label : '');
    }}>
      <option value="">${allowAny ? t('rec.filter.any') : required ? t('rec.choose') : t('rec.none')}</option>
      ${list.map((o) => html`<option value=${o.id}>${o.label}</option>`)}
    </select>
    ${opts.length >= 50 ? html`<small class="muted">${t('rec.more')}</small>` : null}
  </span>`;
}

function Field({ tab, col, value, label, onChange, error }) {
  const id = 'f-' + col.name;
  const required = col.notnull && col.default === null;
  let input;
  if (col.fk) {
    input = html`<${FkSelect} table=${tab.name} col=${col} value=${value} label=${label} id=${id} required=${required}
      onChange=${(v, l) => onChange(v, l)} />`;
  } else if (col.choices) {
    input = html`<select id=${id} value=${value ?? ''} onChange=${(e) => onChange(e.target.value || null)}>
      <option value="">${required ? t('rec.choose') : t('rec.none')}</option>
      ${col.choices.map((c) => html`<option value=${c}>${choiceLabel(c)}</option>`)}
    </select>`;
  } else if (col.type === 'INTEGER' || col.type === 'REAL') {
    input = html`<input id=${id} type="number" step=${col.type === 'INTEGER' ? '1' : 'any'} min=${col.min ?? undefined}
      max=${col.max ?? undefined} value=${value ?? ''} onInput=${(e) => onChange(e.target.value === '' ? null : e.target.value)} />`;
  } else {
    input = html`<input id=${id} aria-required=${required ? 'true' : undefined} type=${isDate(col) ? 'date' : col.name === 'phone' ? 'tel' : 'text'} value=${value ?? ''}
      lang=${col.name === 'name_local' ? 'hi' : undefined} onInput=${(e) => onChange(e.target.value === '' ? null : e.target.value)} />`;
  }
  return html`<div class=${'field' + (error ? ' bad' : '') + (col.fk ? ' wide' : '')}>
    <label for=${id}>${colLabel(col)}</label>${required ? html`<span class="req" title=${t('rec.required')}> *</span>` : ''}
    ${input}
    ${error ? html`<span class="ferr" role="alert">${error}</span>` : null}
  </div>`;
}

// Plain-words checks before the server's (which stay the rule): required, whole number, range.
function check(cols, vals) {
  for (const c of cols) {
    const v = vals[c.name];
    const name = colLabel(c);
    if ((v === null || v === undefined || v === '') && c.notnull && c.default === null) return [c.name, t('err.required', { field: name })];
    if (v === null || v === undefined || v === '') continue;
    if (c.type === 'INTEGER' && !/^-?\d+$/.test(String(v))) return [c.name, t('err.integer', { field: name })];
    if (c.type === 'REAL' && Number.isNaN(Number(v))) return [c.name, t('err.number', { field: name })];
    if (c.min !== null && c.min !== undefined && Number(v) < c.min) return [c.name, t('err.min', { field: name, n: c.min })];
    if (c.max !== null && c.max !== undefined && Number(v) > c.max) return [c.name, t('err.max', { field: name, n: c.max })];
  }
  return null;
}

function History({ items }) {
  if (!items || !items.length) return html`<p class="muted">${t('rec.history.none')}</p>`;
  return html`<ol class="history">${items.map((h) => html`<li>
    <div><strong>${fmtTime(h.when)}</strong> <span class="muted">${t('rec.history.by', { device: h.device })}</span>
      ${h.op === 'delete' ? html` <span class="badge bad">${t('rec.deleted.row')}</span>` : null}</div>
    <ul>${(h.changes || []).map((c) => {
      // a foreign key's id shows as its label (API.md: changes[]._labels)
      const lb = c._labels || {};
      return html`<li><span class="col">${colLabel({ name: c.col })}</span>:${' '}<del>${lb.old ?? c.old ?? t('rec.empty')}</del> → <ins>${lb.new ?? c.new ?? t('rec.empty')}</ins></li>`;
    })}</ul>
  </li>`)}</ol>`;
}

function Editor({ tab, session, id, onDone, onSaved }) {
  const cols = formCols(tab, session);
  const [vals, setVals] = useState({});
  const [labels, setLabels] = useState({});
  const [rec, setRec] = useState(null);
  const [err, setErr] = useState(null); // [field, text]
  const [msg, setMsg] = useState(null);
  const [confirmDel, setConfirmDel] = useState(false);
  const first = useRef(null);
  const load = () => {
    if (!id) {
      const init = {};
      for (const c of cols) if (literal(c.default) !== undefined) init[c.name] = literal(c.default);
      setVals(init);
      setRec({ row: {}, history: [] });
      return;
    }
    get(`/tables/${tab.name}/rows/${encodeURIComponent(id)}`)
      .then((r) => {
        setRec(r);
        setVals({ ...r.row });
        setLabels({ ...(r._labels || r.row._labels || {}) });
      })
      .catch((e) => setMsg({ kind: 'err', text: errText(e) }));
  };
  useEffect(() => {
    setVals({});
    setLabels({});
    setErr(null);
    setMsg(null);
    setConfirmDel(false);
    load();
  }, [tab.name, id]);
  useEffect(() => {
    if (rec && first.current) {
      const f = first.current.querySelector('input,select');
      if (f) f.focus();
    }
  }, [rec && !!rec.row]);
  const set = (name, v, l) => {
    setVals((o) => ({ ...o, [name]: v }));
    if (l !== undefined) setLabels((o) => ({ ...o, [name]: l }));
  };
  const save = (e) => {
    e.preventDefault();
    const bad = check(cols, vals);
    if (bad) {
      setErr(bad);
      return;
    }
    setErr(null);
    const body = {};
    for (const c of cols) {
      let v = vals[c.name];
      if (v === undefined) continue;
      if (id && rec && rec.row[c.name] === v) continue;
      if (v !== null && c.type === 'INTEGER') v = parseInt(v, 10);
      if (v !== null && c.type === 'REAL') v = Number(v);
      body[c.name] = v;
    }
    const p = id ? put(`/tables/${tab.name}/rows/${encodeURIComponent(id)}`, body) : post(`/tables/${tab.name}/rows`, body);
    p.then((r) => {
      const nid = id || (r.row && r.row.id);
      onSaved(nid, id ? 'rec.saved' : 'rec.created');
      if (id) load();
    }).catch((er) => {
      if (er.field) setErr([er.field, errText(er)]);
      else setMsg({ kind: 'err', text: errText(er) });
    });
  };
  const remove = () => {
    del(`/tables/${tab.name}/rows/${encodeURIComponent(id)}`)
      .then(() => onSaved(null, 'rec.deleted'))
      .catch((er) => setMsg({ kind: 'err', text: errText(er) }));
  };
  if (!rec) return html`<aside class="editor"><${Msg} m=${msg} />${msg ? null : html`<p>${t('loading')}</p>`}</aside>`;
  const ro = !tab.writable;
  return html`<aside class="editor" aria-labelledby="ed-title">
    <div class="titlebar"><h2 id="ed-title">${id ? (rec.row[tab.display] ?? t('rec.edit.title')) : t('rec.add.title', { table: tableLabel(tab) })}</h2>
      ${id ? html`<${SyncBadge} state=${rec._sync || rec.row._sync} />` : null}</div>
    ${ro ? html`<p class="muted">${t('rec.readonly')}</p>` : null}
    <form onSubmit=${save} ref=${first} class="form" noValidate>
      <fieldset disabled=${ro}>
        ${cols.map((c) => html`<${Field} tab=${tab} col=${c} value=${vals[c.name]} label=${labels[c.name]}
          error=${err && err[0] === c.name ? err[1] : null} onChange=${(v, l) => set(c.name, v, l)} />`)}
      </fieldset>
      ${err && !cols.some((c) => c.name === err[0]) ? html`<p class="msg err" role="alert">${err[1]}</p>` : null}
      <${Msg} m=${msg} />
      <div class="buttons">
        ${ro ? null : html`<button type="submit" class="primary">${t('rec.save')}</button>`}
        <button type="button" onClick=${onDone}>${t('rec.cancel')}</button>
        ${id && !ro ? html`<button type="button" class="danger" onClick=${() => setConfirmDel(true)}>${t('rec.delete')}</button>` : null}
      </div>
      ${confirmDel ? html`<div class="confirm" role="alertdialog" aria-label=${t('rec.delete')}>
        <p>${t('rec.delete.confirm')}</p>
        <button type="button" class="danger" onClick=${remove}>${t('rec.delete.yes')}</button>
        <button type="button" onClick=${() => setConfirmDel(false)}>${t('rec.cancel')}</button></div>` : null}
    </form>
    ${id && tab.name !== 'attachments' ? html`<${Attachments} tab=${tab} id=${id} session=${session} writable=${!ro} />` : null}
    ${id ? html`<h3>${t('rec.history')}</h3><${History} items=${rec.history} />` : null}
  </aside>`;
}

// Route: /records/TABLE?q=&f.COL=&offset=&sort=&id=ID|new
export function RecordsPage({ session, status }) {
  const [tables, setTables] = useState(null);
  const [err, setErr] = useState(null);
  const [data, setData] = useState(null);
  const [flash, setFlash] = useState(null);
  const [fkLabels, setFkLabels] = useState({});
  const [bump, setBump] = useState(0);
  const searchRef = useRef(null);
  const parts = location.pathname.split('/');
  const params = new URLSearchParams(location.search);
  useEffect(() => {
    loadTables().then(setTables).catch(setErr);
  }, []);
  const tname = decodeURIComponent(parts[2] || '') || (tables && (tables.find((x) => x.name === 'people') || tables[0]).name);
  const tab = tables && tables.find((x) => x.name === tname);
  const q = params.get('q') || '';
  const offset = parseInt(params.get('offset') || '0', 10) || 0;
  const sort = params.get('sort') || '';
  const sel = params.get('id');
  const filters = {};
  for (const [k, v] of params) if (k.startsWith('f.')) filters[k] = v;
  const query = { q, offset, limit: PAGE, sort, ...filters };

  const go = (changes, keepSel) => {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) if (v === null || v === '' || v === undefined) p.delete(k); else p.set(k, v);
    if (!keepSel) p.delete('id');
    const s = p.toString();
    navigate(`/records/${tname}` + (s ? '?' + s : ''));
  };

  const key = tab ? tab.name + qs(query) : '';
  useEffect(() => {
    if (!tab) return;
    let stale = false;
    get(`/tables/${tab.name}/rows` + qs(query))
      .then((r) => !stale && setData({ key, ...r }))
      .catch((e) => !stale && setErr(e));
    return () => { stale = true; };
  }, [key, bump]);
  // A sync that finished changes sync states: refetch when the unsent count changes.
  const unsent = status ? status.unsent_to_hq : null;
  useEffect(() => { if (tab) setBump((b) => b + 1); }, [unsent]);

  useEffect(() => {
    const k = (e) => {
      if (e.key === '/' && !/INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName) && searchRef.current) {
        e.preventDefault();
        searchRef.current.focus();
      }
    };
    window.addEventListener('keydown', k);
    return () => window.removeEventListener('keydown', k);
  }, []);

  if (err) return html`<h1>${t('rec.title')}</h1><p class="msg err" role="alert">${errText(err)}</p>`;
  if (!tables) return html`<h1>${t('rec.title')}</h1><p>${t('loading')}</p>`;
  if (!tab) return html`<h1>${t('rec.title')}</h1><p class="msg err">${t('err.not_found')}</p>`;
  const cols = listCols(tab, session);
  const filterCols = formCols(tab, session).filter((c) => c.choices || (c.fk && c.name !== 'id')).slice(0, 3);
  const rows = data && data.key === key ? data.rows : null;
  const total = data ? data.total : 0;

  const onSaved = (nid, what) => {
    setFlash({ kind: 'ok', text: t(what) });
    setBump((b) => b + 1);
    if (nid) go({ id: nid }, true);
    else go({ id: null });
  };

  return html`<div class="records">
    <div class="titlebar"><h1>${t('rec.title')}: ${tableLabel(tab)}</h1>
      <span class="grow"></span>
      ${tab.writable ? html`<button class="primary" onClick=${() => go({ id: 'new' }, true)}>${t('rec.add')}</button>` : null}
      <a class="button" href=${'/api/export' + qs({ table: tab.name })} download>${t('rec.export')}</a>
    </div>
    <div class="tablepick" role="navigation" aria-label=${t('rec.tables')}>
      <label for="tpick">${t('rec.tables')}</label>
      <select id="tpick" value=${tab.name} onChange=${(e) => navigate('/records/' + e.target.value)}>
        ${tables.map((x) => html`<option value=${x.name}>${tableLabel(x)}</option>`)}
      </select>
    </div>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <label>${t('rec.search')}
        <input ref=${searchRef} type="search" name="q" placeholder=${t('rec.search.ph')} value=${q}
          onInput=${(e) => { const v = e.target.value; clearTimeout(window.__zq); window.__zq = setTimeout(() => go({ q: v, offset: null }), 250); }} /></label>
      ${filterCols.map((c) => html`<label>${colLabel(c)}
        ${c.fk
          ? html`<${FkSelect} table=${tab.name} col=${c} value=${filters['f.' + c.name] || ''} label=${fkLabels[c.name]} allowAny=${true}
              onChange=${(v, l) => { setFkLabels((o) => ({ ...o, [c.name]: l })); go({ ['f.' + c.name]: v, offset: null }); }} />`
          : html`<select value=${filters['f.' + c.name] || ''} onChange=${(e) => go({ ['f.' + c.name]: e.target.value, offset: null })}>
              <option value="">${t('rec.filter.any')}</option>
              ${c.choices.map((v) => html`<option value=${v}>${choiceLabel(v)}</option>`)}</select>`}
      </label>`)}
    </form>
    <${Msg} m=${flash} />
    <div class=${'split' + (sel ? ' open' : '')}>
      <div class="list">
        <p class="count" role="status" data-testid="count">${rows === null ? t('loading') : total === 0 ? t('rec.count.none')
          : t('rec.count', { from: fmtNum(offset + 1), to: fmtNum(offset + rows.length), total: fmtNum(total) })}</p>
        <table class="grid rows">
          <thead><tr>${cols.map((c) => html`<th scope="col"><button class="plain sort" title=${t('rec.sort', { col: colLabel(c) })}
            aria-sort=${sort === c.name ? 'ascending' : sort === '-' + c.name ? 'descending' : undefined}
            onClick=${() => go({ sort: sort === c.name ? '-' + c.name : c.name, offset: null }, true)}>${colLabel(c)}${sort === c.name ? ' ▲' : sort === '-' + c.name ? ' ▼' : ''}</button></th>`)}
            <th scope="col">${t('status.sync')}</th></tr></thead>
          <tbody>${(rows || []).map((r) => html`<tr class=${sel === r.id ? 'sel' : ''}>
            ${cols.map((c, i) => html`<td lang=${c.name === 'name_local' ? 'hi' : undefined}>${i === 0
              ? html`<${Link} href=${`/records/${tab.name}?` + new URLSearchParams({ ...Object.fromEntries(params), id: r.id })}>${shown(r, c) || r.id}<//>`
              : shown(r, c)}</td>`)}
            <td><${SyncBadge} state=${r._sync} /></td></tr>`)}</tbody>
        </table>
        <div class="pager">
          <button disabled=${offset === 0} onClick=${() => go({ offset: Math.max(0, offset - PAGE) || null })}>${t('rec.prev')}</button>
          <button disabled=${offset + PAGE >= total} onClick=${() => go({ offset: offset + PAGE })}>${t('rec.next')}</button>
        </div>
      </div>
      ${sel ? html`<${Editor} tab=${tab} session=${session} id=${sel === 'new' ? null : sel}
        onDone=${() => go({ id: null })} onSaved=${onSaved} />` : null}
    </div>
  </div>`;
}
