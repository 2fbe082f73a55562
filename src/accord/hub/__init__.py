"""The accord hub: a server that a team syncs through.

A hub holds *collections* (each one a place, ``hub://host:port/NAME``),
users with read/write grants per collection, and their *nodes* (the
machines, each with its own secret). Its metadata lives in SQLite or
PostgreSQL, its content in a content-addressed blob store (a folder or
S3); several server processes over one PostgreSQL database and one S3
prefix serve the same collections.

Modules: ``store`` (the store: init, open), ``schema`` (tables),
``accounts`` (users, nodes, grants, sessions), ``items`` (what a
collection holds and every change), ``extras`` (trash, accord's own
files, uploads), ``blobs`` (content), ``auth`` (who is calling), ``web``
(the route toolkit), ``api`` / ``people`` / ``events`` (the routes),
``app`` (the application, feature routers), ``serve`` (uvicorn);
the web dashboard: ``dashboard`` (routes), ``views`` (HTML), ``overview``
(what it shows), ``runs`` (syncs it starts), ``place`` (a collection as a
place inside the hub), ``places`` (places an admin names), ``static/``.
The client side is the ``hub`` place, ``accord.replicas.hub``.
"""

from __future__ import annotations

from accord.hub.store import Hub, init_hub, open_hub

__all__ = ["Hub", "init_hub", "open_hub"]
