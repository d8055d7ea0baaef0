-- Accounts and seats per region, over a table of accounts that change and are deleted. Each change of an
-- account takes its old row out of its region's totals and adds the new one: an account moving region
-- lowers the old region (emitted first) and raises the new one; a tombstone (value null) deletes the
-- account and lowers its region; a region left empty stays with 0, it is not deleted. Each row's
-- timestamp is the latest change that touched its region.
CREATE TABLE accounts (account_id STRING PRIMARY KEY, region STRING, seats INT)
  WITH (kafka_topic='accounts', value_format='JSON');

CREATE TABLE seats_per_region AS
  SELECT region, COUNT(*) AS accounts, SUM(seats) AS seats
  FROM accounts
  GROUP BY region
  EMIT CHANGES;
