"""Who is calling: password hashing, JWT access tokens and users."""
