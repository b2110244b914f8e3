"""Speech engine adapters: piper text-to-speech with a disk cache of 8 kHz prompts.

`speech.piper_tts` imports numpy and soxr (and piper/onnxruntime when it first synthesizes), so
it is not imported here: `from speech import prerender` stays light.
"""

from speech.prerender import prerender

__all__ = ["prerender"]
