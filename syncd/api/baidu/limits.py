"""Baidu's limits on one call: sizes of the image, the brief and a URL, tags, batches and
search paging. The client refuses a call over them before sending it, the local gallery
answers as the API does, and the scan prepares images to fit."""

from __future__ import annotations

from typing import Final

#: bytes of a brief in UTF-8
MAX_BRIEF_BYTES: Final = 256
#: bytes of an image once base64-encoded
MAX_IMAGE_B64_BYTES: Final = 4 * 1024 * 1024
#: pixels of an image's shorter and longer side
MIN_IMAGE_SIDE: Final = 15
MAX_IMAGE_SIDE: Final = 4096
#: tags per item, each in TAG_MIN..TAG_MAX
MAX_TAGS: Final = 2
TAG_MIN: Final = 1
TAG_MAX: Final = 65535
#: cont_signs in one delete call
MAX_DELETE_BATCH: Final = 1000
#: bytes of an image URL
MAX_URL_BYTES: Final = 1024
#: search paging: the default page size, the deepest position, pn and rn's ranges
DEFAULT_SEARCH_RN: Final = 300
MAX_SEARCH_POSITION: Final = 1000
PN_MIN: Final = 0
PN_MAX: Final = 1000
RN_MIN: Final = 1
RN_MAX: Final = 1000
