"""The product around the search: settings, database, job queue and worker, REST API, dashboard, CLI."""
