"""Shared helpers of the test suite, one concept per module.

- ``api``: clients of the REST API per principal, the error-shape check and
  request shortcuts (``Api``, ``assert_error``, ``create_endpoint``, ``send``,
  ``page_through``, ``TIMESTAMP``).
- ``browser``: headless Debian Chromium (``chromium``, ``needs_chromium``).
- ``clock``: ``FakeClock``, a clock tests move by hand.
- ``postgres``: the PostgreSQL server the tests use, throwaway databases on
  it (``require_postgres``, ``DatabasePool``), and a server of a test's own
  (``PrivateCluster``).
- ``processes``: programs run as a user would (``free_port``, ``running``,
  ``webhooks_service``, ``start_worker``).
- ``producers``: settings of producers under test (``LOOPBACK``, ``FAST``).
- ``proxy``: a CONNECT proxy and an HTTPS receiver (client certificates) on
  127.0.0.1, for the egress tests (``ConnectProxy``, ``TlsReceiver``).
- ``receiver``: real HTTP servers on 127.0.0.1 (``Receiver``, ``LocalServer``).
- ``transports``: both delivery transports behind one fixture
  (``make_transport``, ``transport_kind``) and odd servers (``Answering``).
- ``store``: log states set up directly in the store (``mark_failed``).
- ``transports``: both delivery transports behind one fixture
  (``make_transport``, ``transport_kind``).
- ``ui``: the web UI's app and its sign-in (``build_app``, ``sign_in``,
  ``failed_by_worker``).
- ``waiting``: polling with a deadline (``wait_until``, ``wait_for_value``,
  ``wait_for_status``).

Test modules import from here, never from one another; fixtures live in
``tests/conftest.py``.
"""
