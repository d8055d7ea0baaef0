-- Built-in scalar functions over strings, arrays and numbers, with CASE and NULL handling.
CREATE STREAM users (id STRING KEY, name STRING, email STRING, score DOUBLE, tags ARRAY<STRING>)
  WITH (kafka_topic='users', value_format='JSON');

CREATE STREAM user_summary AS
  SELECT id,
         INITCAP(name) AS display_name,
         LEN(name) AS name_length,
         SPLIT(email, '@')[2] AS domain,
         ROUND(score, 1) AS score,
         ARRAY_LENGTH(tags) AS tag_count,
         CASE WHEN score >= 50 THEN 'pass' ELSE 'fail' END AS grade,
         IFNULL(email, 'unknown') AS contact
  FROM users
  EMIT CHANGES;
