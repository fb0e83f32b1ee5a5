"""Routines (TOML), the routine runner, built-in routines, a recording's timeline."""
