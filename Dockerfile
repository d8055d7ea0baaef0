FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ksqlpy ./ksqlpy
RUN pip install --no-cache-dir .
COPY udfs ./udfs
COPY queries ./queries
ENTRYPOINT ["ksqlpy"]
