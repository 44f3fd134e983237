"""skiff's Docker Engine API server: ``skiff system service``.

A front end beside ``skiff.cli``, over the same engine library: each request becomes a call to
``skiff.engine.Engine`` or to the image, volume and network stores, on the same records and under
the same locks as the CLI, so both can be used side by side. Nothing here is imported by
``skiff run``: the CLI loads this package only for ``system service``.

- ``routes``: the Engine API's paths and version prefixes (pure).
- ``errors``: skiff's exceptions to HTTP status codes, in one table (pure).
- ``messages``: the request and the responses a handler returns (pure).
- ``server``: the listening socket (unix, or TCP with client certificates) and the HTTP loop.
- ``system``, ``containers``, ``objects``: the endpoints; ``create``: a create body as ``RunOptions``.
"""
