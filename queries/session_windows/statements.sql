-- Clicks per user per browsing session: a session lasts while the user's clicks come less than 30 seconds
-- apart. The output key is windowed: the user plus the session's start and end (its first and last click).
-- When a click extends a session, or falls between two sessions and joins them, each session it absorbs is
-- deleted with a tombstone (value null, under the old session's key) before the merged session's row.
CREATE STREAM clicks (user_id STRING KEY, page STRING)
  WITH (kafka_topic='clicks', value_format='JSON');

CREATE TABLE clicks_per_session AS
  SELECT user_id, COUNT(*) AS clicks
  FROM clicks
  WINDOW SESSION (30 SECONDS)
  GROUP BY user_id
  EMIT CHANGES;
