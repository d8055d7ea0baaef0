-- The pipeline of the article this project started from ("Streaming Machine Learning with Kafka, MQTT and
-- TensorFlow": car sensor data scored by an autoencoder UDF in ksqlDB), unchanged:
--   ksqlpy run queries/seed_article.sql
-- Records on car-sensor are DELIMITED: `eventid,sensorinput`, where sensorinput holds the 18 sensor readings
-- joined by '#' (ksqlpy.ml.cars.sensorinput writes them). ANOMALY (udfs/anomaly.py) returns the autoencoder's
-- reconstruction error relative to the model's alert threshold: 1.0 is the threshold, normal readings score
-- about 0.2, faults 2.5 and up, so `Anomaly_Val > 3` keeps only readings three times past the threshold.
SET 'auto.offset.reset'='earliest';

CREATE STREAM carsensor (eventid VARCHAR, sensorinput VARCHAR) WITH (kafka_topic='car-sensor', value_format='DELIMITED');

CREATE STREAM AnomalyDetection AS SELECT eventid, sensorinput, ANOMALY(sensorinput) AS Anomaly_Val FROM carsensor;

CREATE STREAM AnomalyDetectionWithFilter AS SELECT eventid, sensorinput, Anomaly_Val FROM AnomalyDetection WHERE Anomaly_Val > 3;
