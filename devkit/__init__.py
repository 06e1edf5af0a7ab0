"""Test pictures and browser settings shared by ``tests/`` and ``benchmarks/``.

Neither folder imports the other's files: what both need lives here, outside the
``syncd`` package (it never ships: ``pyproject.toml`` packages ``syncd*`` only).

- ``imagegen``: deterministic, distinct, photo-like pictures (``make_image(seed)``) and
  their re-encodings, rescales and crops.
- ``textured``: varied, textured pictures and their partial copies (same-image search).
- ``corpus``: bad and awkward image files (``Corpus``, the hostile ``BOMBS``).
- ``photos``: phone-size photographs (12 MP JPEG with camera EXIF, HEIC) made from the real
  photographs of Debian's ``mate-backgrounds`` (the tests skip, saying why, without it).
- ``browser``: Debian's Chromium and the headless arguments it is launched with.

Both put the repository root on ``sys.path`` and import ``devkit.<module>``: pytest
through ``pythonpath = ["."]`` in ``pyproject.toml``, the benchmarks through
``benchmarks/_common.py`` (which every ``bench_*.py`` imports first).
"""
