"""For ``gunicorn 'api:create_app()'`` from the project folder; ``matcher serve`` is the way to run
the service (it builds the app once and shares it between workers)."""

from matcher.service import create_app

__all__ = ["create_app"]
