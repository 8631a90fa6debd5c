"""The own-library fingerprint engine: index audio files, then find them inside a mix.

Free of Flask, so the CLI today and the pipeline's ``library`` recognizer tomorrow call the
same small API (``engine.py``):

- ``fingerprint_file(path)`` decodes and fingerprints one file (any process, no database);
- ``identify(reader, blocks)`` streams a mix's samples through the matcher and returns
  every play of a library file with its start, end, speed, pitch and confidence.

The pieces: ``audio`` (ffmpeg decoding), ``features`` (peaks and tempo-invariant quads),
``index`` (immutable memory-mapped segments), ``matcher`` (voting and line fitting),
``scan`` (finding files, reading tags), ``mixes`` (the benchmark's mix builder). The
database side (library files, committed segments) is ``library.py``.
"""
