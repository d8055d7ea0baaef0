"""Connected-car sensor simulation and the anomaly-detection autoencoder behind the ANOMALY UDFs."""
