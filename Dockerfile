# Image for the tstore services (the projector and the query API). Configuration comes from TSTORE_*
# environment variables; see tstore/settings.py and docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY producers producers
COPY consumers consumers
COPY queries queries
COPY service service
COPY tstore tstore
RUN pip install --no-cache-dir .
ENTRYPOINT ["tstore"]
CMD ["project"]
