"""Input and output: audio decoding (``audio``), MIDI (``midi``), output writers
(``outputs``) and atomic file helpers (``fileio``).

Always imported absolutely (``transcribe_cli.io``); it does not shadow the standard
library's ``io``."""
