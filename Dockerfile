# One image for every Driveline process; docker-compose.yml picks the command per service.
# Debian bookworm's kamailio is 5.6, the version deploy/kamailio/kamailio.cfg.j2 is checked with.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends sox kamailio \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY driveline driveline
COPY ivr ivr
COPY usecases usecases
COPY records records
COPY events events
COPY api api
COPY sip sip
COPY speech speech
COPY transcription transcription
COPY recordings recordings
RUN pip install --no-cache-dir . \
    && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["driveline"]["no-deps"]))' \
       | xargs pip install --no-cache-dir --no-deps
# Not Python packages: read from /app at run time (flows_dir, the Kamailio template).
COPY flows flows
COPY deploy deploy
ENV DRIVELINE_FLOWS_DIR=/app/flows \
    DRIVELINE_RECORDINGS_DIR=/data/recordings \
    DRIVELINE_PROMPTS_DIR=/data/prompts
EXPOSE 8000 5060/udp 5060/tcp
CMD ["driveline", "serve"]
