// Browser tests of the web interface in Debian's Chromium, driven by playwright-core:
// a clerk logs in with the one-time link, adds a member with a Hindi name, edits one,
// imports a CSV through the preview, resolves a conflict, syncs and sees "At HQ"; the pages
// switch to Hindi; an HQ user sees a district's chart change and makes an invite QR code.
// Against the API stand-in (tests/web/mock_api.mjs) unless ZILA_WEB_URL names a real daemon.
// usage: node tests/web/ui_test.mjs [--screenshots DIR]
// env: CHROMIUM (default /usr/bin/chromium), ZILA_WEB_DIST (default build/web/dist)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'src/web/ui/package.json'));
const { chromium } = require('playwright-core');
const DIST = process.env.ZILA_WEB_DIST || join(root, 'build/web/dist');
const shotsAt = process.argv.indexOf('--screenshots');
const SHOTS = shotsAt > 0 ? resolve(process.argv[shotsAt + 1]) : null;
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

function startMock(role, people) {
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, [join(root, 'tests/web/mock_api.mjs'), '--dist', DIST, '--port', '0', '--role', role, '--people', String(people)], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => p.kill('SIGTERM'));
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\d+) (\w+)/.exec(out);
      if (m) ok({ base: `http://127.0.0.1:${m[1]}`, token: m[2] });
    });
    p.on('exit', (c) => fail(new Error('mock API exited ' + c)));
  });
}

// A fresh profile (--user-data-dir) per page: nothing carries over between the tests.
async function newPage() {
  const dir = mkdtempSync(join(tmpdir(), 'zila-chromium-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1366, height: 768 }, timezoneId: 'Asia/Kolkata', locale: 'en-IN',
  });
  cleanups.push(() => ctx.close());
  const page = ctx.pages()[0] || (await ctx.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && !/status of (40[0-9]|413)/.test(m.text()) && errors.push(m.text()));
  page.setDefaultTimeout(8000);
  return { page, ctx, errors };
}
// On a failure, a picture of the page says more than the timeout.
async function run(page, name, body) {
  try {
    await body();
  } catch (e) {
    const f = join(tmpdir(), `zila-web-fail-${name}.png`);
    await page.screenshot({ path: f }).catch(() => {});
    console.error(`page at the failure: ${page.url()} (picture: ${f})`);
    throw e;
  }
}
async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, name + '.png') });
}

test('a clerk: login, add, edit, import, review, sync, Hindi', async () => {
  const { base, token } = await startMock('laptop', 20000);
  const { page, errors } = await newPage();
  await run(page, 'clerk', async () => {

  // Without the login step there is nothing but the login page.
  await page.goto(base + '/records/people');
  await page.getByRole('heading', { name: 'Log in to zila' }).waitFor();
  assert.equal(await page.locator('table').count(), 0);

  // The one-time link logs in and leaves no token in the address bar.
  await page.goto(`${base}/login#t=${token}`);
  await page.getByRole('heading', { name: 'Status', exact: true }).waitFor();
  assert.ok(!page.url().includes(token), 'the token is gone from the address: ' + page.url());
  await page.getByText('Updates live').waitFor();
  await page.getByText('Headquarters (HQ)').waitFor();
  await shot(page, 'status');

  // Records: 20,000 members, paged by the server, searched in Hindi.
  await page.getByRole('link', { name: 'Records' }).click();
  await page.getByText('1–50 of 20,000').waitFor();
  assert.equal(await page.locator('table.rows tbody tr').count(), 50);
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByText('51–100 of 20,000').waitFor();
  await page.getByPlaceholder('Name (Hindi or English) or phone').fill('रमेश');
  await page.getByText(/^1–50 of 1,6\d\d$/).waitFor();

  // Add a member with a Hindi name; the booth is picked by its name, not an id.
  const ed = page.locator('.editor');
  await page.getByRole('button', { name: 'Add' }).click();
  await page.getByRole('heading', { name: 'New record: Members' }).waitFor();
  await ed.getByLabel('Name', { exact: true }).fill('Sita Kumari');
  await ed.getByLabel('Name (Hindi)').fill('सीता कुमारी');
  await ed.getByLabel('Phone').fill('9876543210');
  await ed.getByLabel('Gender').selectOption({ label: 'female' });
  await ed.getByLabel('Year of birth').fill('1890');
  await ed.getByLabel('Unit / booth: Type to find…').fill('Kishun');
  await page.locator('#f-org_unit_id option', { hasText: '101 — Kishunpur' }).first().waitFor({ state: 'attached' });
  await page.locator('#f-org_unit_id').selectOption({ label: '101 — Kishunpur' });
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('"Year of birth" must be at least 1900.').waitFor(); // plain words, before any request
  await ed.getByLabel('Year of birth').fill('1990');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Added.').waitFor();
  await page.getByRole('heading', { name: 'Sita Kumari' }).waitFor();
  await page.locator('.editor [data-sync="local"]').waitFor();
  await page.locator('.history').getByText('सीता कुमारी').waitFor();

  // A phone already used is refused in plain words at the field.
  await page.getByRole('button', { name: 'Close' }).click();
  await page.getByPlaceholder('Name (Hindi or English) or phone').fill('सीता');
  await page.getByText('1–1 of 1').waitFor();
  await page.getByRole('link', { name: 'Sita Kumari' }).click();
  await ed.getByLabel('Phone').fill('9000000000');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('.ferr').getByText(/already/).waitFor();

  // Edit: the history names the change old -> new, by device, in local time.
  await ed.getByLabel('Phone').fill('9876500000');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  const h = page.locator('.history > li').first();
  await h.getByText('9876543210').waitFor();
  await h.getByText('9876500000').waitFor();
  await h.getByText('on gaya-office').waitFor();
  assert.match(await h.locator('strong').innerText(), /\d{4}, \d{1,2}:\d\d\s?(am|pm)/i);
  await shot(page, 'records');

  // Import a CSV through the preview: guessed mapping, old -> new, then confirm.
  await page.getByRole('link', { name: 'Import' }).click();
  await page.getByRole('heading', { name: 'Import a spreadsheet' }).waitFor();
  const csv = 'Name,Hindi name,Mobile,Booth\nMohan Lal,मोहन लाल,9811111111,102\nSita Kumari,सीता देवी,9876500000,101\nBad Row,,9822222222,999\n';
  await page.locator('input[type=file]').setInputFiles({ name: 'members.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByTestId('import-counts').getByText('1 new, 1 changed, 0 unchanged, 1 with errors').waitFor();
  assert.equal(await page.getByLabel('Mobile').inputValue(), 'phone');
  assert.equal(await page.getByLabel('Hindi name').inputValue(), 'name_local');
  await page.locator('tr.act-update').getByText('सीता कुमारी').waitFor();
  await page.locator('tr.act-update').getByText('सीता देवी').waitFor();
  assert.ok(await page.getByRole('button', { name: /^Import \d+ rows$/ }).isDisabled(), 'an error row blocks the import');
  await page.locator('input[type=file]').setInputFiles({ name: 'members.csv', mimeType: 'text/csv', buffer: Buffer.from(csv.split('\n').slice(0, 3).join('\n') + '\n') });
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByTestId('import-counts').getByText('1 new, 1 changed, 0 unchanged, 0 with errors').waitFor();
  await shot(page, 'import');
  await page.getByRole('button', { name: 'Import 2 rows' }).click();
  await page.getByText('Imported: 1 new, 1 changed, 0 unchanged.').waitFor();

  // Review: the conflict side by side, resolved with one click.
  await page.getByRole('link', { name: /Review/ }).click();
  await page.getByTestId('conflict').waitFor();
  await page.getByTestId('conflict').getByText('9123456780').waitFor();
  await shot(page, 'review');
  await page.getByTestId('conflict').locator('.side').nth(1).getByRole('button', { name: 'Keep this' }).click();
  await page.getByText('Resolved. The choice will travel with the next sync.').waitFor();
  await page.getByTestId('conflict').waitFor({ state: 'detached' });
  await page.getByTestId('duplicate').getByText('रेखा कुमारी').waitFor(); // both sides shown
  await page.getByTestId('duplicate').getByText('रेखा देवी').waitFor();
  await page.getByRole('button', { name: 'Merge into the kept record' }).click();
  await page.getByTestId('review-none').waitFor();

  // Sync now: an honest progress bar in rows, then nothing left for HQ, and "At HQ".
  await page.getByRole('link', { name: 'Status' }).click();
  await page.getByTestId('unsent').getByText(/changes made on this laptop are not yet at HQ/).waitFor();
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.getByTestId('sync-progress').getByText(/of \d+ rows/).waitFor();
  await page.getByText('Everything made here is at HQ.').waitFor();
  await page.getByRole('link', { name: 'Records' }).click();
  await page.getByPlaceholder('Name (Hindi or English) or phone').fill('9876500000');
  await page.getByText('1–1 of 1').waitFor();
  await page.locator('table.rows').getByText('At HQ').waitFor();

  // Hindi: every label switches, and the choice stays after a reload.
  await page.getByRole('button', { name: 'हिन्दी' }).click();
  await page.getByRole('link', { name: 'स्थिति' }).waitFor();
  await page.getByRole('heading', { name: 'रिकॉर्ड: सदस्य' }).waitFor();
  await page.locator('table.rows').getByText('मुख्यालय में').waitFor();
  await page.reload();
  await page.getByRole('link', { name: 'रिकॉर्ड' }).waitFor();
  await page.getByPlaceholder('नाम (हिन्दी या अंग्रेज़ी) या फ़ोन').fill('');
  await page.getByText('20,002 में से 1–50').waitFor();
  await shot(page, 'records-hi');
  await page.getByRole('link', { name: 'स्थिति' }).click();
  await page.getByText('मुख्यालय से पिछला सिंक').waitFor();

  // By keyboard: the first Tab reaches "skip to content", the next ones the menu.
  await page.reload();
  await page.getByText('मुख्यालय से पिछला सिंक').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'मुख्य भाग पर जाएँ');
  for (let i = 0; i < 4; i++) await page.keyboard.press('Tab'); // English, log out, Status, Records
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'रिकॉर्ड: सदस्य' }).waitFor();
  assert.deepEqual(errors, []);
  });
});

test('the login page: a password, a wrong one refused and made to wait, in Hindi too', async () => {
  const { base } = await startMock('laptop', 50);
  const { page, errors } = await newPage();
  await run(page, 'password', async () => {
  await page.goto(base + '/login');
  await page.getByRole('heading', { name: 'Log in to zila' }).waitFor();
  await page.getByLabel(/^Password/).fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong name or password' }).waitFor();
  await page.getByRole('alert').filter({ hasText: 'type the name too' }).waitFor(); // with no name: the name may be the slip
  assert.equal(await page.getByLabel(/^Password/).inputValue(), '', 'a refused password is not left in the field');
  assert.ok(!page.url().includes('password'), 'no password in the address: ' + page.url());
  for (const slip of ['slip-two-1', 'slip-three']) { // two more: the third wrong one starts the waits
    await page.getByLabel(/^Password/).fill(slip);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForFunction(() => document.querySelector('input[type=password]').value === ''); // answered: refused
    await page.getByRole('alert').filter({ hasText: 'wrong name or password' }).waitFor();
  }
  await page.getByLabel(/^Password/).fill('office-password-1');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'try again in' }).waitFor(); // the wait after a wrong one
  await page.waitForTimeout(1100);
  await page.getByLabel(/^Password/).fill('office-password-1');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Status', exact: true }).waitFor();
  assert.ok(!page.url().includes('office-password'), 'no password in the address: ' + page.url());
  // In Hindi: the same page and its message.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to zila' }).waitFor();
  await page.locator('button.lang').click();
  await page.getByRole('heading', { name: 'zila में लॉग इन करें' }).waitFor();
  await page.getByLabel(/^पासवर्ड/).fill('wrong-password-2');
  await page.getByRole('button', { name: 'लॉग इन', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'नाम या पासवर्ड गलत है' }).waitFor();
  await shot(page, 'login-hi');
  assert.deepEqual(errors.filter((e) => !/40[0-9]|429/.test(e)), []);
  });
});

test('HQ: a district chart changes as its sign-ups arrive; invite QR', async () => {
  const { base, token } = await startMock('hq', 3000);
  const { page, errors } = await newPage();
  await run(page, 'hq', async () => {
  await page.goto(`${base}/login#t=${token}`);
  await page.getByRole('link', { name: 'HQ progress' }).click();
  const gaya = page.locator('[data-district="Gaya"]');
  const chart = gaya.locator('svg.chart');
  await chart.waitFor();
  const before = Number(await chart.getAttribute('data-signups'));
  const pathBefore = await chart.locator('polyline').getAttribute('points');
  await shot(page, 'hq');
  // Gaya's laptop syncs 150 new sign-ups in; the page follows the status stream.
  const r = await fetch(base + '/__test/signups', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ district: 'Gaya', n: 150 }) });
  assert.equal(r.status, 200);
  await page.waitForFunction((b) => Number(document.querySelector('[data-district="Gaya"] svg.chart').getAttribute('data-signups')) === b + 150, before);
  assert.notEqual(await chart.locator('polyline').getAttribute('points'), pathBefore);
  await gaya.getByRole('img', { name: new RegExp(`Sign-ups in Gaya: ${(before + 150).toLocaleString('en-IN')} against`) }).waitFor();
  // The list behind a number.
  await gaya.getByTestId('inactive').click();
  await page.getByTestId('hq-list').getByText('moved away').waitFor();

  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByRole('button', { name: 'Make invite code' }).click();
  await page.getByTestId('invite-code').waitFor();
  assert.match(await page.getByTestId('invite-code').innerText(), /^zila1-[0-9a-f]+$/);
  await page.getByRole('img', { name: 'The invite code as a QR code' }).waitFor();
  await shot(page, 'devices');
  await page.getByRole('button', { name: 'Revoke' }).first().click();
  await page.getByRole('button', { name: 'Yes, revoke' }).click();
  await page.getByText(/is revoked\.$/).waitFor();
  assert.deepEqual(errors, []);
  });
});

// --- against real daemons (ZILA names the zila binary): HQ and a laptop of "Gaya" ----------
function startReal(n) {
  return new Promise((ok, fail) => {
    const p = spawn('sh', [join(root, 'tests/web/real_daemons.sh'), String(n)], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
    cleanups.push(() => new Promise((done) => { p.on('exit', done); p.stdin.end(); setTimeout(() => { p.kill('SIGTERM'); }, 5000); }));
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const i = out.indexOf('\n');
      if (i >= 0) ok(JSON.parse(out.slice(0, i)));
    });
    p.on('exit', (c) => fail(new Error('real_daemons.sh exited ' + c)));
  });
}
function zila(dir, ...a) {
  return new Promise((ok, fail) => {
    const p = spawn(process.env.ZILA, ['-d', dir, ...a], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (c) => (c === 0 ? ok(out) : fail(new Error(`zila ${a.join(' ')}: exit ${c}: ${err}`))));
  });
}

test('a clerk against real daemons: add, edit, import, conflict, sync, at HQ', { skip: !process.env.ZILA && 'ZILA not set' }, async () => {
  const env = await startReal(2000);
  const { page, errors } = await newPage();
  page.setDefaultTimeout(20000); // an ASan daemon
  await run(page, 'real', async () => {
    await page.goto(env.url);
    await page.getByRole('heading', { name: 'Status', exact: true }).waitFor();
    assert.ok(!page.url().includes('#t='), 'the token is gone from the address');
    await page.getByTestId('hq-reach').getByText('HQ can be reached').waitFor();

    await page.getByRole('link', { name: 'Records' }).click();
    await page.getByText('1–50 of 2,000').waitFor();
    const search = page.getByPlaceholder('Name (Hindi or English) or phone');
    await search.fill('रमेश');
    await page.getByText('1–50 of 666').waitFor();

    // add a member with a Hindi name, the booth picked by name
    const ed = page.locator('.editor');
    await page.getByRole('button', { name: 'Add' }).click();
    await ed.getByLabel('Name', { exact: true }).fill('Sita Kumari');
    await ed.getByLabel('Name (Hindi)').fill('सीता कुमारी');
    await ed.getByLabel('Phone').fill('9876543210');
    await ed.getByLabel('Gender').selectOption({ label: 'female' });
    await ed.getByLabel('Unit / booth: Type to find…').fill('Kishun');
    await page.locator('#f-org_unit_id option', { hasText: '110 — Kishunpur' }).first().waitFor({ state: 'attached' });
    await page.locator('#f-org_unit_id').selectOption({ label: '110 — Kishunpur' });
    await ed.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Added.').waitFor();
    await ed.getByRole('heading', { name: 'Sita Kumari' }).waitFor();
    await ed.locator('[data-sync="local"]').waitFor();

    // edit it (its history, from the sealed feed, is checked after the sync); the add is
    // sealed first, or a loaded machine's daemon may seal both in one entry (one history line)
    await zila(env.lap, 'seal');
    await ed.getByLabel('Phone').fill('9876500000');
    await ed.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();

    // import a CSV through the preview
    await page.getByRole('link', { name: 'Import' }).click();
    // headers as an office writes them: the daemon guesses them (zila import's rules), and a
    // column it cannot place is previewed as "not imported" at once, the page saying so
    const csv = 'Naam,Hindi Naam,Mobile No.,Ling,Kuch Aur\nMohan Lal,मोहन लाल,9811111111,M,x\n';
    await page.locator('input[type=file]').setInputFiles({ name: 'members.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByTestId('import-counts').getByText('1 new, 0 changed, 0 unchanged, 0 with errors').waitFor();
    await page.getByTestId('import-unmapped').getByText(/Kuch Aur/).waitFor();
    assert.equal(await page.getByText(/Choose below where each column of the file goes/).count(), 0);
    assert.equal(await page.getByLabel('Naam', { exact: true }).inputValue(), 'name');
    assert.equal(await page.getByLabel('Hindi Naam').inputValue(), 'name_local');
    assert.equal(await page.getByLabel('Mobile No.').inputValue(), 'phone');
    assert.equal(await page.getByLabel('Ling').inputValue(), 'gender');
    assert.equal(await page.getByLabel('Kuch Aur').inputValue(), '');
    await page.locator('tr.act-create').getByText('मोहन लाल').waitFor();
    await page.getByRole('button', { name: 'Import 1 rows' }).click();
    await page.getByTestId('import-done').waitFor();

    // the conflict the setup made (tests/web/real_daemons.sh), kept side by side
    await page.getByRole('link', { name: /Review/ }).click();
    const c = page.getByTestId('conflict').first();
    await c.waitFor();
    // the row named as the records page names it (row_label), not by its id
    assert.ok(!(await c.locator('h3').textContent()).includes('p00003'));
    await c.getByText('Ward 4, Kishunpur').waitFor();
    await c.getByText('Ward 5, Kishunpur').waitFor();
    await c.locator('.side', { hasText: 'Ward 4, Kishunpur' }).getByRole('button', { name: 'Keep this' }).click();
    await page.getByText('Resolved. The choice will travel with the next sync.').waitFor();

    // sync again: every record made here is "At HQ", and HQ holds them
    await page.getByRole('link', { name: 'Status' }).click();
    await page.getByRole('button', { name: 'Sync now' }).click();
    await page.getByText('Everything made here is at HQ.').waitFor();
    await page.getByRole('link', { name: 'Records' }).click();
    await search.fill('9876500000');
    await page.getByText('1–1 of 1').waitFor();
    await page.locator('table.rows').getByText('At HQ').waitFor();
    await page.getByRole('link', { name: 'Sita Kumari' }).click();
    const h = ed.locator('.history > li', { hasText: '9876500000' });
    await h.getByText('9876543210').waitFor(); // old -> new
    await h.getByText(/on lap$/).waitFor();
    // the booth in the history by its label (changes[]._labels), not its id
    await ed.locator('.history').getByText('110 — Kishunpur').waitFor();
    const at = await zila(env.hq, 'sql', "SELECT name_local FROM people WHERE phone IN ('9876500000', '9811111111') ORDER BY phone; SELECT address FROM people WHERE id = 'p00003'");
    assert.deepEqual(at.trim().split('\n'), ['मोहन लाल', 'सीता कुमारी', 'Ward 4, Kishunpur']);
    assert.deepEqual(errors, []);
  });
});

// A phone-sized photo made by the browser itself (canvas -> JPEG): gradients and noise, w x h.
async function phonePhoto(page, w, h) {
  const b64 = await page.evaluate(([w, h]) => {
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d');
    const img = g.createImageData(w, h);
    let s = 7;
    for (let i = 0; i < w * h; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const n = (s >>> 16) & 31, x = i % w, y = (i / w) | 0;
      img.data[i * 4] = ((x * 255) / w + n) & 255;
      img.data[i * 4 + 1] = ((y * 255) / h + n) & 255;
      img.data[i * 4 + 2] = ((x + y) / 7 + n) & 255;
      img.data[i * 4 + 3] = 255;
    }
    g.putImageData(img, 0, 0);
    return c.toDataURL('image/jpeg', 0.95).split(',')[1];
  }, [w, h]);
  return Buffer.from(b64, 'base64');
}

test('a clerk attaches photos against real daemons: shrunk, shown, refused, missing, at HQ', { skip: !process.env.ZILA && 'ZILA not set' }, async () => {
  const env = await startReal(20);
  const { page, errors } = await newPage();
  page.setDefaultTimeout(20000); // an ASan daemon
  await run(page, 'real-attach', async () => {
    await page.goto(env.url);
    await page.getByRole('heading', { name: 'Status', exact: true }).waitFor();
    await page.getByTestId('att-missing').getByText('All 0 files are here.').waitFor();
    await page.getByRole('link', { name: 'Records' }).click();
    await page.getByText('1–20 of 20').waitFor();
    await page.getByRole('link', { name: 'Sunita Devi' }).first().click();
    const ed = page.locator('.editor');
    await ed.getByTestId('att-none').waitFor();

    // a 3000 x 2000 phone photo, shrunk on the way in
    const big = await phonePhoto(page, 3000, 2000);
    await ed.getByTestId('att-file').setInputFiles({ name: 'sammelan.jpg', mimeType: 'image/jpeg', buffer: big });
    await ed.getByTestId('att-shrink').check();
    await ed.getByRole('button', { name: 'Attach', exact: true }).click();
    await ed.getByText(/^Attached sammelan\.jpg, made smaller: .* → .*\.$/).waitFor();
    const item = ed.getByTestId('att-item').first();
    await item.getByText('sammelan.jpg').waitFor();
    await item.getByTestId('att-state').getByText('Here').waitFor();
    // the photo is shown, at most 1600 px on its long side, and served as a photo may be
    const thumb = item.locator('img.thumb');
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await thumb.elementHandle());
    const nat = await thumb.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
    assert.ok(nat[0] <= 1600 && nat[0] >= 1400 && nat[0] * 2 === nat[1] * 3, 'shrunk to ' + nat);
    const src = await thumb.getAttribute('src');
    const head = await page.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get('content-type'), disp: r.headers.get('content-disposition'),
        nosniff: r.headers.get('x-content-type-options'), len: (await r.arrayBuffer()).byteLength };
    }, src);
    assert.equal(head.status, 200);
    assert.equal(head.type, 'image/jpeg');
    assert.match(head.disp, /^inline; filename="sammelan\.jpg"/);
    assert.equal(head.nosniff, 'nosniff');
    assert.ok(head.len < big.length / 4, `stored ${head.len} bytes of ${big.length}`);
    await ed.locator('.attachments').scrollIntoViewIfNeeded();
    await shot(page, 'attachments');

    // a scanned form as it is, in Hindi; then one over the office's limit, refused in Hindi
    await page.locator('button.lang').click();
    const form = Buffer.from('%PDF-1.4\n' + 'x'.repeat(4000) + '\n%%EOF\n');
    await ed.getByTestId('att-file').setInputFiles({ name: 'फ़ॉर्म.pdf', mimeType: 'application/pdf', buffer: form });
    await ed.getByTestId('att-shrink').uncheck();
    await ed.getByRole('button', { name: 'जोड़ें', exact: true }).click();
    await ed.getByText('फ़ॉर्म.pdf जोड़ दी गई।').waitFor();
    await ed.getByTestId('att-item').nth(1).getByText('फ़ॉर्म.pdf').waitFor();
    // a small photo with the box ticked is kept as it was, and the page says why, in Hindi
    const small = await phonePhoto(page, 800, 600);
    await ed.getByTestId('att-file').setInputFiles({ name: 'receipt.jpg', mimeType: 'image/jpeg', buffer: small });
    await ed.getByTestId('att-shrink').check();
    await ed.getByRole('button', { name: 'जोड़ें', exact: true }).click();
    await ed.getByText('receipt.jpg जैसी थी वैसी जोड़ी गई। फ़ोटो पहले से ही अधिकतम 1600 पिक्सेल की है।').waitFor();
    await zila(env.lap, 'attachment', 'set', 'max_bytes', '2000');
    await ed.getByTestId('att-file').setInputFiles({ name: 'रसीद.pdf', mimeType: 'application/pdf', buffer: form });
    await ed.getByRole('button', { name: 'जोड़ें', exact: true }).click();
    await ed.getByText(/^फ़ाइल रसीद\.pdf .* से बड़ी है; यह कार्यालय इससे बड़ी फ़ाइल नहीं जोड़ता।/).waitFor();
    assert.equal(await ed.getByTestId('att-item').count(), 3);
    await page.locator('button.lang').click();
    await zila(env.lap, 'attachment', 'set', 'max_bytes', '10485760');

    // a row that names a file this laptop never had: missing, on the record and on the status page
    const pid = new URL(page.url()).searchParams.get('id');
    await zila(env.lap, 'sql', `INSERT INTO attachments(id, district_id, hash, size, media_type, name, owner_table, owner_id)
      VALUES ('far-away-photo', 'd1', '${'ab'.repeat(32)}', 300000, 'image/jpeg', 'far.jpg', 'people', '${pid}')`);
    await page.getByRole('link', { name: 'Status' }).click();
    await page.getByTestId('att-missing').getByText(/^1 files are not here yet \(293 KB\)\.$/).waitFor();
    await page.locator('table.grid').getByText('far.jpg').waitFor();
    await shot(page, 'status-attachments');

    // sync: HQ holds the photo byte for byte as the page showed it
    await page.getByRole('button', { name: 'Sync now' }).click();
    await page.getByText('Everything made here is at HQ.').waitFor();
    const [pho, orig, osize] = (await zila(env.lap, 'sql', "SELECT id, length(original_hash), original_size FROM attachments WHERE name = 'sammelan.jpg'")).trim().split('|');
    assert.equal(orig, '64'); // the original's blob id and size are in the row
    assert.equal(Number(osize), big.length);
    const out = join(mkdtempSync(join(tmpdir(), 'zila-att-')), 'at-hq.jpg');
    await zila(env.hq, 'attachment', 'get', pho, out, '--wait', '30');
    assert.equal(readFileSync(out).length, head.len);
    assert.deepEqual(errors, []);
  });
});

test("HQ against real daemons: a district's sign-ups arrive by sync, devices, invite", { skip: !process.env.ZILA && 'ZILA not set' }, async () => {
  const env = await startReal(50);
  const { page, errors } = await newPage();
  page.setDefaultTimeout(20000); // an ASan daemon
  await run(page, 'real-hq', async () => {
    await page.goto(env.hq_url);
    await page.getByRole('link', { name: 'HQ progress' }).click();
    const gaya = page.locator('[data-district="Gaya"]');
    await gaya.getByTestId('signups').getByText('0 of 100').waitFor();
    // Gaya's laptop signs up five members and syncs: HQ's page follows its status stream
    await zila(env.lap, 'sql', "INSERT INTO signups(id, district_id, drive_id, person_id, org_unit_id, signed_on)"
      + " SELECT 'su' || id, 'd1', 'dr1', id, 'b110', date('now') FROM people ORDER BY id LIMIT 5");
    await zila(env.lap, 'sync', 'hq', '--wait', '--timeout', '60');
    await gaya.getByTestId('signups').getByText('5 of 100').waitFor();
    // the list behind the number names them
    await gaya.getByTestId('signups').click();
    await page.getByTestId('hq-list').waitFor();

    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('cell', { name: 'lap', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Make invite code' }).click();
    await page.getByTestId('invite-code').waitFor();
    // the daemon's invite code, as `zila invite` prints it (groups of four)
    assert.match(await page.getByTestId('invite-code').innerText(), /^[0-9A-Z]{4}(-[0-9A-Z]{1,4})+$/);
    await page.getByRole('img', { name: 'The invite code as a QR code' }).waitFor();
    assert.deepEqual(errors, []);
  });
});
