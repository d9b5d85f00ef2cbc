-- One role and one database per central service: each service owns its data and can reach
-- no other service's. Host agents keep their embedded SQLite on their own volumes.
-- Run once by the postgres image, on an empty data directory (/docker-entrypoint-initdb.d).
-- The passwords are development defaults: change them, and the URLs in compose.yaml, for
-- anything but a laptop.

CREATE ROLE registration LOGIN PASSWORD 'registration-dev';
CREATE DATABASE registration OWNER registration;
REVOKE ALL ON DATABASE registration FROM PUBLIC;

CREATE ROLE certificate LOGIN PASSWORD 'certificate-dev';
CREATE DATABASE certificate OWNER certificate;
REVOKE ALL ON DATABASE certificate FROM PUBLIC;

CREATE ROLE sync_scheduler LOGIN PASSWORD 'sync-scheduler-dev';
CREATE DATABASE sync_scheduler OWNER sync_scheduler;
REVOKE ALL ON DATABASE sync_scheduler FROM PUBLIC;
