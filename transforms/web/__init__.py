"""A small web toolkit shared by the stages that touch the web (sources, feeds, fetch, extract).

* ``urls``: the canonical form of a URL and of a page's ``<link rel=canonical>``;
* ``charsets``: the one ladder that decides how page bytes are decoded;
* ``http``: the HTTP client (``Fetcher``) with its address safety, caps, timeouts, politeness;
* ``robots``: robots.txt rules (RFC 9309) for that client.

No module here imports Beam: the stages wrap these functions in their own transforms.
"""
