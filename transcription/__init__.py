"""Job consumer, faster-whisper engine, segment merge, attach to the thread (later issue)."""
