"""Domain events on Redis: pub/sub for live listeners (SSE) and a stream for durable consumers."""
