-- Long page views only, with the page upper-cased, the duration in whole seconds and a doubled price.
CREATE STREAM pageviews (user_id STRING KEY, page STRING, duration_ms INT, price DECIMAL(6, 2))
  WITH (kafka_topic='pageviews', value_format='JSON');

CREATE STREAM long_views AS
  SELECT user_id, UCASE(page) AS page, duration_ms / 1000 AS seconds, price * 2 AS double_price
  FROM pageviews
  WHERE duration_ms >= 1000
  EMIT CHANGES;
