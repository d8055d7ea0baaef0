-- A self-contained demo for the embedded broker: a stream, a persistent query over it, a few events,
-- and a push query that shows what the persistent query wrote.
--   ksqlpy run queries/demo.sql --until-idle 5
SET 'auto.offset.reset'='earliest';

CREATE STREAM pageviews (user_id STRING KEY, page STRING, duration_ms INT)
  WITH (kafka_topic='pageviews', value_format='JSON', partitions=2);

CREATE STREAM long_views AS
  SELECT user_id, UCASE(page) AS page, duration_ms / 1000 AS seconds
  FROM pageviews
  WHERE duration_ms >= 1000
  EMIT CHANGES;

INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('alice', 'home', 2500);
INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('bob', 'cart', 300);
INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('carol', 'checkout', 61000);
INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('dave', 'search', 1200);

SELECT * FROM long_views EMIT CHANGES LIMIT 3;
