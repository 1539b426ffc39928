"""The REST API (/api/v1): assembled by :func:`service.api.main.create_app`."""
