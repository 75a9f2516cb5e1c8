-- One database per service, each owned by its own login role; no service can reach another's data.
-- The postgres image runs this once, as the superuser, when it initialises an empty data directory
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml). The passwords are for the local
-- compose stack only and must match the WERKPLAATS_DATABASE_URL of each service there.
-- Each service creates its own tables at start (Alembic migrations).

CREATE ROLE intake LOGIN PASSWORD 'intake';
CREATE DATABASE intake OWNER intake;
REVOKE ALL ON DATABASE intake FROM PUBLIC;

CREATE ROLE matching LOGIN PASSWORD 'matching';
CREATE DATABASE matching OWNER matching;
REVOKE ALL ON DATABASE matching FROM PUBLIC;

CREATE ROLE scheduling LOGIN PASSWORD 'scheduling';
CREATE DATABASE scheduling OWNER scheduling;
REVOKE ALL ON DATABASE scheduling FROM PUBLIC;
