# Image for the tstore services (the projector and the query API with its viewer). Configuration
# comes from TSTORE_* environment variables; see tstore/settings.py and docker-compose.yml.

# The viewer's browser libraries (wavesurfer.js, uPlot), from the npm registry by its lock file.
FROM node:20-slim AS viewer-libraries
WORKDIR /viewer
COPY viewer/package.json viewer/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY producers producers
COPY consumers consumers
COPY queries queries
COPY service service
COPY tstore tstore
COPY audio audio
COPY analytics analytics
COPY viewer viewer
RUN pip install --no-cache-dir .
# The service serves the libraries from beside the installed viewer package (viewer/mount.py).
COPY --from=viewer-libraries /viewer/node_modules /usr/local/lib/python3.11/site-packages/viewer/node_modules
ENTRYPOINT ["tstore"]
CMD ["project"]
