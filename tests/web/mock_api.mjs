// A stand-in for the daemon's web API (proto/web/API.md), in memory, for the browser tests
// of the front end while the server side is built, and for screenshots. It keeps the
// contract's security rules (session cookie, CSRF header, Host) so the pages are tested
// against them. Tables and columns come from proto/schema/default.sql, as the daemon's do.
// usage: node mock_api.mjs --dist DIR --port N [--role laptop|hq] [--people 20000]
// Prints "listening PORT TOKEN" when ready.
import http from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { join, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const DIST = args.dist;
const PORT = parseInt(args.port || '0', 10);
const ROLE = args.role || 'laptop';
const NPEOPLE = parseInt(args.people || '20000', 10);
const SQL = readFileSync(join(here, '../../proto/schema/default.sql'), 'utf8');

// --- schema, parsed like the daemon's /api/tables -------------------------------------
function parseSchema(sql) {
  const tables = [];
  const re = /CREATE TABLE (\w+) \(([\s\S]*?)\n\);/g;
  let m;
  while ((m = re.exec(sql))) {
    const name = m[1];
    const cols = [];
    for (let line of m[2].split('\n')) {
      line = line.trim().replace(/,$/, '');
      if (!line || /^(UNIQUE|CHECK|PRIMARY|FOREIGN|--)/.test(line)) {
        // a CHECK on its own line continues the column above
        const ch = /^CHECK \((.*)\)$/.exec(line);
        if (ch && cols.length) addCheck(cols[cols.length - 1], ch[1]);
        continue;
      }
      const cm = /^(\w+) (TEXT|INTEGER|REAL)(.*)$/.exec(line);
      if (!cm) continue;
      const rest = cm[3];
      const fk = /REFERENCES (\w+)\(id\)/.exec(rest);
      const col = {
        name: cm[1], type: cm[2], notnull: /NOT NULL/.test(rest), pk: /PRIMARY KEY/.test(rest),
        // as SQLite's table_info gives it: 'text' quoted, numbers bare, expressions as written
        default: /DEFAULT ('[^']*')/.exec(rest)?.[1] ?? (/DEFAULT \((.*)\)/.test(rest) ? /DEFAULT \((lower\(hex\(randomblob\(16\)\)\))\)/.exec(rest)?.[1] || 'expr' : /DEFAULT (\d+)/.exec(rest)?.[1] ?? null),
        fk: fk ? { table: fk[1], display: 'name' } : null, choices: null, min: null, max: null, label: cm[1].replace(/_/g, ' '),
      };
      const ch = /CHECK \((.*)\)\s*$/.exec(rest);
      if (ch) addCheck(col, ch[1]);
      cols.push(col);
    }
    const partition = cols.some((c) => c.name === 'district_id') && !['districts', 'states', 'posts'].includes(name) ? 'district_id' : null;
    const display = ['name', 'title', 'code'].find((n) => cols.some((c) => c.name === n)) || 'id';
    tables.push({ name, label: name.replace(/_/g, ' '), partition, org_wide: !partition || name === 'org_units' && false, writable: true, display, columns: cols });
  }
  return tables;
}
function addCheck(col, expr) {
  const ch = [...expr.matchAll(new RegExp(col.name + " = '([^']*)'", 'g'))].map((x) => x[1]);
  if (ch.length) col.choices = ch;
  const bt = /BETWEEN (\d+) AND (\d+)/.exec(expr);
  if (bt) { col.min = +bt[1]; col.max = +bt[2]; }
  if (/>= 0/.test(expr)) col.min = 0;
}
const TABLES = parseSchema(SQL);
const T = Object.fromEntries(TABLES.map((t) => [t.name, t]));
for (const t of TABLES) {
  if (ROLE !== 'hq' && (t.name === 'states' || t.name === 'districts' || t.name === 'posts')) t.writable = false;
  for (const c of t.columns) if (c.fk) c.fk.display = T[c.fk.table]?.display || 'id';
}

// --- data -------------------------------------------------------------------------------
const now = () => Math.floor(Date.now() / 1000);
let seq = 0;
const newId = () => randomBytes(16).toString('hex');
const rows = Object.fromEntries(TABLES.map((t) => [t.name, new Map()]));
const meta = new Map(); // id -> {sync, history:[]}
function literal(d) {
  if (d === null) return null;
  if (/^'.*'$/.test(d)) return d.slice(1, -1).replace(/''/g, "'");
  if (/^-?\d+(\.\d+)?$/.test(d)) return Number(d);
  return null;
}
function add(table, row, sync = 'at_hq', device = 'hq', when = now() - 86400 * 3) {
  row.id = row.id || newId();
  for (const c of T[table].columns) if (!(c.name in row)) row[c.name] = literal(c.default);
  rows[table].set(row.id, row);
  meta.set(row.id, { sync, history: [{ when, device, changes: Object.entries(row).filter(([k, v]) => k !== 'id' && v !== null).map(([col, v]) => ({ col, old: null, new: v })) }] });
  return row;
}
const state = add('states', { name: 'Bihar', name_local: 'बिहार', code: 'BR' });
const DISTS = [['Gaya', 'गया', 'GAY'], ['Patna', 'पटना', 'PAT'], ['Nalanda', 'नालंदा', 'NAL']].map(([n, l, c]) => add('districts', { state_id: state.id, name: n, name_local: l, code: c }));
const HOME = DISTS[0];
const POSTS = ['president', 'secretary', 'booth president'].map((n, i) => add('posts', { name: n, level: ['district', 'district', 'booth'][i], rank: i }));
const VILLAGES = ['Kishunpur', 'Belaganj', 'Tekari', 'Manpur', 'Bodh Gaya', 'Sherghati', 'Wazirganj', 'Atri', 'Khizarsarai', 'Mohanpur'];
const HINDI_V = ['किशुनपुर', 'बेलागंज', 'टेकारी', 'मानपुर', 'बोधगया', 'शेरघाटी', 'वज़ीरगंज', 'अतरी', 'खिजरसराय', 'मोहनपुर'];
const booths = {};
for (const d of DISTS) {
  booths[d.id] = [];
  const block = add('org_units', { level: 'block', district_id: d.id, name: d.name + ' Sadar', code: 'B1' });
  for (let i = 0; i < 40; i++) {
    booths[d.id].push(add('org_units', { level: 'booth', parent_id: block.id, district_id: d.id, name: VILLAGES[i % 10] + (i >= 10 ? ' ' + (1 + Math.floor(i / 10)) : ''), name_local: HINDI_V[i % 10], code: String(101 + i) }));
  }
}
const FIRST = ['Ramesh', 'Sunita', 'Anil', 'Priya', 'Suresh', 'Kavita', 'Manoj', 'Rekha', 'Vijay', 'Anita', 'Rajesh', 'Pooja'];
const FIRST_HI = ['रमेश', 'सुनीता', 'अनिल', 'प्रिया', 'सुरेश', 'कविता', 'मनोज', 'रेखा', 'विजय', 'अनीता', 'राजेश', 'पूजा'];
const LAST = ['Kumar', 'Devi', 'Yadav', 'Singh', 'Paswan', 'Prasad', 'Sharma', 'Manjhi'];
const LAST_HI = ['कुमार', 'देवी', 'यादव', 'सिंह', 'पासवान', 'प्रसाद', 'शर्मा', 'मांझी'];
const people = [];
for (let i = 0; i < NPEOPLE; i++) {
  const d = ROLE === 'hq' ? DISTS[i % 3] : HOME;
  const f = i % 12, l = (i * 7) % 8;
  people.push(add('people', { district_id: d.id, name: FIRST[f] + ' ' + LAST[l], name_local: FIRST_HI[f] + ' ' + LAST_HI[l], phone: String(9000000000 + i * 7919 % 999999937), gender: f % 2 ? 'female' : 'male', birth_year: 1950 + (i % 50), org_unit_id: booths[d.id][i % 40].id, joined_on: '2026-0' + (1 + (i % 9)) + '-1' + (i % 9) }));
}
const drive = add('drives', { name: 'Sadasyata Abhiyan 2026', starts_on: '2026-11-01', deadline: '2026-12-31' });
const bearer = add('office_bearers', { district_id: HOME.id, person_id: people[3].id, post_id: POSTS[2].id, org_unit_id: booths[HOME.id][0].id, status: 'to_replace', reason: 'moved away' });
for (const d of DISTS) for (let i = 0; i < 25; i++) if (i % 3) add('booth_agents', { district_id: d.id, booth_id: booths[d.id][i].id, person_id: people[i].id });
// A conflict waiting: the phone of one member changed here and on another laptop.
const conflicted = people[5];
meta.get(conflicted.id).sync = 'conflict';
let conflicts = [{ id: 'c1', table: 'people', row: conflicted.id, row_label: conflicted.name, col: 'phone', kept: { value: conflicted.phone, device: 'gaya-office', when: now() - 7200 }, lost: { value: '9123456780', device: 'belaganj-laptop', when: now() - 5400 } }];
// A duplicate parked: two laptops registered the same phone.
let duplicates = [{ id: 'u1', table: 'people', row: people[9].id, holder: people[10].id, values: { name: 'Rekha Kumari', name_local: 'रेखा कुमारी', phone: '9000111111' }, holder_values: { name: 'Rekha Devi', name_local: 'रेखा देवी', phone: '9000111111' } }];
let orphans = [];

// sign-ups over the drive, per district: running totals per day
const series = {};
for (const [k, d] of DISTS.entries()) {
  series[d.id] = [];
  let tot = 0;
  for (let day = 1; day <= 20; day++) { tot += 20 + ((day * (k + 3)) % 17); series[d.id].push({ day: '2026-11-' + String(day).padStart(2, '0'), signups: tot }); }
}
const peers = [{ name: 'belaganj-laptop', district: 'Gaya', addr: '192.0.2.10:7470', source: 'lan', last_seen_at: now() - 3600, last_sync_at: now() - 3700 }];
const devices = [
  { id: 'd-hq', name: 'hq', district: null, role: 'hq', issuer: 'root', revoked: false, last_sync_at: now() - 60 },
  { id: 'd-gaya', name: 'gaya-office', district: 'Gaya', role: 'district', issuer: 'hq', revoked: false, last_sync_at: now() - 7200 },
  { id: 'd-bel', name: 'belaganj-laptop', district: 'Gaya', role: 'district', issuer: 'hq', revoked: false, last_sync_at: now() - 3700 },
  { id: 'd-pat', name: 'patna-office', district: 'Patna', role: 'district', issuer: 'hq', revoked: false, last_sync_at: now() - 86400 },
];
const status = {
  device: { id: ROLE === 'hq' ? 'd-hq' : 'd-gaya', name: ROLE === 'hq' ? 'hq' : 'gaya-office' },
  district: ROLE === 'hq' ? null : 'Gaya',
  hq: { addr: 'hq.example.org:7470', reachable: true, last_sync_at: now() - 7200, next_attempt_at: now() + 600, last_error: null },
  peers, unsent_to_hq: 0, refused_by_hq: 0, conflicts: 1, duplicates: 0, orphans: 0, clock_warning: null, sync: null,
};
function recount() {
  status.unsent_to_hq = [...meta.values()].filter((m) => m.sync === 'local').length;
  status.conflicts = conflicts.length;
  status.duplicates = duplicates.length;
  status.orphans = orphans.length;
}
const streams = new Set();
function pushStatus() {
  recount();
  const msg = `event: status\ndata: ${JSON.stringify(status)}\n\n`;
  for (const s of streams) s.write(msg);
}

// --- helpers ------------------------------------------------------------------------------
function inScope(table, row) {
  if (ROLE === 'hq' || !T[table].partition) return true;
  return row.district_id === HOME.id;
}
function labelOf(table, id) {
  const r = rows[table]?.get(id);
  if (!r) return id;
  if (table === 'org_units') return (r.code ? r.code + ' — ' : '') + r.name;
  return r[T[table].display] ?? id;
}
function decorate(table, r) {
  const out = { ...r, _sync: meta.get(r.id)?.sync || 'local', _labels: {} };
  for (const c of T[table].columns) if (c.fk && r[c.name]) out._labels[c.name] = labelOf(c.fk.table, r[c.name]);
  return out;
}
function validate(table, vals, creating) {
  const t = T[table];
  for (const c of t.columns) {
    if (!(c.name in vals) && !creating) continue;
    const v = vals[c.name];
    if ((v === null || v === undefined || v === '') && c.notnull && c.default === null && !c.pk) return { error: `${c.label} must be filled in`, field: c.name };
    if (v === null || v === undefined) continue;
    if (c.choices && !c.choices.includes(v)) return { error: `${c.label} must be one of: ${c.choices.join(', ')}`, field: c.name };
    if (c.type === 'INTEGER' && !Number.isInteger(Number(v))) return { error: `${c.label} must be a whole number`, field: c.name };
    if (c.min !== null && Number(v) < c.min) return { error: `${c.label} must be at least ${c.min}`, field: c.name };
    if (c.max !== null && Number(v) > c.max) return { error: `${c.label} must be at most ${c.max}`, field: c.name };
    if (c.fk && !rows[c.fk.table].has(v)) return { error: `${c.label}: no such ${c.fk.table.replace(/_/g, ' ')}`, field: c.name };
  }
  return null;
}
function uniqueClash(table, row) {
  if (table !== 'people' || !row.phone) return null;
  for (const o of rows.people.values()) if (o.id !== row.id && o.district_id === row.district_id && o.phone === row.phone) return o;
  return null;
}
function change(table, row, vals, device) {
  const changes = [];
  for (const [k, v] of Object.entries(vals)) if (row[k] !== v) { changes.push({ col: k, old: row[k] ?? null, new: v }); row[k] = v; }
  if (changes.length) {
    const m = meta.get(row.id);
    m.sync = 'local';
    m.history.unshift({ when: now(), device, changes });
  }
  return changes;
}
function parseCsv(text) {
  const out = [];
  let row = [], f = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) { if (ch === '"' && text[i + 1] === '"') { f += '"'; i++; } else if (ch === '"') q = false; else f += ch; }
    else if (ch === '"') q = true;
    else if (ch === ',') { row.push(f); f = ''; }
    else if (ch === '\n' || ch === '\r') { if (ch === '\r' && text[i + 1] === '\n') i++; row.push(f); out.push(row); row = []; f = ''; }
    else f += ch;
  }
  if (f !== '' || row.length) { row.push(f); out.push(row); }
  return out.filter((r) => r.some((x) => x !== ''));
}
const GUESS = { mobile: 'phone', phone: 'phone', 'phone number': 'phone', naam: 'name', 'hindi name': 'name_local', 'name hindi': 'name_local', 'नाम': 'name_local', booth: 'org_unit_id', 'booth no': 'org_unit_id', unit: 'org_unit_id', sex: 'gender', 'year of birth': 'birth_year', born: 'birth_year' };
function importPlan(body) {
  const t = T[body.table];
  if (!t) return { status: 400, body: { error: `no table '${body.table}'`, code: 'invalid' } };
  const grid = parseCsv(body.csv || '');
  if (!grid.length) return { status: 400, body: { error: 'the file is empty', code: 'invalid' } };
  const heads = grid[0];
  const names = t.columns.map((c) => c.name);
  const mapping = {};
  for (const h of heads) {
    const k = h.trim().toLowerCase();
    mapping[h] = body.map && h in body.map ? body.map[h] : names.includes(k.replace(/ /g, '_')) ? k.replace(/ /g, '_') : GUESS[k] && names.includes(GUESS[k]) ? GUESS[k] : '';
  }
  const out = [];
  const counts = { create: 0, update: 0, skip: 0, error: 0 };
  grid.slice(1).forEach((cells, i) => {
    const vals = {};
    heads.forEach((h, j) => { if (mapping[h]) vals[mapping[h]] = cells[j] === '' || cells[j] === undefined ? null : cells[j].trim(); });
    if (t.partition && ROLE !== 'hq') vals.district_id = HOME.id;
    const line = i + 2;
    // a booth by its code or name, as zila import does
    for (const c of t.columns) if (c.fk && vals[c.name] && !rows[c.fk.table].has(vals[c.name])) {
      const hit = [...rows[c.fk.table].values()].find((r) => (r.code === vals[c.name] || r.name === vals[c.name]) && inScope(c.fk.table, r));
      if (hit) vals[c.name] = hit.id;
    }
    for (const c of t.columns) if (c.type === 'INTEGER' && vals[c.name] != null && /^-?\d+$/.test(vals[c.name])) vals[c.name] = parseInt(vals[c.name], 10);
    const old = vals.id ? rows[body.table].get(vals.id) : uniqueClash(body.table, { ...vals, id: null });
    if (old) {
      const changes = Object.entries(vals).filter(([k, v]) => k !== 'id' && k !== 'district_id' && old[k] !== v).map(([col, v]) => ({ col, old: old[col] ?? null, new: v }));
      const bad = validate(body.table, vals, false);
      if (bad) { counts.error++; out.push({ line, action: 'error', error: bad.error }); }
      else if (!changes.length) { counts.skip++; out.push({ line, action: 'skip', id: old.id, changes: [] }); }
      else { counts.update++; out.push({ line, action: 'update', id: old.id, changes, vals }); }
    } else {
      const bad = validate(body.table, vals, true);
      if (bad) { counts.error++; out.push({ line, action: 'error', error: `line ${line}: ${bad.error}` }); }
      else { counts.create++; out.push({ line, action: 'create', changes: Object.entries(vals).filter(([k, v]) => v !== null && k !== 'district_id').map(([col, v]) => ({ col, old: null, new: T[body.table].columns.find((c) => c.name === col)?.fk ? labelOf(T[body.table].columns.find((c) => c.name === col).fk.table, v) : v })), vals }); }
    }
  });
  return { mapping, columns: names.filter((n) => n !== 'id' && !(n === 'district_id' && ROLE !== 'hq')), rows: out, counts };
}
function progress() {
  return DISTS.map((d) => {
    const s = series[d.id];
    const b = booths[d.id];
    const agents = new Set([...rows.booth_agents.values()].filter((a) => a.district_id === d.id).map((a) => a.booth_id));
    return { id: d.id, name: d.name, target: 1200, signups: s[s.length - 1].signups, series: s, booths: b.length, booths_with_agent: agents.size, booths_with_committee: Math.floor(b.length / 4), reports: 3 + d.name.length, inactive_bearers: [...rows.office_bearers.values()].filter((o) => o.district_id === d.id && o.status !== 'active').length, last_sync_at: now() - 3600 };
  });
}

// --- HTTP -----------------------------------------------------------------------------------
const TOKEN = randomBytes(32).toString('hex');
let tokenUsed = false;
const PASSWORD = 'office-password-1'; // as if set with 'zila web password' (or account 'clerk')
let pwWaitUntil = 0;
let pwFails = 0;
const sessions = new Set();
const CSRF = randomBytes(16).toString('hex');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

function send(res, code, body, headers = {}) {
  res.writeHead(code, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}
function readBody(req) {
  return new Promise((ok) => { let b = ''; req.setEncoding('utf8'); req.on('data', (c) => (b += c)); req.on('end', () => { try { ok(b ? JSON.parse(b) : {}); } catch { ok(null); } }); });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const host = req.headers.host || '';
  if (!/^(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(host)) return send(res, 421, { error: 'this address is not allowed', code: 'host' });
  if (!p.startsWith('/api/') && !p.startsWith('/__test/')) {
    const f = join(DIST, p === '/' ? 'index.html' : p.slice(1));
    const file = !p.includes('..') && existsSync(f) && extname(f) ? f : join(DIST, 'index.html');
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache', 'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'" });
    return res.end(readFileSync(file));
  }
  const body = req.method === 'GET' ? {} : await readBody(req);
  if (body === null) return send(res, 400, { error: 'the request is not JSON', code: 'invalid' });
  if (p === '/__test/signups') { // the HQ test: a district's laptop synced new sign-ups in
    const d = DISTS.find((x) => x.name === body.district);
    const s = series[d.id];
    s.push({ day: '2026-11-' + String(s.length + 1).padStart(2, '0'), signups: s[s.length - 1].signups + body.n });
    peers[0].last_sync_at = now();
    pushStatus();
    return send(res, 200, { ok: true });
  }
  if (p === '/__test/conflict') {
    const r = people[7];
    meta.get(r.id).sync = 'conflict';
    conflicts.push({ id: 'c' + ++seq, table: 'people', row: r.id, row_label: r.name, col: 'name_local', kept: { value: r.name_local, device: 'gaya-office', when: now() - 600 }, lost: { value: body.value, device: 'belaganj-laptop', when: now() - 300 } });
    pushStatus();
    return send(res, 200, { ok: true });
  }
  if (p === '/api/login' && req.method === 'POST' && body.password !== undefined) {
    // As the daemon: a wrong password makes the next try from here wait (1 s here).
    if (Date.now() < pwWaitUntil) return send(res, 429, { error: 'too many wrong passwords from this computer: try again in 1 s', code: 'slow_down', retry_after: 1 }, { 'Retry-After': '1' });
    if (body.password !== PASSWORD || (body.name && body.name !== 'clerk')) {
      if (++pwFails > 2) pwWaitUntil = Date.now() + 1000; // two slips are free, as at the daemon
      return send(res, 401, { error: 'wrong name or password', code: 'bad_password' });
    }
    pwFails = 0;
    const sid = randomBytes(16).toString('hex');
    sessions.add(sid);
    return send(res, 200, { ok: true, csrf: CSRF }, { 'Set-Cookie': `zila_session=${sid}; HttpOnly; SameSite=Strict; Path=/` });
  }
  if (p === '/api/login' && req.method === 'POST') {
    if (body.token !== TOKEN) return send(res, 401, { error: 'this login link is wrong or too old', code: 'bad_token' });
    if (tokenUsed) return send(res, 401, { error: 'this login link was already used', code: 'token_used' });
    tokenUsed = true;
    const sid = randomBytes(16).toString('hex');
    sessions.add(sid);
    return send(res, 200, { ok: true }, { 'Set-Cookie': `zila_session=${sid}; HttpOnly; SameSite=Strict; Path=/` });
  }
  const sid = /zila_session=(\w+)/.exec(req.headers.cookie || '')?.[1];
  if (!sid || !sessions.has(sid)) return send(res, 401, { error: 'not logged in', code: 'not_logged_in' });
  if (req.method !== 'GET' && req.headers['x-csrf-token'] !== CSRF) return send(res, 403, { error: 'missing or wrong CSRF token', code: 'csrf' });

  const seg = p.split('/').slice(2).map(decodeURIComponent);
  const M = req.method;
  if (p === '/api/session' && M === 'GET') return send(res, 200, { csrf: CSRF, device: status.device, district: ROLE === 'hq' ? null : { id: HOME.id, name: HOME.name }, org: { name: 'Jan Sangathan Bihar' }, role: ROLE, lang: 'en', version: 'mock', attach: { max_bytes: 10485760, shrink: false, can_shrink: true } });
  if (p === '/api/session' && M === 'PUT') return send(res, 200, { ok: true });
  if (p === '/api/logout') { sessions.delete(sid); return send(res, 200, { ok: true }); }
  if (p === '/api/status') { recount(); return send(res, 200, status); }
  if (p === '/api/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    recount();
    res.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`);
    streams.add(res);
    req.on('close', () => streams.delete(res));
    return undefined;
  }
  if (p === '/api/sync' && M === 'POST') {
    if (status.sync) return send(res, 409, { error: 'a sync is already running', code: 'conflict' });
    const total = Math.max(status.unsent_to_hq * 3, 40);
    status.sync = { running: true, peer: 'hq', rows_done: 0, rows_total: null };
    pushStatus();
    let step = 0;
    const tick = setInterval(() => {
      step++;
      status.sync = { running: true, peer: 'hq', rows_done: Math.min(total, Math.round((total * (step - 1)) / 4)), rows_total: total };
      if (step > 5) {
        clearInterval(tick);
        for (const m of meta.values()) if (m.sync === 'local') m.sync = 'at_hq';
        status.sync = null;
        status.hq.last_sync_at = now();
      }
      pushStatus();
    }, 150);
    return send(res, 202, { started: true });
  }
  if (p === '/api/tables') return send(res, 200, { tables: TABLES });
  if (seg[0] === 'tables' && T[seg[1]]) {
    const t = T[seg[1]], store = rows[seg[1]];
    if (seg[2] === 'options' && M === 'GET') {
      const col = t.columns.find((c) => c.name === seg[3]);
      if (!col || !col.fk) return send(res, 404, { error: 'no such column', code: 'not_found' });
      const q = (url.searchParams.get('q') || '').toLowerCase();
      const lim = Math.min(+url.searchParams.get('limit') || 50, 200);
      const opts = [];
      for (const r of rows[col.fk.table].values()) {
        if (!inScope(col.fk.table, r)) continue;
        if (col.fk.table === 'org_units' && col.name !== 'parent_id' && r.level !== 'booth') continue;
        const label = labelOf(col.fk.table, r.id);
        if (q && !label.toLowerCase().includes(q) && !(r.name_local || '').includes(q) && !(r.phone || '').includes(q)) continue;
        opts.push({ id: r.id, label });
        if (opts.length >= lim) break;
      }
      return send(res, 200, { options: opts });
    }
    if (seg[2] === 'rows' && !seg[3] && M === 'GET') {
      const q = (url.searchParams.get('q') || '').toLowerCase();
      const off = Math.max(0, +url.searchParams.get('offset') || 0);
      const lim = Math.min(Math.max(1, +url.searchParams.get('limit') || 50), 200);
      const sort = url.searchParams.get('sort') || '';
      const f = [...url.searchParams].filter(([k]) => k.startsWith('f.')).map(([k, v]) => [k.slice(2), v]);
      let list = [];
      for (const r of store.values()) {
        if (!inScope(seg[1], r)) continue;
        if (f.some(([k, v]) => (v === '' ? r[k] !== null : String(r[k]) !== v))) continue;
        if (q && !(String(r[t.display] || '').toLowerCase().includes(q) || (r.name_local || '').includes(q) || (q.replace(/\D/g, '') && (r.phone || '').includes(q.replace(/\D/g, ''))))) continue;
        list.push(r);
      }
      if (sort) { const k = sort.replace(/^-/, ''), dir = sort[0] === '-' ? -1 : 1; list.sort((a, b) => (a[k] ?? '') < (b[k] ?? '') ? -dir : (a[k] ?? '') > (b[k] ?? '') ? dir : a.id < b.id ? -1 : 1); }
      return send(res, 200, { rows: list.slice(off, off + lim).map((r) => decorate(seg[1], r)), total: list.length, offset: off, limit: lim });
    }
    if (seg[2] === 'rows' && !seg[3] && M === 'POST') {
      if (!t.writable) return send(res, 403, { error: 'this table is kept by HQ', code: 'scope' });
      const vals = { ...body };
      if (t.partition && ROLE !== 'hq' && !vals.district_id) vals.district_id = HOME.id;
      if (t.partition && ROLE !== 'hq' && vals.district_id !== HOME.id) return send(res, 403, { error: 'another district', code: 'scope' });
      const bad = validate(seg[1], vals, true);
      if (bad) return send(res, 400, { ...bad, code: 'invalid' });
      const clash = uniqueClash(seg[1], vals);
      if (clash) return send(res, 409, { error: `phone ${vals.phone} is already ${clash.name}'s`, field: 'phone', code: 'conflict' });
      const r = add(seg[1], vals, 'local', status.device.name, now());
      pushStatus();
      return send(res, 201, { row: decorate(seg[1], r) });
    }
    const r = seg[3] && store.get(seg[3]);
    if (seg[2] === 'rows' && seg[3]) {
      if (!r || !inScope(seg[1], r)) return send(res, 404, { error: 'no such record', code: 'not_found' });
      if (M === 'GET') { const d = decorate(seg[1], r); return send(res, 200, { row: d, _sync: d._sync, _labels: d._labels, history: meta.get(r.id).history }); }
      if (!t.writable) return send(res, 403, { error: 'this table is kept by HQ', code: 'scope' });
      if (M === 'PUT') {
        const bad = validate(seg[1], body, false);
        if (bad) return send(res, 400, { ...bad, code: 'invalid' });
        const clash = uniqueClash(seg[1], { ...r, ...body });
        if (clash) return send(res, 409, { error: `phone ${body.phone} is already ${clash.name}'s`, field: 'phone', code: 'conflict' });
        change(seg[1], r, body, status.device.name);
        pushStatus();
        return send(res, 200, { row: decorate(seg[1], r) });
      }
      if (M === 'DELETE') { store.delete(r.id); meta.delete(r.id); status.unsent_to_hq++; pushStatus(); return send(res, 200, { deleted: true }); }
    }
  }
  if (p === '/api/import/preview' || p === '/api/import/commit') {
    const plan = importPlan(body);
    if (plan.status) return send(res, plan.status, plan.body);
    if (p.endsWith('preview')) return send(res, 200, { ...plan, rows: plan.rows.map(({ vals, ...x }) => x) });
    if (plan.counts.error) return send(res, 400, { error: `${plan.counts.error} rows have errors; nothing was imported`, code: 'invalid' });
    for (const r of plan.rows) {
      if (r.action === 'create') add(body.table, r.vals, 'local', status.device.name, now());
      if (r.action === 'update') change(body.table, rows[body.table].get(r.id), Object.fromEntries(r.changes.map((c) => [c.col, c.new])), status.device.name);
    }
    pushStatus();
    return send(res, 200, { counts: plan.counts });
  }
  if (p === '/api/review' && M === 'GET') return send(res, 200, { conflicts, duplicates, orphans });
  if (p === '/api/review/resolve' && M === 'POST') {
    if (body.kind === 'duplicate' && body.choice === 'merge' && duplicates.some((d) => d.id === body.id)) {
      duplicates = duplicates.filter((d) => d.id !== body.id);
      pushStatus();
      return send(res, 200, { ok: true });
    }
    const c = conflicts.find((x) => x.id === body.id);
    if (body.kind !== 'conflict' || !c) return send(res, 404, { error: 'nothing to resolve by that id', code: 'not_found' });
    const row = rows[c.table].get(c.row);
    if (body.choice === 'lost') change(c.table, row, { [c.col]: c.lost.value }, status.device.name);
    else meta.get(row.id).sync = 'local';
    conflicts = conflicts.filter((x) => x !== c);
    pushStatus();
    return send(res, 200, { ok: true });
  }
  if (p === '/api/hq/progress') return send(res, 200, { districts: progress() });
  if (p === '/api/hq/list') {
    const d = DISTS.find((x) => x.id === url.searchParams.get('district'));
    const metric = url.searchParams.get('metric');
    if (metric === 'inactive_bearers') return send(res, 200, { columns: ['name', 'post', 'unit', 'status', 'reason'], rows: [...rows.office_bearers.values()].filter((o) => o.district_id === d.id && o.status !== 'active').map((o) => [labelOf('people', o.person_id), labelOf('posts', o.post_id), labelOf('org_units', o.org_unit_id), o.status, o.reason]) });
    if (metric === 'booths_without_agent') { const has = new Set([...rows.booth_agents.values()].map((a) => a.booth_id)); return send(res, 200, { columns: ['booth'], rows: booths[d.id].filter((b) => !has.has(b.id)).map((b) => [labelOf('org_units', b.id)]) }); }
    return send(res, 200, { columns: ['day', 'signups'], rows: series[d.id].map((s) => [s.day, s.signups]) });
  }
  // attachments (#25): the stand-in holds none; the pages' own tests run against real daemons
  if (p === '/api/attachments' && M === 'GET') return send(res, 200, { attachments: [], total: 0 });
  if (p === '/api/devices') return send(res, 200, { devices });
  if (p === '/api/devices/invite' && M === 'POST') return send(res, 200, { code: 'zila1-' + randomBytes(12).toString('hex') });
  if (p === '/api/devices/revoke' && M === 'POST') { const d = devices.find((x) => x.id === body.id); if (d) d.revoked = true; return send(res, 200, { ok: true }); }
  if (p === '/api/export') {
    const t = T[url.searchParams.get('table')];
    if (!t) return send(res, 404, { error: 'no such table', code: 'not_found' });
    const names = t.columns.map((c) => c.name);
    const lines = [names.join(',')];
    for (const r of rows[t.name].values()) if (inScope(t.name, r)) lines.push(names.map((n) => (r[n] === null ? '' : /[",\n]/.test(String(r[n])) ? `"${String(r[n]).replace(/"/g, '""')}"` : r[n])).join(','));
    res.writeHead(200, { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${t.name}.csv"` });
    return res.end(lines.join('\n') + '\n');
  }
  return send(res, 404, { error: 'no such API call', code: 'not_found' });
}

const server = http.createServer((req, res) => handle(req, res).catch((e) => send(res, 500, { error: String(e) })));
server.listen(PORT, '127.0.0.1', () => console.log(`listening ${server.address().port} ${TOKEN}`));
process.on('SIGTERM', () => process.exit(0));
