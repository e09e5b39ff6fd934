"""Repositories, one module each: the only place with SQL. They flush but never commit; the
caller owns the unit of work (the per-update middleware, or a CLI command). `storage.repo.Repo`
holds one of each on a session."""
