"""transcribe-cli: plugin-based automatic music transcription (audio in, MIDI out)."""

__version__ = "0.1.0"
