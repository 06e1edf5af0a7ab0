"""The walk's quick name test (prefix/suffix globs by string methods) takes exactly the files
the glob rules take, in any case and for names that are not ASCII."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.paths.filters import WalkFilter
from syncd.scan.walk import FileEntry, walk_library

# letters whose case rules differ outside ASCII (long s, Kelvin sign, dotted I) included
LETTERS = "aAbBkKsS.~-_ éÉſ\u212aİ"
affix_globs = st.builds(
    lambda lead, body, trail: lead + body + trail,
    st.sampled_from(["", "*"]),
    st.text(alphabet=LETTERS, min_size=1, max_size=4),
    st.sampled_from(["", "*"]),
)
names = st.text(alphabet=LETTERS, min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))


@settings(max_examples=150, deadline=None)
@example(include=["s*"], ignore=[], files=["\u017f"])
@given(
    include=st.lists(affix_globs, max_size=3),
    ignore=st.lists(affix_globs, max_size=3),
    files=st.lists(names, min_size=1, max_size=6, unique_by=lambda n: n),
)
def test_the_walk_takes_the_files_the_glob_rules_take(
    include: list[str], ignore: list[str], files: list[str]
) -> None:
    flt = WalkFilter(include, (), ignore)
    with tempfile.TemporaryDirectory() as root:
        created = []
        for name in files:
            try:
                with open(os.path.join(root, name), "xb"):
                    created.append(name)
            except FileExistsError:
                pass  # the same name in another normalization
        walked = {e.relpath for e in walk_library(root, flt) if isinstance(e, FileEntry)}
    assert walked == {name for name in created if flt.accepts(name)}


def test_suffix_prefix_and_whole_name_globs_match_in_any_case(tmp_path: Path) -> None:
    # a long s and a dotted capital I match s and i, as the glob rules' regexes have it
    taken = ["a.jpg", "A.Jpg", "scanned.tif", "COVER.PNG", "caf\u00e9.JPG", "\u017fcan.tif"]
    left = [".a.jpg", "a.jpg~", "thumbs.db", "b.png", "Thumbs.DB.jpg~", "th\u0130s.jpg"]
    for name in taken + left:
        (tmp_path / name).write_bytes(b"x")
    flt = WalkFilter(
        ["*.JPG", "scan*", "cover.png", "thumbs.db"], (), [".*", "*~", "Thumbs.db", "this*"]
    )
    walked = {e.relpath for e in walk_library(tmp_path, flt) if isinstance(e, FileEntry)}
    assert walked == set(taken)
