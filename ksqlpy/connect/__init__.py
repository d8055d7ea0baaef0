"""Connectors between Kafka and other systems: the MQTT bridge and the Mosquitto broker it is tested with."""
