-- A ledger as syncd's schema version 1 wrote it (before verdict reasons and tombstones),
-- with one library, two files, one synced item and one pending add.
CREATE TABLE schema_version (
	version INTEGER NOT NULL,
	PRIMARY KEY (version)
);
CREATE TABLE libraries (
	id INTEGER NOT NULL,
	name VARCHAR(200) NOT NULL,
	gallery VARCHAR(16) NOT NULL,
	root TEXT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (name)
);
CREATE TABLE plan_queue (
	gallery VARCHAR(16) NOT NULL,
	content_hash VARCHAR(64) NOT NULL,
	successor_hash VARCHAR(64),
	PRIMARY KEY (gallery, content_hash)
);
CREATE TABLE settings (
	"key" VARCHAR(64) NOT NULL,
	value TEXT NOT NULL,
	updated_at FLOAT NOT NULL,
	PRIMARY KEY ("key")
);
CREATE TABLE files (
	id INTEGER NOT NULL,
	library_id INTEGER NOT NULL,
	relpath BLOB NOT NULL,
	size BIGINT NOT NULL,
	mtime_ns BIGINT NOT NULL,
	inode BIGINT NOT NULL,
	content_hash VARCHAR(64),
	verdict VARCHAR(16),
	state VARCHAR(8) NOT NULL,
	first_seen_at FLOAT NOT NULL,
	vanished_at FLOAT,
	PRIMARY KEY (id),
	CONSTRAINT uq_files_library_relpath UNIQUE (library_id, relpath),
	FOREIGN KEY(library_id) REFERENCES libraries (id) ON DELETE CASCADE
);
CREATE INDEX ix_files_content_hash ON files (content_hash);
CREATE INDEX ix_files_state_vanished_at ON files (state, vanished_at);
CREATE TABLE items (
	id INTEGER NOT NULL,
	gallery VARCHAR(16) NOT NULL,
	cont_sign VARCHAR(128),
	have_brief TEXT,
	have_tags VARCHAR(32),
	want_present BOOLEAN NOT NULL,
	want_brief TEXT NOT NULL,
	want_tags VARCHAR(32) NOT NULL,
	source_file_id INTEGER,
	op VARCHAR(8),
	state VARCHAR(8) NOT NULL,
	wait_for_item_id INTEGER,
	attempts INTEGER NOT NULL,
	next_attempt_at FLOAT NOT NULL,
	error_code INTEGER,
	error_message TEXT,
	claim_owner VARCHAR(64),
	claimed_at FLOAT,
	updated_at FLOAT NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_items_gallery_cont_sign UNIQUE (gallery, cont_sign),
	FOREIGN KEY(source_file_id) REFERENCES files (id) ON DELETE SET NULL,
	FOREIGN KEY(wait_for_item_id) REFERENCES items (id) ON DELETE SET NULL
);
CREATE INDEX ix_items_wait_for_item_id ON items (wait_for_item_id);
CREATE INDEX ix_items_due ON items (state, next_attempt_at);
CREATE INDEX ix_items_source_file_id ON items (source_file_id);
CREATE TABLE contents (
	gallery VARCHAR(16) NOT NULL,
	content_hash VARCHAR(64) NOT NULL,
	item_id INTEGER NOT NULL,
	PRIMARY KEY (gallery, content_hash),
	FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);
CREATE INDEX ix_contents_item_id ON contents (item_id);

INSERT INTO schema_version (version) VALUES (1);
INSERT INTO libraries (id, name, gallery, root) VALUES (1, 'photos', 'similar', '/srv/photos');
INSERT INTO files VALUES (1, 1, CAST('a.jpg' AS BLOB), 1000, 1700000000000000000, 11,
	'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'ok', 'live', 1.0, NULL);
INSERT INTO files VALUES (2, 1, X'6361665FE92E6A7067', 2000, 1700000000000000000, 12,
	'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'ok', 'live', 2.0, NULL);
INSERT INTO items VALUES (1, 'similar', 'sign-a', '{"lib":"photos","path":"a.jpg"}', '',
	1, '{"lib":"photos","path":"a.jpg"}', '', 1, NULL, 'synced', NULL, 0, 0.0, NULL, NULL,
	NULL, NULL, 1.0);
INSERT INTO items VALUES (2, 'similar', NULL, NULL, NULL,
	1, '{"lib":"photos","path":"caf_.jpg","h":"bbbbbbbbbbbbbbbb"}', '', 2, 'add', 'pending',
	NULL, 3, 50.0, 2, 'Service temporarily unavailable', NULL, NULL, 2.0);
INSERT INTO contents VALUES ('similar', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1);
INSERT INTO contents VALUES ('similar', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 2);
