"""Coverage-guided fuzzing of kmsenvelope's parsers with atheris (see docs/hardening.md)."""
