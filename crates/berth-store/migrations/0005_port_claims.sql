-- Published host ports (`assignPublicIp: ENABLED`): one task per address,
-- protocol and port (the primary key), from PROVISIONING until the task's
-- release at DEPROVISIONING. They used to be rows of ip_allocations with
-- the subnet id `public/ADDR/PROTO` and the port as the ip; those rows
-- move here, so an upgrade keeps every port a running task holds.

CREATE TABLE port_claims (
    address  TEXT    NOT NULL,
    protocol TEXT    NOT NULL,
    port     INTEGER NOT NULL,
    task_arn TEXT    NOT NULL,
    PRIMARY KEY (address, protocol, port)
);
CREATE INDEX port_claims_by_task ON port_claims (task_arn);

-- `public/` is 7 characters and both protocols (`/tcp`, `/udp`) 4, so the
-- address is what lies between (substr and length mean the same on
-- SQLite and PostgreSQL).
INSERT INTO port_claims (address, protocol, port, task_arn)
SELECT substr(subnet_id, 8, length(subnet_id) - 11), substr(subnet_id, length(subnet_id) - 2),
       CAST(ip AS INTEGER), task_arn
FROM ip_allocations
WHERE subnet_id LIKE 'public/%/tcp' OR subnet_id LIKE 'public/%/udp';

DELETE FROM ip_allocations WHERE subnet_id LIKE 'public/%/tcp' OR subnet_id LIKE 'public/%/udp';
