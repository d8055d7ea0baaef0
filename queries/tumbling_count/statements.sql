-- Items ordered per customer per minute: a tumbling-window aggregate, one row per customer and minute.
-- The output key is windowed: the customer plus the window's start (its end is start + 1 minute).
-- A record arriving out of order still counts while its window is open (until 30 s after the window's end
-- in stream time); after that it is dropped. Each row's timestamp is its window's latest order's.
CREATE STREAM orders (customer STRING KEY, item STRING, quantity INT)
  WITH (kafka_topic='orders', value_format='JSON');

CREATE TABLE items_per_minute AS
  SELECT customer, COUNT(*) AS orders, SUM(quantity) AS items
  FROM orders
  WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 30 SECONDS)
  GROUP BY customer
  EMIT CHANGES;
