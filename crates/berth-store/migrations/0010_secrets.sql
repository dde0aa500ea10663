-- SSM Parameter Store parameters and Secrets Manager secrets (self-contained:
-- no table of another migration is read or changed). Each is one
-- versioned JSON record holding its versions; a SecureString's value and
-- every secret value are in the body only as ciphertext (berth-secrets
-- seals them before the store sees them). `path` is a parameter's parent
-- path (listing by path); a secret's name is unique.

CREATE TABLE ssm_parameters (
    name    TEXT   NOT NULL PRIMARY KEY,
    path    TEXT   NOT NULL,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);

CREATE TABLE secrets (
    arn     TEXT   NOT NULL PRIMARY KEY,
    name    TEXT   NOT NULL UNIQUE,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);
