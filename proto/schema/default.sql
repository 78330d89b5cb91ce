-- zila default schema: a party organisation rebuilt from the booth up.
--
-- `zila init` runs this file and tracks every table in it. Rules the sync engine relies on:
-- * every table has one TEXT PRIMARY KEY `id`, generated on the device (16 random bytes in
--   hex); no AUTOINCREMENT, no composite keys, no WITHOUT ROWID, no triggers;
-- * a table with a `district_id` column is partitioned by it; tables without one (states,
--   districts, posts) are org-wide catalogues;
-- * `district_id` is NULL only for rows that belong to the state as a whole (the state org
--   unit, state-wide drives, their targets at state level, state events); such rows live in
--   the org-wide partition and reference only org-wide rows, so that every replica that
--   holds them also holds their foreign-key targets. A row's district never changes;
-- * a row's district_id is the district of the org unit or person it belongs to;
-- * CHECKs list allowed values as `c = 'a' OR c = 'b' OR ...`, never `c IN ('a', 'b', ...)`:
--   the same rule (NULL passes either way), but SQLite builds a temporary index for an IN
--   list of three or more values on every row written, which made writes to people half
--   again as slow;
-- * dates are ISO 8601 text (YYYY-MM-DD), periods are YYYY-MM;
-- * foreign keys are real and never cascade; every foreign-key column has an index (an
--   index whose first column is the foreign key counts).

-- Org-wide catalogues -------------------------------------------------------------------

CREATE TABLE states (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	name TEXT NOT NULL,
	name_local TEXT,
	code TEXT UNIQUE
);

CREATE TABLE districts (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	state_id TEXT NOT NULL REFERENCES states(id),
	name TEXT NOT NULL,
	name_local TEXT,
	code TEXT,
	UNIQUE (state_id, name)
);

-- Office-bearer posts (president, general secretary, booth president, ...).
CREATE TABLE posts (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	name TEXT NOT NULL UNIQUE,
	name_local TEXT,
	level TEXT NOT NULL
		CHECK (level = 'state' OR level = 'district' OR level = 'block' OR level = 'panchayat' OR level = 'ward' OR level = 'booth'),
	rank INTEGER NOT NULL DEFAULT 0
);

-- The organisation ----------------------------------------------------------------------

-- state > district > block > panchayat (rural) or ward (urban) > polling booth.
CREATE TABLE org_units (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	level TEXT NOT NULL
		CHECK (level = 'state' OR level = 'district' OR level = 'block' OR level = 'panchayat' OR level = 'ward' OR level = 'booth'),
	parent_id TEXT REFERENCES org_units(id),
	district_id TEXT REFERENCES districts(id),
	name TEXT NOT NULL,
	name_local TEXT,
	code TEXT,
	CHECK (district_id IS NOT NULL OR level = 'state'),
	UNIQUE (district_id, level, code)
);
CREATE INDEX org_units_parent ON org_units(parent_id);

CREATE TABLE people (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	name TEXT NOT NULL,
	name_local TEXT,
	phone TEXT,
	gender TEXT CHECK (gender = 'female' OR gender = 'male' OR gender = 'other'),
	birth_year INTEGER CHECK (birth_year BETWEEN 1900 AND 2100),
	address TEXT,
	org_unit_id TEXT REFERENCES org_units(id),
	joined_on TEXT,
	UNIQUE (district_id, phone)
);
CREATE INDEX people_org_unit ON people(org_unit_id);

CREATE TABLE office_bearers (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	person_id TEXT NOT NULL REFERENCES people(id),
	post_id TEXT NOT NULL REFERENCES posts(id),
	org_unit_id TEXT NOT NULL REFERENCES org_units(id),
	status TEXT NOT NULL DEFAULT 'active'
		CHECK (status = 'active' OR status = 'inactive' OR status = 'to_replace'),
	reason TEXT,
	since TEXT,
	UNIQUE (person_id, post_id, org_unit_id)
);
CREATE INDEX office_bearers_district ON office_bearers(district_id);
CREATE INDEX office_bearers_post ON office_bearers(post_id);
CREATE INDEX office_bearers_org_unit ON office_bearers(org_unit_id);

CREATE TABLE booth_agents (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	booth_id TEXT NOT NULL REFERENCES org_units(id),
	person_id TEXT NOT NULL REFERENCES people(id),
	appointed_on TEXT,
	UNIQUE (booth_id, person_id)
);
CREATE INDEX booth_agents_district ON booth_agents(district_id);
CREATE INDEX booth_agents_person ON booth_agents(person_id);

-- One committee per booth.
CREATE TABLE booth_committees (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	booth_id TEXT NOT NULL UNIQUE REFERENCES org_units(id),
	formed_on TEXT
);
CREATE INDEX booth_committees_district ON booth_committees(district_id);

CREATE TABLE committee_members (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	committee_id TEXT NOT NULL REFERENCES booth_committees(id),
	person_id TEXT NOT NULL REFERENCES people(id),
	role TEXT,
	UNIQUE (committee_id, person_id)
);
CREATE INDEX committee_members_district ON committee_members(district_id);
CREATE INDEX committee_members_person ON committee_members(person_id);

-- Membership drives ---------------------------------------------------------------------

CREATE TABLE drives (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT REFERENCES districts(id),
	name TEXT NOT NULL,
	starts_on TEXT,
	deadline TEXT
);
CREATE INDEX drives_district ON drives(district_id);

CREATE TABLE drive_targets (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT REFERENCES districts(id),
	drive_id TEXT NOT NULL REFERENCES drives(id),
	org_unit_id TEXT NOT NULL REFERENCES org_units(id),
	target INTEGER NOT NULL CHECK (target >= 0),
	UNIQUE (drive_id, org_unit_id)
);
CREATE INDEX drive_targets_district ON drive_targets(district_id);
CREATE INDEX drive_targets_org_unit ON drive_targets(org_unit_id);

CREATE TABLE signups (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	drive_id TEXT NOT NULL REFERENCES drives(id),
	person_id TEXT NOT NULL REFERENCES people(id),
	org_unit_id TEXT REFERENCES org_units(id),
	signed_on TEXT,
	UNIQUE (drive_id, person_id)
);
CREATE INDEX signups_district ON signups(district_id);
CREATE INDEX signups_person ON signups(person_id);
CREATE INDEX signups_org_unit ON signups(org_unit_id);

-- Events, tasks and reports -------------------------------------------------------------

CREATE TABLE events (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT REFERENCES districts(id),
	kind TEXT NOT NULL CHECK (kind = 'sammelan' OR kind = 'workshop' OR kind = 'training'),
	title TEXT NOT NULL,
	held_on TEXT,
	place TEXT,
	org_unit_id TEXT REFERENCES org_units(id)
);
CREATE INDEX events_district ON events(district_id);
CREATE INDEX events_org_unit ON events(org_unit_id);

CREATE TABLE attendance (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	event_id TEXT NOT NULL REFERENCES events(id),
	person_id TEXT NOT NULL REFERENCES people(id),
	UNIQUE (event_id, person_id)
);
CREATE INDEX attendance_district ON attendance(district_id);
CREATE INDEX attendance_person ON attendance(person_id);

-- Tasks and targets given to leaders.
CREATE TABLE tasks (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	assigned_to TEXT NOT NULL REFERENCES people(id),
	title TEXT NOT NULL,
	target INTEGER CHECK (target >= 0),
	achieved INTEGER CHECK (achieved >= 0),
	due_on TEXT,
	status TEXT NOT NULL DEFAULT 'open' CHECK (status = 'open' OR status = 'done' OR status = 'cancelled')
);
CREATE INDEX tasks_district ON tasks(district_id);
CREATE INDEX tasks_assigned_to ON tasks(assigned_to);

-- Coordinators' periodic reports on their unit.
CREATE TABLE reports (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	org_unit_id TEXT NOT NULL REFERENCES org_units(id),
	coordinator_id TEXT NOT NULL REFERENCES people(id),
	period TEXT NOT NULL CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
	status TEXT NOT NULL DEFAULT 'draft' CHECK (status = 'draft' OR status = 'submitted' OR status = 'accepted'),
	submitted_on TEXT,
	body TEXT,
	UNIQUE (org_unit_id, coordinator_id, period)
);
CREATE INDEX reports_district_period ON reports(district_id, period);
CREATE INDEX reports_coordinator ON reports(coordinator_id);

-- Files attached to records (#25, proto/ATTACH.md): photos, signed sheets, scanned forms.
-- The bytes are a content-addressed blob beside the replica (DIR/blobs/); this row is the
-- reference that syncs, merges and is scoped by district like any row. hash: the blob id
-- (64 hex digits), size in bytes; owner_*: the row it belongs to (its column holding this
-- id when owner_column is set); original_*: the file before it was shrunk, if it was.
CREATE TABLE attachments (
	id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16)))),
	district_id TEXT NOT NULL REFERENCES districts(id),
	hash TEXT NOT NULL CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'),
	size INTEGER NOT NULL CHECK (size >= 0),
	media_type TEXT NOT NULL DEFAULT 'application/octet-stream',
	name TEXT,
	owner_table TEXT,
	owner_id TEXT,
	owner_column TEXT,
	original_hash TEXT,
	original_size INTEGER,
	added_on TEXT
);
CREATE INDEX attachments_district ON attachments(district_id);
CREATE INDEX attachments_hash ON attachments(hash);
CREATE INDEX attachments_owner ON attachments(owner_table, owner_id);
