"""Application services: use cases that combine domain rules with storage and the queue.
The faces (api/) and the CLI call these, never the tables directly."""
