-- Roles and databases of the services in docker-compose.yml. The postgres image runs this once,
-- on an empty volume, through postgres-init.sh, which passes the two passwords as psql
-- variables (:'tabadul_password', :'ckan_password') from TABADUL_DB_PASSWORD and
-- CKAN_DB_PASSWORD; nothing secret is written here.
--
-- On a PostgreSQL server of your own, run it the same way:
--   psql -v ON_ERROR_STOP=1 -v tabadul_password=... -v ckan_password=... -f postgres-init.sql

\set ON_ERROR_STOP on

-- The Tabadul management API, the CLI and the connectors log in as "tabadul"; CKAN as "ckan".
CREATE ROLE tabadul LOGIN PASSWORD :'tabadul_password';
CREATE ROLE ckan LOGIN PASSWORD :'ckan_password';

-- Governance: registry, published directories, people and tokens, datasets, audit log.
-- Its tables are created (and later migrated) by Tabadul itself when it opens the database.
CREATE DATABASE governance OWNER tabadul ENCODING 'UTF8' TEMPLATE template0;

-- The CKAN portal (`ckan db init` fills it; the CKAN image runs it at start).
CREATE DATABASE ckan OWNER ckan ENCODING 'UTF8' TEMPLATE template0;

-- One database per connector: its store (seen ids, inbox, stored responses) in the public
-- schema and its message log in the schema message_log. Replicas of one connector share the
-- store; each replica needs a log of its own (see docs/operations.md, "Several replicas").
CREATE DATABASE connector_civil OWNER tabadul ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE connector_tax OWNER tabadul ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE connector_customs OWNER tabadul ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE connector_treasury OWNER tabadul ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE connector_property OWNER tabadul ENCODING 'UTF8' TEMPLATE template0;
