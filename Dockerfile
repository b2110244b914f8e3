# One image for every Driveline process; docker-compose.yml picks the command per service.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends sox \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ivr ivr
COPY records records
COPY events events
COPY api api
COPY sip sip
COPY transcription transcription
COPY recordings recordings
COPY flows flows
RUN pip install --no-cache-dir .
ENV DRIVELINE_FLOWS_DIR=/app/flows DRIVELINE_RECORDINGS_DIR=/data/recordings
EXPOSE 8000
CMD ["driveline", "serve"]
