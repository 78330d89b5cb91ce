// Every word of the interface exists in Hindi as in English, and every key the pages use
// exists: a label added in English only, or a misspelt key, fails here before a browser runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ui = join(dirname(fileURLToPath(import.meta.url)), '../../src/web/ui/src');
const { dicts } = await import(join(ui, 'i18n.js'));
const SAME = new Set(['app.name', 'login.cmd']); // words that are the same in both

test('every English key has a Hindi text, and no Hindi key is left over', () => {
  const missing = Object.keys(dicts.en).filter((k) => !(k in dicts.hi) && !SAME.has(k));
  const extra = Object.keys(dicts.hi).filter((k) => !(k in dicts.en));
  assert.deepEqual(missing, []);
  assert.deepEqual(extra, []);
});

test('the Hindi texts keep the placeholders of the English ones', () => {
  for (const [k, v] of Object.entries(dicts.hi)) {
    const want = (dicts.en[k].match(/\{\w+\}/g) || []).sort();
    assert.deepEqual((v.match(/\{\w+\}/g) || []).sort(), want, k);
  }
});

test('every key the pages ask for exists', () => {
  const used = new Set();
  for (const f of readdirSync(ui).filter((n) => n.endsWith('.js') && n !== 'i18n.js')) {
    for (const m of readFileSync(join(ui, f), 'utf8').matchAll(/\bt\('([a-z_.]+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size > 100, 'found ' + used.size);
  // t('sync.' + state): a prefix, which some keys must start with
  const keys = Object.keys(dicts.en);
  assert.deepEqual([...used].filter((k) => (k.endsWith('.') ? !keys.some((x) => x.startsWith(k)) : !(k in dicts.en))), []);
});
