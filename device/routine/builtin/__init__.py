"""The built-in routines, one TOML file each (format: docs/routines.md)."""
