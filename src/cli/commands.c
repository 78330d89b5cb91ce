/* The table of zila subcommands, in the order `zila help` lists them. */
#include <stddef.h>

#include "cli.h"

#define CMD(name) int cmd_##name(struct cli *cli, int argc, char **argv);
CMD(init)
CMD(web)
CMD(track)
CMD(schema)
CMD(sql)
CMD(seal)
CMD(hash)
CMD(vector)
CMD(log)
CMD(checkpoint)
CMD(history)
CMD(attach)
CMD(attachment)
CMD(conflicts)
CMD(duplicates)
CMD(bundle)
CMD(import)
CMD(export)
CMD(report)
CMD(org)
CMD(catalogue)
CMD(invite)
CMD(join)
CMD(enrol)
CMD(devices)
CMD(whoami)
CMD(revoke)
CMD(daemon)
CMD(service)
CMD(mirror)
CMD(status)
CMD(peers)
CMD(peer)
CMD(sync)
CMD(stop)
CMD(open)
#undef CMD

const struct cli_command cli_commands[] = {
	{ "init", cmd_init, "create a replica with the default schema and a device key", "zila [-d DIR] init", 0 },
	{ "track", cmd_track, "make a table synced (refuses tables that cannot converge)",
	  "zila track TABLE [--partition COLUMN]", CLI_STORE },
	{ "schema", cmd_schema, "HQ changes the organisation's schema for every laptop: add a table, a column, an index; list the versions (and any not applied: two HQ devices at once)",
	  "zila schema [list]\nzila schema add-column TABLE COLUMN TYPE [--default VALUE] [--not-null] [--dry-run]\n"
	  "zila schema add-table TABLE [--partition COLUMN | --org-wide] [--dry-run] \"COLUMN TYPE ...\"...\n"
	  "zila schema add-index NAME TABLE COLUMN... [--dry-run]\nzila schema drop-index NAME [--dry-run]\n"
	  "zila schema track TABLE [--partition COLUMN | --org-wide]\nzila schema sql STATEMENT [--partition COLUMN] [--dry-run]",
	  CLI_STORE | CLI_TRUST },
	{ "sql", cmd_sql, "run SQL against the replica; changes are captured for sync", "zila sql [SQL]", CLI_STORE },
	{ "seal", cmd_seal, "seal local changes into signed entries now, and sweep for rows inserted at chosen rowids",
	  "zila seal", CLI_STORE },
	{ "hash", cmd_hash, "print a content hash of all tracked rows", "zila hash", CLI_STORE },
	{ "vector", cmd_vector, "print the version vector (feed heads)", "zila vector", CLI_STORE },
	{ "log", cmd_log, "show the audit trail: who changed what, when", "zila log [--table T] [--id ID]", CLI_STORE },
	{ "checkpoint", cmd_checkpoint, "HQ: sign a checkpoint of districts' state, so new laptops get the state, not the history; list, export or merge one",
	  "zila checkpoint [DISTRICT...]\nzila checkpoint list\nzila checkpoint export DISTRICT FILE\nzila checkpoint apply FILE",
	  CLI_STORE | CLI_TRUST },
	{ "history", cmd_history, "how much history this replica keeps (a laptop: 90 days; HQ: all); set it; drop what is older and covered by a checkpoint (HQ: and the deleted rows every device has; which devices hold the rest back, why, and what to do; a laptop: then compact the file when that pays); compact the file now",
	  "zila history\nzila history --days N|all\nzila history prune\nzila history compact", CLI_STORE },
	{ "attach", cmd_attach, "add a file (a photo, a scanned form) to the replica and print its reference; it syncs after the rows",
	  "zila attach FILE [--to TABLE:ID [--column C]] [--district ID] [--name NAME] [--type MEDIA]\n"
	  "            [--shrink | --no-shrink]   (--shrink: a JPEG photo over 1600 px made smaller first)", CLI_STORE },
	{ "attachment", cmd_attachment, "list attachments (here, partial, missing); copy one out, fetching it first",
	  "zila attachment [ls [--missing] [--limit N] [--offset N]]\nzila attachment get REF OUT [--wait SECS]\nzila attachment set NAME VALUE\n"
	  "zila attachment collect", CLI_STORE },
	{ "conflicts", cmd_conflicts, "list overwritten values and parked rows; resolve one, link an orphan to a parent, drop a row",
	  "zila conflicts\nzila conflicts resolve ID --keep kept|lost\nzila conflicts resolve ID --value TEXT\n"
	  "zila conflicts relink TABLE:ID COLUMN=VALUE\nzila conflicts drop TABLE:ID", 0 },
	{ "duplicates", cmd_duplicates, "list rows parked by a UNIQUE collision; merge one into the row holding the slot",
	  "zila duplicates\nzila duplicates merge TABLE:ID [--into ID]", 0 },
	{ "bundle", cmd_bundle, "carry changes by file, encrypted to the receiver (--for) or to the organisation's enrolled devices",
	  "zila bundle create FILE [--for VECTORFILE | --all] [--with-attachments] [--attachments-below SIZE]\nzila bundle apply FILE", 0 },
	{ "import", cmd_import, "create or update rows of a table from a CSV file", "zila [-d DIR] import FILE.csv --table TABLE [--map HEADER=COLUMN]... [--dry-run] [--skip-bad REJECTS.csv] [--delimiter C] [-q]", 0 },
	{ "export", cmd_export, "write a table as CSV (for Excel) or JSON", "zila [-d DIR] export --table TABLE [--district ID] [--format csv|json] [-o FILE] [--no-bom]", 0 },
	{ "report", cmd_report, "HQ progress per district: drive, booths, office bearers, reports, sync", "zila [-d DIR] report [--district ID] [--period YYYY-MM] [--format text|csv|json] [--today YYYY-MM-DD] [--drive ID]", 0 },
	{ "org", cmd_org, "create the organisation (HQ), show it; the root key's acts: an HQ device, revoking one", "zila org init --name NAME [--passphrase-file FILE]\nzila org show\nzila org add-hq [--org-key FILE] [--passphrase-file FILE] [--name DEVICE] [--org-name NAME]\nzila org revoke DEVICE [--org-key FILE] [--passphrase-file FILE]", 0 },
	{ "catalogue", cmd_catalogue, "list the organisation's states, districts and posts; add one by name (HQ)",
	  "zila catalogue [list]\nzila catalogue add state NAME [--code C] [--local NAME] [--id ID]\n"
	  "zila catalogue add district NAME --state STATE [--code C] [--local NAME] [--id ID]\n"
	  "zila catalogue add post NAME --level LEVEL [--rank N] [--local NAME] [--id ID]", 0 },
	{ "invite", cmd_invite, "make a one-time code for a laptop to join (HQ); the district by name, code or id", "zila invite --district NAME [--role district|block] [--expires 7d]", 0 },
	{ "join", cmd_join, "enrol a laptop with an invite code (or again, one enrolled before organisation secrets): dial HQ, get the certificate and the organisation secret", "zila join --hq HOST:PORT [--name NAME] [--timeout SECS]     (asks for the code)\nzila join - --hq HOST:PORT [--name NAME] [--timeout SECS]   (reads the code from stdin)", 0 },
	{ "enrol", cmd_enrol, "enrol by USB: request (laptop), sign (HQ), install (laptop); reissue after an HQ is revoked", "zila enrol request FILE [--name NAME]\nzila enrol sign REQUEST CERT [--district NAME] [--role district|block] [--days N]\nzila enrol install CERT\nzila enrol reissue DEVICE [CERT]", 0 },
	{ "devices", cmd_devices, "list enrolled devices, roles, scopes, expiry, issuers, revocations", "zila devices", CLI_STORE | CLI_TRUST },
	{ "whoami", cmd_whoami, "print this device's id, organisation and role", "zila whoami", CLI_STORE | CLI_TRUST },
	{ "revoke", cmd_revoke, "cut off a lost district or block device: sign a revocation (HQ)", "zila revoke DEVICE", CLI_STORE | CLI_TRUST },
	{ "daemon", cmd_daemon, "run the sync daemon in the foreground (LAN discovery, peers, HQ uplink)",
	  "zila daemon [--listen ADDR:PORT] [--beacon-port N] [--beacon-to ADDR[:PORT]]... [--max-sessions N] [--idle-timeout SECS] [--web ADDR:PORT|off] [--web-name NAME]... [--web-cert FILE --web-key FILE] [--web-plain-lan] [--postgres CONNINFO] [--foreground]", 0 },
	{ "mirror", cmd_mirror, "HQ: keep the merged state in PostgreSQL (the daemon's mirror); set its connection string, or copy once",
	  "zila mirror set CONNINFO\nzila mirror off\nzila mirror show\nzila mirror once [CONNINFO]", 0 },
	{ "status", cmd_status, "show the daemon's view: device, HQ, peers, unsent changes, conflicts, replica errors, warnings", "zila status", CLI_DAEMON },
	{ "peers", cmd_peers, "list known peers: address, last seen, last sync, pending entries, source", "zila peers", CLI_DAEMON },
	{ "peer", cmd_peer, "configure a peer (or HQ) the daemon dials", "zila peer add [--hq] HOST:PORT\nzila peer remove HOST:PORT\nzila peer remove --hq", 0 },
	{ "sync", cmd_sync, "sync now with every known peer, one peer, or HQ (--wait: exit 1 also when the peer refused some of our entries)", "zila sync [PEER|hq] [--wait] [--timeout SECS]", CLI_DAEMON },
	{ "open", cmd_open, "print a one-time login link of the daemon's web interface (http://127.0.0.1:7480/); Windows: open it in the browser",
	  "zila open", CLI_DAEMON },
	{ "web", cmd_web, "the web interface from the LAN: its password, HQ staff's accounts (admin, viewer, one district), its TLS fingerprint",
	  "zila web\nzila web password [--clear] [--password-file FILE]\n"
	  "zila web account add NAME --role admin|viewer|district:ID [--password-file FILE]\n"
	  "zila web account ls\nzila web account rm NAME\nzila web account passwd NAME [--password-file FILE]", CLI_STORE | CLI_TRUST },
	{ "stop", cmd_stop, "stop the running daemon and wait until it has exited", "zila stop", CLI_DAEMON },
	{ "service", cmd_service, "the daemon as a Windows service started at boot (install as an administrator; the replica stays on uninstall)",
	  "zila -d DIR service install [DAEMON OPTIONS]\nzila service uninstall\nzila -d DIR service run [DAEMON OPTIONS]", 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};

const struct cli_details cli_details[] = {
	{ "history",
	  "At HQ, a deleted row's merge state is kept until every device that may read its district\n"
	  "has acknowledged a checkpoint past the delete (two live syncs after HQ made it). Without\n"
	  "arguments, HQ says whether deleted rows wait: one line when no device holds them back, else\n"
	  "each district held back, how many rows wait, and each device holding them back by name and\n"
	  "id, why (never seen since enrolment; reached HQ only by USB bundle; last acknowledged a\n"
	  "checkpoint from DATE, N days ago; has not acknowledged the latest) and what to do:\n"
	  "if the laptop is lost or replaced, 'zila revoke ID' releases it. 'zila status' at HQ\n"
	  "says it in one line; --json gives it as \"collection\"." },
	{ "import",
	  "Headers match columns by name, in any case, a space, dash or dot counting as _\n"
	  "('Name Local' is name_local; 'District' is district_id).\n"
	  "--map HEADER=COLUMN maps another header; --map HEADER= (nothing after =) ignores that\n"
	  "column of the file, e.g. --map S.No.= for a serial number column.\n"
	  "A foreign key is the parent's id, or its code where the parent has one: booth number\n"
	  "'110' is the row's district's booth 110 (a number two units share is refused).\n"
	  "Rows match on the id column, else on the table's natural key such as (district, phone);\n"
	  "a match whose name differs is rejected for review, never merged into the other person.\n"
	  "Phones become 10-digit mobiles, or landlines as 0612-2234567; dates DD-MM-YYYY become\n"
	  "YYYY-MM-DD; gender F/M/O, महिला/पुरुष become female/male/other. On a district laptop, a\n"
	  "row with no district gets the laptop's own. Errors name the spreadsheet row (the header\n"
	  "is row 1). --dry-run shows, row by row, what would be created and changed (old -> new).\n"
	  "A file Excel saved as 'CSV (Comma delimited)' has ? for Hindi letters: save it as 'CSV UTF-8'." },
	{ "web",
	  "The interface listens on 127.0.0.1 and logs in with 'zila open''s one-time link. To open it\n"
	  "to the LAN, set a password (or accounts), then start the daemon on a LAN address:\n"
	  "  zila web password\n  zila daemon --web 0.0.0.0:7480 [--web-name office-pc.local]\n"
	  "It is then served over TLS with a certificate made once beside the replica (or --web-cert\n"
	  "FILE --web-key FILE); 'zila web' prints its SHA-256 fingerprint for staff to compare with\n"
	  "what their browser shows. --web-plain-lan serves the LAN without TLS (a district office\n"
	  "whose browsers would balk at a self-signed certificate; never at HQ). Roles: admin (all\n"
	  "this device may do), viewer (reads only), district:ID (that district only, as its laptop).\n"
	  "From the third wrong password in a row, each makes the next try from that computer wait\n"
	  "1, 2, 4, ... s (at most 15 min)." },
	{ "export",
	  "A text cell that starts with = + - @, a tab or a carriage return is written with a ' before it,\n"
	  "so that Excel shows it and never runs it as a formula (plain numbers such as -12 stay numbers);\n"
	  "zila import takes that ' off again, so importing the CSV back changes nothing." },
	{ NULL, NULL },
};
