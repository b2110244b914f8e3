"""Call transcription: the job queue (jobs.py), the worker that transcribes each leg with
faster-whisper (worker.py, whisper.py), the merge into one speaker-labelled conversation
(merge.py), and attaching the result to the call's thread (attach.py)."""
