"""The local gallery server: the image-search API of the API document, on loopback.

- ``server``: WSGI app (routing, auth order, faults) served by waitress; GalleryServer
- ``operations``: the parameters of add/search/update/delete and their error codes
- ``galleries``: the items of the three galleries, locks and deletion latency
- ``index``: in-memory features, the same-image test and ranked search (numpy)
- ``keypoints``: ORB keypoints, their inverted index and geometric checks (partial copies)
- ``store``: SQLite persistence of items and tokens
- ``images``: base64/url input -> one decoded, validated image
- ``auth``: token endpoint, access tokens, bce-auth-v1 signatures
- ``faults``: FaultConfig and its injector (transient failures, QPS, daily quota)
"""
