-- Connected-car anomaly detection: sensor readings -> autoencoder score -> alerts enriched from the car registry.
--   ksqlpy demo                                      (simulator, MQTT bridge and this file, alerts printed)
--   ksqlpy run queries/anomaly_detection.sql         (this file alone, on a cluster fed by `ksqlpy simulate`)
-- ANOMALY_SCORE and IS_ANOMALY are vectorized UDFs from udfs/anomaly.py: one model call per batch of records.
SET 'auto.offset.reset'='earliest';

-- Readings as `ksqlpy simulate` and `ksqlpy mqtt-bridge` write them: key = car id, value = JSON.
CREATE STREAM car_sensor_data (
  car_id VARCHAR KEY,
  ts BIGINT,
  coolant_temp DOUBLE,
  intake_air_temp DOUBLE,
  intake_air_flow_speed DOUBLE,
  battery_percentage DOUBLE,
  battery_voltage DOUBLE,
  current_draw DOUBLE,
  speed DOUBLE,
  engine_vibration_amplitude DOUBLE,
  throttle_pos DOUBLE,
  tire_pressure_11 DOUBLE,
  tire_pressure_12 DOUBLE,
  tire_pressure_21 DOUBLE,
  tire_pressure_22 DOUBLE,
  accelerometer_11_value DOUBLE,
  accelerometer_12_value DOUBLE,
  accelerometer_21_value DOUBLE,
  accelerometer_22_value DOUBLE,
  control_unit_firmware DOUBLE,
  failure_occurred VARCHAR
) WITH (kafka_topic='sensor-data', value_format='JSON', timestamp='ts', partitions=1);

-- The car registry as `ksqlpy simulate` publishes it before its readings: one row per car, key = car id.
-- Same partition count as sensor-data: the join below needs both topics co-partitioned by car id.
CREATE TABLE cars (
  car_id STRING PRIMARY KEY,
  model STRING,
  owner STRING,
  region STRING
) WITH (kafka_topic='cars', value_format='JSON', partitions=1);

-- Every reading with its reconstruction error, the readings kept for IS_ANOMALY and other consumers.
CREATE STREAM car_scores WITH (kafka_topic='car-scores', value_format='JSON') AS
  SELECT car_id, ts,
         ANOMALY_SCORE(coolant_temp, intake_air_temp, intake_air_flow_speed, battery_percentage,
                       battery_voltage, current_draw, speed, engine_vibration_amplitude, throttle_pos,
                       tire_pressure_11, tire_pressure_12, tire_pressure_21, tire_pressure_22,
                       accelerometer_11_value, accelerometer_12_value, accelerometer_21_value,
                       accelerometer_22_value, control_unit_firmware) AS anomaly_score,
         failure_occurred,
         coolant_temp, intake_air_temp, intake_air_flow_speed, battery_percentage, battery_voltage,
         current_draw, speed, engine_vibration_amplitude, throttle_pos,
         tire_pressure_11, tire_pressure_12, tire_pressure_21, tire_pressure_22,
         accelerometer_11_value, accelerometer_12_value, accelerometer_21_value, accelerometer_22_value,
         control_unit_firmware
  FROM car_sensor_data
  EMIT CHANGES;

-- Alerts: readings the model cannot reconstruct (error above the threshold stored with the model), with
-- the car's registry row as of the reading (a stream-table join sees the rows processed before it).
-- Key CAR_ID; value TS, ANOMALY_SCORE, FAILURE_OCCURRED (the simulator's label, to judge the alert),
-- MODEL, OWNER, REGION (NULL for a car missing from the registry: the alert is still raised).
CREATE STREAM car_anomalies WITH (kafka_topic='car-anomalies', value_format='JSON') AS
  SELECT s.car_id AS car_id, s.ts AS ts, s.anomaly_score AS anomaly_score, s.failure_occurred AS failure_occurred,
         c.model AS model, c.owner AS owner, c.region AS region
  FROM car_scores s
  LEFT JOIN cars c ON s.car_id = c.car_id
  WHERE IS_ANOMALY(s.coolant_temp, s.intake_air_temp, s.intake_air_flow_speed, s.battery_percentage,
                   s.battery_voltage, s.current_draw, s.speed, s.engine_vibration_amplitude, s.throttle_pos,
                   s.tire_pressure_11, s.tire_pressure_12, s.tire_pressure_21, s.tire_pressure_22,
                   s.accelerometer_11_value, s.accelerometer_12_value, s.accelerometer_21_value,
                   s.accelerometer_22_value, s.control_unit_firmware)
  EMIT CHANGES;

-- Anomalies per car per minute (tumbling windows on the reading time TS): one row per car and minute,
-- updated with each anomaly. Key CAR_ID, windowed; value ANOMALIES, REAL_FAILURES, MAX_SCORE.
CREATE TABLE car_anomalies_per_minute WITH (kafka_topic='car-anomalies-per-minute', value_format='JSON') AS
  SELECT car_id,
         COUNT(*) AS anomalies,
         SUM(CASE WHEN failure_occurred = 'true' THEN 1 ELSE 0 END) AS real_failures,
         MAX(anomaly_score) AS max_score
  FROM car_anomalies
  WINDOW TUMBLING (SIZE 1 MINUTE)
  GROUP BY car_id
  EMIT CHANGES;

-- Pages: a car with 3 or more anomalies within one minute is what operators want to be paged for. A row
-- appears when the third anomaly of the minute arrives and is updated with each further one.
CREATE TABLE car_pages WITH (kafka_topic='car-pages', value_format='JSON') AS
  SELECT car_id, COUNT(*) AS anomalies
  FROM car_anomalies
  WINDOW TUMBLING (SIZE 1 MINUTE)
  GROUP BY car_id
  HAVING COUNT(*) >= 3
  EMIT CHANGES;
