"""Alembic migrations of the referral store (run by ``matcher db upgrade``)."""
