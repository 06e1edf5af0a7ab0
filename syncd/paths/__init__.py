"""Facts about a library's files every stage shares, one module per concern, each a leaf that
imports nothing of syncd (import each name from its module; this package re-exports none):

- ``filters``: the glob dialect of include/exclude/ignore (``PathMatcher``), a library's
  filter (``WalkFilter``) and the NAS and OS system folders (``SYSTEM_FOLDERS``).
- ``identity``: the file signature that says a file is unchanged, and the identity a moved
  file keeps.
- ``relpath``: the stored (bytes) and printable forms of a relative path.
- ``states``: a file's state as the ledger keeps it (live, vanished, held).
- ``handoff``: the watch-to-scan hand-off (``LookAgain``) and the settle rule.
"""
