"""Speech engine adapters: piper text-to-speech with a disk cache of 8 kHz prompts."""
