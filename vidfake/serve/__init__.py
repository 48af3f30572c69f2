"""``vidfake serve``: score uploaded videos and images over HTTP, with a web page.

The service is a thin layer over ``vidfake.scoring``: a file is scored by the same
``Scorer`` as ``vidfake score``, inside worker processes that can be killed when a file
takes too long. Modules, one job each:

- ``config``: the settings (limits, folders, token) in one frozen dataclass;
- ``store``: the SQLite job table, the only durable state, so a restart loses nothing;
- ``uploads``: a multipart upload streamed to disk under a size limit;
- ``media_check``: what an upload really is, from its decoded header, against the limits;
- ``process``: a child process that runs one task at a time under a time limit;
- ``tasks``: what runs inside those children (header probe; scoring and face thumbnails);
- ``worker``: the bounded pools (header probes, scoring jobs taken from the store);
- ``retention``: deleting uploads and thumbnails once their retention period is over;
- ``service``: the pieces above wired together for one data folder;
- ``schemas``, ``routes`` and ``app``: the OpenAPI models, the HTTP routes, and the FastAPI
  application around them (lifespan, token check, web page);
- ``static/``: the web page (plain HTML, CSS and JavaScript, no external assets).

Nothing here is imported by ``vidfake`` itself, so the scoring code knows no HTTP.
"""
