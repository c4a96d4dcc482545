"""Read models: the queries behind every read endpoint, served through the cache."""
