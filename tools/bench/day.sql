-- A day's work of one district office, the same in bench_bytes and the link bench (#24):
-- 200 people registered (names, places and org units taken from other rows, new ids and
-- phone numbers), 500 people edited (a new phone number, every fifth an address too) and
-- 20 people deleted (ones no other row names): 720 changed rows. Any district of at least
-- 1,500 people will do.
PRAGMA foreign_keys = ON;
BEGIN;
INSERT INTO people(id, district_id, name, name_local, phone, gender, birth_year, address, org_unit_id, joined_on)
SELECT lower(hex(randomblob(16))), a.district_id, a.name, a.name_local,
  printf('8%09d', (a.rowid * 2654435761) % 1000000000), a.gender, a.birth_year, b.address, b.org_unit_id,
  '2026-11-16'
FROM (SELECT *, row_number() OVER (ORDER BY rowid) AS k FROM people WHERE rowid % 7 = 1) a
JOIN (SELECT *, row_number() OVER (ORDER BY rowid DESC) AS k FROM people WHERE rowid % 5 = 3) b ON a.k = b.k
LIMIT 200;
UPDATE people SET phone = printf('7%09d', (rowid * 40503) % 1000000000),
  address = CASE WHEN rowid % 5 = 0 THEN address || ', ward ' || (rowid % 40) ELSE address END
WHERE rowid IN (SELECT rowid FROM people WHERE rowid % 3 = 2 LIMIT 500);
DELETE FROM people WHERE rowid IN (SELECT rowid FROM people p WHERE rowid % 11 = 7
  AND NOT EXISTS (SELECT 1 FROM office_bearers o WHERE o.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM booth_agents g WHERE g.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM committee_members c WHERE c.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM signups s WHERE s.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM attendance t WHERE t.person_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM tasks k WHERE k.assigned_to = p.id)
  AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.coordinator_id = p.id) LIMIT 20);
COMMIT;
