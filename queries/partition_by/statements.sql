-- Re-key orders by customer so that a customer's orders land in the same partition.
CREATE STREAM orders (order_id INT KEY, customer STRING, amount DOUBLE)
  WITH (kafka_topic='orders', value_format='JSON');

CREATE STREAM orders_by_customer AS
  SELECT customer, order_id, amount
  FROM orders
  PARTITION BY customer
  EMIT CHANGES;
